"""The motion brush: masking, determinism, amplitude calibration, spectral shape, direction, smoothness."""

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.procedural import BrushSettings, brush_motion, brush_spectrum
from app.core.spectral import band_frequencies, mean_amplitude, motion_to_texture

HEIGHT, WIDTH = 64, 96


def feathered_mask(height=HEIGHT, width=WIDTH, border=8, feather=3.0):
    """Full-strength core, a soft ramp around it, exactly zero near the image edges: float32 (H, W)."""
    painted = np.zeros((height, width), np.float32)
    painted[border:-border, border:-border] = 1.0
    core = cv2.erode(painted, np.ones((9, 9), np.uint8))
    ramp = cv2.GaussianBlur(core, (0, 0), feather)
    return np.maximum(ramp, core) * painted


def peak_displacement(motion):
    """(H, W) max over the loop of |F_t(p)|."""
    texture = motion_to_texture(motion)  # (T, 2, H, W)
    return np.sqrt(texture[:, 0] ** 2 + texture[:, 1] ** 2).max(axis=0)


def principal_angle_deg(motion, mask):
    """Angle in [0, 180) of the main axis of the displacement covariance over time and mask pixels."""
    texture = motion_to_texture(motion)[:, :, mask > 0]  # (T, 2, N)
    samples = texture.transpose(1, 0, 2).reshape(2, -1)  # (2, T*N)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(samples))
    major = eigenvectors[:, np.argmax(eigenvalues)]
    return math.degrees(math.atan2(major[1], major[0])) % 180.0, eigenvalues.min() / eigenvalues.max()


def axis_difference_deg(a, b):
    """Distance between two undirected axes in degrees, in [0, 90]."""
    difference = abs(a - b) % 180.0
    return min(difference, 180.0 - difference)


# --- masking ---------------------------------------------------------------------------------------


