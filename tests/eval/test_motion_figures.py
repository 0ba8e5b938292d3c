"""The figures of the motion evaluation on hand-made motions whose answers are known."""

import numpy as np
import pytest

from app.core.loop import seam_ratio
from app.core.spectral import Motion, motion_from_texture, scale_bands, zero_motion
from app.eval.metrics import (
    band_log_ratio, chance_iou, first_frame_px, grid_spectrum, low_band_share, mean_displacement,
    magnitude_dependence, mean_frame_step, motion_statistics, photo_dependence, score_prediction,
    spectrum_cosine,
)

FRAMES, BANDS, HEIGHT, WIDTH = 60, 16, 12, 20


def sinusoid(band: int, amplitude: float = 2.0, axis: int = 0, phase: float = 0.0, region=None) -> Motion:
    """Every pixel (or those of `region`, a bool (H, W) mask) moving A sin(2 pi band t / T + phase) along one axis."""
    t = np.arange(FRAMES)
    texture = np.zeros((FRAMES, 2, HEIGHT, WIDTH), np.float32)
    curve = amplitude * (np.sin(2 * np.pi * band * t / FRAMES + phase) - np.sin(phase))  # F_0 = 0
    texture[:, axis] = curve[:, None, None]
    if region is not None:
        texture *= region[None, None]
    return motion_from_texture(texture, BANDS, fps=30.0)


def test_a_motion_whose_frame_0_is_not_the_photo_cannot_be_made():
    rng = np.random.default_rng(0)
    spectrum = (rng.standard_normal((BANDS, 2, HEIGHT, WIDTH)) + 1j * rng.standard_normal((BANDS, 2, HEIGHT, WIDTH)))
    assert first_frame_px(Motion(spectrum.astype(np.complex64) * 50, FRAMES, 30.0)) < 1e-3
    offset = np.full((FRAMES, 2, HEIGHT, WIDTH), 7.0, np.float32)  # every frame, frame 0 too, shifted 7 px
    assert first_frame_px(motion_from_texture(offset, BANDS)) < 1e-4
    assert motion_statistics(sinusoid(3, phase=1.0))["first_frame_px"] < 1e-4


