"""Motion metrics against a reference, the Fréchet distance and FVD (the evaluation command: test_motion_eval.py)."""

import numpy as np
import pytest

from app.core.procedural import BrushSettings, brush_motion
from app.core.spectral import Motion, resize_motion, scale_bands, zero_motion
from app.eval.fvd import fvd, frechet_distance, gaussian_fit, sample_frames
from app.eval.metrics import (
    align_motion, band_power, compare_motions, mask_iou, motion_iou, moving_threshold, spectrum_error,
    spectrum_error_per_band,
)

HEIGHT, WIDTH = 40, 64


def swaying_motion(seed=0, amplitude=4.0, height=HEIGHT, width=WIDTH) -> Motion:
    """A brush motion over the left two thirds of the image, still on the right."""
    mask = np.zeros((height, width), np.float32)
    mask[:, : 2 * width // 3] = 1.0
    return brush_motion(mask, BrushSettings(amplitude_px=amplitude, coherence_px=8.0, seed=seed),
                        num_bands=8, num_frames=30, fps=30.0)


# --- motion metrics ------------------------------------------------------------------------------


def test_a_motion_against_itself_is_perfect():
    motion = swaying_motion()
    scores = compare_motions(motion, motion)
    assert scores["spectrum_error"] == 0.0
    assert scores["spectrum_error_per_band"] == [0.0] * 8
    assert scores["iou"] == 1.0
    assert scores["mean_displacement_px"] == scores["reference_mean_displacement_px"] > 0


def test_zero_motion_against_a_moving_one_has_iou_zero_and_a_large_spectrum_error():
    motion = swaying_motion()
    still = zero_motion(HEIGHT, WIDTH, 8, 30, 30.0)
    assert motion_iou(still, motion) == 0.0
    assert spectrum_error(still, motion) > 1.0  # decades of power
    assert compare_motions(still, motion)["seam"] == 0.0


def test_spectrum_error_grows_with_the_scale_of_one_band():
    motion = swaying_motion()
    errors = []
    for gain in (1.0, 2.0, 4.0, 8.0):
        gains = np.ones(8)
        gains[3] = gain
        scaled = scale_bands(motion, gains)
        exact = spectrum_error_per_band(scaled, motion, eps=1e-30)
        assert np.allclose(np.delete(exact, [0, 3]), 0.0, atol=1e-9)  # DC follows the others (F_0 = 0)
        assert exact[3] == pytest.approx(2 * np.log10(gain), abs=1e-6)  # power goes with gain^2
        errors.append(spectrum_error(scaled, motion))
    assert errors[0] == 0.0 and errors[0] < errors[1] < errors[2] < errors[3]


def test_band_power_is_the_squared_amplitude_of_a_sinusoid_in_pixels():
    num_frames, amplitude = 30, 2.0
    t = np.arange(num_frames)
    texture = np.zeros((num_frames, 2, 4, 4), np.float32)
    texture[:, 0] = amplitude * np.sin(2 * np.pi * 3 * t / num_frames)[:, None, None]  # F_0 = 0: no DC
    spectrum = np.fft.rfft(texture, axis=0)[:8]
    power = band_power(Motion(spectrum, num_frames, 30.0))
    assert power[3] == pytest.approx(amplitude ** 2, rel=1e-5)
    assert np.allclose(np.delete(power, 3), 0.0, atol=1e-9)


def test_iou_of_half_overlapping_regions():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:, :2] = True
    b[:, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_moving_threshold_is_half_a_pixel_at_256x160_and_scales_with_size():
    assert moving_threshold(160, 256) == pytest.approx(0.5)
    assert moving_threshold(320, 512) == pytest.approx(1.0)


def test_predictions_at_another_size_or_with_fewer_bands_are_aligned_to_the_reference():
    motion = swaying_motion()
    larger = resize_motion(motion, 2 * HEIGHT, 2 * WIDTH)
    assert compare_motions(larger, motion)["iou"] > 0.9
    fewer = Motion(motion.spectrum[:4], motion.num_frames, motion.fps)
    aligned = align_motion(fewer, motion)
    assert aligned.spectrum.shape == motion.spectrum.shape and not aligned.spectrum[4:].any()
    with pytest.raises(ValueError, match="does not match"):
        compare_motions(Motion(motion.spectrum, 40, 30.0), motion)


# --- Fréchet distance and FVD --------------------------------------------------------------------


def test_frechet_distance_of_known_gaussians():
    assert frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(2.0)  # 1 + 1 + 4 - 2*2
    rng = np.random.default_rng(0)
    features = rng.standard_normal((50, 6))
    mu, sigma = gaussian_fit(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(mu, sigma, mu + 1.0, sigma) == pytest.approx(6.0, rel=1e-6)


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(1)
    few = rng.standard_normal((5, 40))  # rank 4 covariance in 40 dimensions
    other = rng.standard_normal((5, 40)) + 0.5
    distance = frechet_distance(*gaussian_fit(few), *gaussian_fit(other))
    assert np.isfinite(distance) and distance > 0


def random_videos(seed, count=6, frames=16, brightness=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (count, 1, 24, 32, 3))
    flicker = rng.integers(0, 40, (count, frames, 1, 1, 1))
    return np.clip(base + flicker + brightness, 0, 255).astype(np.uint8)


def test_fvd_of_a_set_against_itself_is_zero_and_against_another_set_positive(tiny_video_net):
    net = tiny_video_net
    videos = random_videos(0)
    assert fvd(videos, videos, model=net) == pytest.approx(0.0, abs=1e-6)
    assert fvd(videos, random_videos(1, brightness=50), model=net) > 1e-3


def test_sample_frames_takes_the_first_or_evenly_spread_frames():
    videos = np.arange(30).reshape(1, 30, 1, 1, 1) * np.ones((1, 30, 2, 2, 3), np.uint8)
    assert sample_frames(videos, 16, "first")[0, :, 0, 0, 0].tolist() == list(range(16))
    even = sample_frames(videos, 16, "even")[0, :, 0, 0, 0]
    assert even[0] == 0 and even[-1] == 29 and len(even) == 16
    with pytest.raises(ValueError):
        sample_frames(videos[:, :10], 16)