@st.composite
def masks_and_settings(draw):
    height = draw(st.integers(4, 40))
    width = draw(st.integers(4, 40))
    mask_seed = draw(st.integers(0, 2**32 - 1))
    zero_fraction = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(mask_seed)
    mask = rng.uniform(0.0, 1.0, (height, width)).astype(np.float32)
    mask[rng.uniform(size=(height, width)) < 0.3] = 1.0
    mask[rng.uniform(size=(height, width)) < zero_fraction] = 0.0
    num_bands = draw(st.integers(2, 16))
    highest_hz = (num_bands - 1) * 30.0 / 150
    dominant = draw(st.one_of(st.none(), st.floats(0.01, 1.0).map(lambda f: f * highest_hz)))
    brush = BrushSettings(
        amplitude_px=draw(st.floats(0.0, 20.0)),
        direction_deg=draw(st.floats(-360.0, 360.0)),
        direction_spread_deg=draw(st.floats(0.0, 90.0)),
        dominant_hz=dominant,
        falloff_beta=draw(st.floats(0.0, 3.0)),
        coherence_px=draw(st.floats(0.5, 60.0)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )
    return mask, brush, num_bands


@settings(max_examples=40, deadline=None)
@given(masks_and_settings())
def test_exactly_zero_outside_the_mask_and_finite_inside(case):
    mask, brush, num_bands = case
    spectrum = brush_spectrum(mask, brush, num_bands, 150, 30.0)
    assert spectrum.shape == (num_bands, 2) + mask.shape
    assert spectrum.dtype == np.complex64
    assert np.all(np.isfinite(spectrum))
    assert np.all(spectrum[:, :, mask == 0] == 0)
    frame_0 = (spectrum[0].real + 2 * spectrum[1:].real.sum(axis=0)) / 150  # F_0 of the irfft
    assert np.abs(frame_0).max() < 1e-3


def test_moves_where_the_mask_is_painted():
    mask = feathered_mask()
    peak = peak_displacement(brush_motion(mask, BrushSettings(amplitude_px=3.0)))
    assert np.all(peak[mask == 1] > 0)
    assert np.all(peak[mask == 0] == 0)


def test_feathered_mask_gives_feathered_amplitude():
    mask = feathered_mask()
    brush = BrushSettings(amplitude_px=3.0, coherence_px=200.0)  # nearly uniform motion
    peak = peak_displacement(brush_motion(mask, brush))
    soft = (mask > 0.2) & (mask < 0.6)
    assert soft.any()
    assert np.median(peak[soft]) < 0.75 * np.median(peak[mask == 1])


def test_an_empty_mask_or_zero_amplitude_moves_nothing():
    assert not np.any(brush_spectrum(np.zeros((HEIGHT, WIDTH)), BrushSettings()))
    assert not np.any(brush_spectrum(np.ones((HEIGHT, WIDTH)), BrushSettings(amplitude_px=0.0)))


def test_accepts_a_boolean_mask_and_returns_a_motion():
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[10:50, 20:80] = True
    motion = brush_motion(mask, BrushSettings(), num_bands=12, num_frames=120, fps=24.0)
    assert (motion.num_bands, motion.height, motion.width) == (12, HEIGHT, WIDTH)
    assert (motion.num_frames, motion.fps) == (120, 24.0)
    assert np.any(motion.spectrum)


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_same_motion_other_seed_other_motion():
    mask = feathered_mask()
    first = brush_spectrum(mask, BrushSettings(seed=7))
    again = brush_spectrum(mask, BrushSettings(seed=7))
    other = brush_spectrum(mask, BrushSettings(seed=8))
    np.testing.assert_array_equal(first, again)
    difference = np.abs(first - other).mean()
    assert difference > 0.3 * np.abs(first).mean()


# --- time ------------------------------------------------------------------------------------------


def test_brush_starts_at_the_photo():
    motion = brush_motion(feathered_mask(), BrushSettings(amplitude_px=5.0))
    texture = motion_to_texture(motion)  # (T, 2, H, W)
    assert np.abs(texture[0]).max() < 1e-4
    assert np.abs(texture).max() > 1.0  # it does move afterwards


@pytest.mark.parametrize("amplitude, coherence, dominant", [
    (1.0, 24.0, 0.8), (4.0, 8.0, 1.4), (12.0, 40.0, None), (4.0, 3.0, 2.2),
])
def test_peak_displacement_is_calibrated_to_the_amplitude(amplitude, coherence, dominant):
    mask = feathered_mask()
    brush = BrushSettings(amplitude_px=amplitude, coherence_px=coherence, dominant_hz=dominant, seed=3)
    peak = peak_displacement(brush_motion(mask, brush))
    p95 = np.percentile(peak[mask == 1], 95)
    assert p95 == pytest.approx(amplitude, rel=0.2)


def test_calibration_holds_on_an_image_larger_than_the_calibration_sample():
    mask = np.ones((120, 160), np.float32)  # 19200 pixels, more than are sampled for calibration
    peak = peak_displacement(brush_motion(mask, BrushSettings(amplitude_px=6.0, coherence_px=10.0)))
    assert np.percentile(peak, 95) == pytest.approx(6.0, rel=0.2)


def test_amplitude_scales_the_motion_linearly():
    mask = feathered_mask()
    small = brush_spectrum(mask, BrushSettings(amplitude_px=2.0))
    large = brush_spectrum(mask, BrushSettings(amplitude_px=6.0))
    np.testing.assert_allclose(large, 3.0 * small, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dominant_hz", [0.2, 0.8, 1.45, 2.6, 3.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_dominant_band_is_nearest_the_dominant_frequency(dominant_hz, seed):
    motion = brush_motion(feathered_mask(), BrushSettings(dominant_hz=dominant_hz, seed=seed))
    frequencies = band_frequencies(motion.num_bands, motion.num_frames, motion.fps)
    nearest = int(np.argmin(np.abs(frequencies - dominant_hz)))
    amplitude = mean_amplitude(motion)
    amplitude[0] = 0.0  # band 0 is derived from the others (frame 0 is the photo), not a sway
    assert int(np.argmax(amplitude)) == nearest
    # and it is a real peak, not a tie with the neighbours
    others = np.delete(amplitude[1:], nearest - 1)
    assert amplitude[nearest] > 1.1 * others.max()


def test_falloff_mode_has_decreasing_band_energy():
    motion = brush_motion(feathered_mask(), BrushSettings(dominant_hz=None, falloff_beta=1.5))
    energy = (np.abs(motion.spectrum) ** 2).mean(axis=(1, 2, 3))[1:]  # bands 1..K-1
    decreasing = np.mean(np.diff(energy) < 0)
    assert decreasing >= 0.9
    assert energy[0] > 100 * energy[-1]
    assert energy[0] == energy.max()


def test_flat_falloff_spreads_energy_evenly():
    motion = brush_motion(feathered_mask(), BrushSettings(dominant_hz=None, falloff_beta=0.0))
    amplitude = mean_amplitude(motion)[1:]
    assert amplitude.max() < 1.5 * amplitude.min()


# --- direction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction_deg", [0.0, 30.0, 90.0, 135.0, -60.0])
def test_motion_follows_the_main_direction(direction_deg):
    mask = feathered_mask()
    brush = BrushSettings(direction_deg=direction_deg, direction_spread_deg=5.0, seed=11)
    angle, _ = principal_angle_deg(brush_motion(mask, brush), mask)
    assert axis_difference_deg(angle, direction_deg % 180.0) < 15.0


def test_larger_spread_gives_more_sideways_motion():
    mask = feathered_mask()
    _, narrow_ratio = principal_angle_deg(brush_motion(mask, BrushSettings(direction_spread_deg=2.0)), mask)
    _, wide_ratio = principal_angle_deg(brush_motion(mask, BrushSettings(direction_spread_deg=60.0)), mask)
    assert narrow_ratio < 0.15          # mostly a sway along one axis
    assert wide_ratio > 2 * narrow_ratio


# --- space -----------------------------------------------------------------------------------------


def mean_gradient(motion, mask):
    """Mean |spatial gradient| of the displacement over the loop, inside the eroded mask."""
    texture = motion_to_texture(motion)[::5]  # (T/5, 2, H, W)
    gradient_y, gradient_x = np.gradient(texture, axis=(2, 3))
    magnitude = np.sqrt(gradient_x ** 2 + gradient_y ** 2)
    inner = cv2.erode((mask == 1).astype(np.uint8), np.ones((3, 3), np.uint8)) == 1
    return magnitude[:, :, inner].mean()


@pytest.mark.parametrize("seed", [0, 5])
def test_larger_coherence_gives_smoother_motion(seed):
    mask = feathered_mask()
    rough = mean_gradient(brush_motion(mask, BrushSettings(coherence_px=4.0, seed=seed)), mask)
    medium = mean_gradient(brush_motion(mask, BrushSettings(coherence_px=12.0, seed=seed)), mask)
    smooth = mean_gradient(brush_motion(mask, BrushSettings(coherence_px=40.0, seed=seed)), mask)
    assert smooth < medium < rough
    assert smooth < 0.4 * rough


def test_neighbouring_pixels_move_together():
    mask = np.ones((HEIGHT, WIDTH), np.float32)
    texture = motion_to_texture(brush_motion(mask, BrushSettings(coherence_px=24.0)))  # (T, 2, H, W)
    here = texture[:, :, :, :-2].reshape(-1)
    two_to_the_right = texture[:, :, :, 2:].reshape(-1)
    assert np.corrcoef(here, two_to_the_right)[0, 1] > 0.95


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask, brush, match", [
    (np.ones((4, 5, 3)), BrushSettings(), "2D"),
    (np.ones(10), BrushSettings(), "2D"),
    (np.zeros((0, 5)), BrushSettings(), "empty"),
    (np.where(np.eye(6) > 0, np.nan, 1.0), BrushSettings(), "NaN"),
    (np.full((6, 6), 1.5), BrushSettings(), r"\[0, 1\]"),
    (np.full((6, 6), -0.1), BrushSettings(), r"\[0, 1\]"),
    (np.ones((6, 6)), BrushSettings(amplitude_px=-1.0), "amplitude_px"),
    (np.ones((6, 6)), BrushSettings(amplitude_px=float("nan")), "amplitude_px"),
    (np.ones((6, 6)), BrushSettings(dominant_hz=0.0), "dominant_hz"),
    (np.ones((6, 6)), BrushSettings(dominant_hz=-0.5), "dominant_hz"),
    (np.ones((6, 6)), BrushSettings(dominant_hz=3.2), "dominant_hz"),
    (np.ones((6, 6)), BrushSettings(dominant_hz=float("nan")), "dominant_hz"),
    (np.ones((6, 6)), BrushSettings(coherence_px=0.0), "coherence_px"),
    (np.ones((6, 6)), BrushSettings(coherence_px=-3.0), "coherence_px"),
    (np.ones((6, 6)), BrushSettings(direction_spread_deg=-1.0), "direction_spread_deg"),
    (np.ones((6, 6)), BrushSettings(falloff_beta=float("inf")), "falloff_beta"),
])
def test_bad_inputs_raise_one_clear_value_error(mask, brush, match):
    with pytest.raises(ValueError, match=match):
        brush_spectrum(mask, brush)


def test_bad_band_counts_raise_value_error():
    with pytest.raises(ValueError, match="bands"):
        brush_spectrum(np.ones((6, 6)), BrushSettings(), num_bands=1)
    with pytest.raises(ValueError, match="bands"):
        brush_spectrum(np.ones((6, 6)), BrushSettings(), num_bands=80, num_frames=150)


def test_the_highest_band_is_a_valid_dominant_frequency():
    spectrum = brush_spectrum(np.ones((6, 8)), BrushSettings(dominant_hz=3.0), num_bands=16)
    assert np.argmax(np.abs(spectrum[1:]).mean(axis=(1, 2, 3))) + 1 == 15  # band 0 is the derived anchor
    with pytest.raises(ValueError, match="dominant_hz"):
        brush_spectrum(np.ones((6, 8)), BrushSettings(dominant_hz=3.0), num_bands=15)