def test_a_sinusoid_at_band_2_has_all_its_power_in_bands_1_to_4():
    assert low_band_share(motion_statistics(sinusoid(2))["band_power"]) == pytest.approx(1.0)
    assert low_band_share(motion_statistics(sinusoid(4))["band_power"]) == pytest.approx(1.0)  # the edges count
    assert low_band_share(motion_statistics(sinusoid(1))["band_power"]) == pytest.approx(1.0)
    assert low_band_share(motion_statistics(sinusoid(5))["band_power"]) == pytest.approx(0.0, abs=1e-9)
    left = np.zeros((HEIGHT, WIDTH), bool)
    left[:, : WIDTH // 2] = True
    mixed = Motion(sinusoid(2, region=left).spectrum + sinusoid(9, region=~left).spectrum, FRAMES, 30.0)
    assert motion_statistics(mixed)["low_band_share"] == pytest.approx(0.5, rel=1e-4)
    assert low_band_share(motion_statistics(zero_motion(HEIGHT, WIDTH, BANDS, FRAMES))["band_power"]) is None


def test_a_still_motion_has_no_step_no_displacement_and_no_direction():
    figures = motion_statistics(zero_motion(HEIGHT, WIDTH, BANDS, FRAMES))
    assert figures["frame_step_px"] == 0.0 and figures["mean_displacement_px"] == 0.0
    assert figures["first_frame_px"] == 0.0 and figures["low_band_share"] is None
    assert spectrum_cosine(grid_spectrum(zero_motion(HEIGHT, WIDTH, BANDS, FRAMES)), grid_spectrum(sinusoid(2))) is None


def test_the_frame_step_of_a_sinusoid_is_its_mean_change_per_frame():
    amplitude, band = 2.0, 3
    t = np.arange(FRAMES)
    curve = amplitude * np.sin(2 * np.pi * band * t / FRAMES)
    expected = np.abs(np.diff(curve)).mean()  # the T - 1 steps inside the loop
    assert mean_frame_step(sinusoid(band, amplitude)) == pytest.approx(expected, rel=1e-4)
    assert motion_statistics(sinusoid(band, amplitude))["frame_step_px"] == pytest.approx(expected, rel=1e-4)
    # twice the amplitude steps twice as far; a 4x faster sway of the same size steps ~4x as far
    assert mean_frame_step(sinusoid(band, 2 * amplitude)) == pytest.approx(2 * expected, rel=1e-4)
    assert mean_frame_step(sinusoid(4 * band, amplitude)) / expected == pytest.approx(
        np.sin(4 * np.pi * band / FRAMES) / np.sin(np.pi * band / FRAMES), rel=0.05)


def test_the_band_ratio_of_a_motion_against_itself_is_zero_and_signed_per_band():
    motion = Motion(sinusoid(2).spectrum + sinusoid(5, axis=1).spectrum + sinusoid(11, 3.0).spectrum, FRAMES, 30.0)
    assert np.allclose(band_log_ratio(motion, motion), 0.0)
    gains = np.ones(BANDS)
    gains[5], gains[11] = 10.0, 0.1
    ratio = band_log_ratio(scale_bands(motion, gains), motion)
    assert ratio.shape == (BANDS - 1,)  # bands 1..15: DC follows from the others
    assert ratio[4] == pytest.approx(2.0, abs=1e-4)  # band 5: 10x the amplitude, 100x the power
    assert ratio[10] == pytest.approx(-2.0, abs=2e-3)  # band 11: 100x weaker (the 0.01 px floor shows)
    assert np.allclose(np.delete(ratio, [4, 10]), 0.0, atol=1e-4)
    scores = score_prediction(scale_bands(motion, gains), motion)
    assert scores["band_log_error"] == pytest.approx(4.0 / (BANDS - 1), abs=2e-3)
    assert score_prediction(motion, motion)["band_log_error"] == 0.0


def test_identical_spectra_have_cosine_1_and_orthogonal_ones_0():
    a, b = grid_spectrum(sinusoid(2)), grid_spectrum(sinusoid(3))
    assert spectrum_cosine(a, a) == pytest.approx(1.0)
    assert spectrum_cosine(a, (0.3 - 2j) * a) == pytest.approx(1.0)  # another amplitude and phase, same shape
    assert spectrum_cosine(a, b) == pytest.approx(0.0, abs=1e-6)  # other band
    assert spectrum_cosine(a, grid_spectrum(sinusoid(2, axis=1))) == pytest.approx(0.0, abs=1e-6)  # other axis


def test_photo_dependence_compares_only_photos_of_different_clips():
    a, b = grid_spectrum(sinusoid(2)), grid_spectrum(sinusoid(3))
    per_clip, mean = photo_dependence([a, a, a], ["x", "x", "y"])
    assert mean == pytest.approx(1.0) and per_clip == {"x": pytest.approx(1.0), "y": pytest.approx(1.0)}
    per_clip, mean = photo_dependence([a, a, b], ["x", "x", "y"])  # the identical pair is one clip's
    assert mean == pytest.approx(0.0, abs=1e-6) and per_clip["y"] == pytest.approx(0.0, abs=1e-6)
    mixed = (a + b) / np.sqrt(2)
    assert photo_dependence([a, mixed], ["x", "y"])[1] == pytest.approx(np.sqrt(0.5), rel=1e-4)
    assert photo_dependence([a, a], ["x", "x"]) == ({"x": None}, None)


def test_magnitude_dependence_ignores_phases_that_photo_dependence_sees():
    a = grid_spectrum(sinusoid(2))
    rng = np.random.default_rng(0)
    shifted = a * np.exp(1j * rng.uniform(0, 2 * np.pi, a.shape))  # the same amplitudes, other phases
    assert photo_dependence([a, shifted], ["x", "y"])[1] < 0.2
    assert magnitude_dependence([a, shifted], ["x", "y"])[1] == pytest.approx(1.0)
    elsewhere = grid_spectrum(sinusoid(2, axis=1))  # moves along the other axis: no amplitude in common
    assert magnitude_dependence([a, elsewhere], ["x", "y"])[1] == pytest.approx(0.0, abs=1e-6)
    region = np.zeros((HEIGHT, WIDTH), bool)
    region[:, : WIDTH // 2] = True
    half = grid_spectrum(sinusoid(2, region=region))  # moves in half of the places only
    assert magnitude_dependence([a, half], ["x", "y"])[1] == pytest.approx(np.sqrt(0.5), abs=0.05)


def test_chance_iou_is_the_expected_iou_of_a_random_mask():
    assert chance_iou(0.5, 0.5) == pytest.approx(1 / 3)
    assert chance_iou(1.0, 0.3) == pytest.approx(0.3)
    assert chance_iou(0.0, 0.4) == 0.0 and chance_iou(0.0, 0.0) == 1.0
    rng = np.random.default_rng(0)
    reference = rng.random((200, 200)) < 0.3
    random_masks = [rng.random((200, 200)) < 0.6 for _ in range(20)]
    measured = np.mean([(m & reference).sum() / (m | reference).sum() for m in random_masks])
    assert measured == pytest.approx(chance_iou(0.6, 0.3), rel=0.02)


def test_iou_and_its_chance_level_of_a_partly_overlapping_prediction():
    left, right = np.zeros((HEIGHT, WIDTH), bool), np.zeros((HEIGHT, WIDTH), bool)
    left[:, : WIDTH // 2] = True
    right[:, WIDTH // 4:] = True  # overlaps the left half on a quarter of the width
    scores = score_prediction(sinusoid(2, region=right), sinusoid(2, region=left))
    assert scores["iou"] == pytest.approx(1 / 4)  # a quarter of the width over the whole width
    assert scores["iou_chance"] == pytest.approx(chance_iou(0.75, 0.5))


def test_statistics_agree_with_the_single_figure_functions():
    motion = Motion(sinusoid(2).spectrum + sinusoid(7, 0.7, axis=1, phase=0.4).spectrum, FRAMES, 30.0)
    figures = motion_statistics(motion)
    assert figures["seam_ratio"] == pytest.approx(seam_ratio(motion), rel=1e-5)
    assert figures["mean_displacement_px"] == pytest.approx(float(mean_displacement(motion).mean()), rel=1e-5)
    assert figures["frame_step_px"] == pytest.approx(mean_frame_step(motion), rel=1e-5)
