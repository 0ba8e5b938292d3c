"""The Motion type: FFT conventions, evaluation at any time, edits and files."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.spectral import (
    Motion, MotionFileError, band_frequencies, crop_motion, displacement_at, flip_horizontal,
    flip_vertical, load_motion, magnify, mask_motion, motion_from_texture, motion_to_texture,
    resize_motion, save_motion, scale_bands, zero_motion,
)


def random_texture(num_frames, height, width, seed):
    """Random displacements that start at the photo (F_0 = 0), as every motion texture does."""
    texture = np.random.default_rng(seed).normal(size=(num_frames, 2, height, width)).astype(np.float32)
    return texture - texture[:1]


def band_limited_texture(num_frames, height, width, num_bands, seed):
    """A texture whose spectrum lives in the lowest num_bands bands."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None, None, None]
    texture = np.zeros((num_frames, 2, height, width), np.float64)
    for k in range(1, num_bands):
        amplitude = rng.normal(size=(1, 2, height, width))
        phase = rng.uniform(0, 2 * np.pi, size=(1, 2, height, width))
        texture += amplitude * np.cos(2 * np.pi * k * t / num_frames + phase)
    return (texture - texture[:1]).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(num_frames=st.integers(2, 40), seed=st.integers(0, 10_000))
def test_fft_round_trip_is_exact_with_all_bands(num_frames, seed):
    texture = random_texture(num_frames, 3, 4, seed)
    motion = motion_from_texture(texture, num_bands=num_frames // 2 + 1)
    np.testing.assert_allclose(motion_to_texture(motion), texture, atol=1e-4)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), num_bands=st.integers(2, 16))
def test_fft_round_trip_of_band_limited_motion_with_16_bands(seed, num_bands):
    texture = band_limited_texture(150, 4, 5, num_bands, seed)
    motion = motion_from_texture(texture, num_bands=16)
    error = np.abs(motion_to_texture(motion) - texture).max()
    assert error < 1e-4 * max(1.0, np.abs(texture).max())


def test_truncating_to_16_bands_drops_only_high_frequency_energy():
    texture = band_limited_texture(150, 4, 5, 16, 1) + 0.1 * random_texture(150, 4, 5, 2)
    motion = motion_from_texture(texture, num_bands=16)
    residual = motion_to_texture(motion) - texture
    residual -= residual.mean(axis=0)  # re-anchoring frame 0 shifts every frame by one constant
    # The lost part is the high-band share of the noise: at most the noise itself.
    assert np.sqrt(np.mean(residual ** 2)) <= 0.1 * 1.01


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), num_bands=st.integers(2, 16), num_frames=st.sampled_from([30, 31, 150]))
def test_any_spectrum_makes_a_motion_whose_frame_0_is_the_photo(seed, num_bands, num_frames):
    rng = np.random.default_rng(seed)
    spectrum = (rng.normal(size=(num_bands, 2, 3, 4)) + 1j * rng.normal(size=(num_bands, 2, 3, 4))) * 50
    texture = motion_to_texture(Motion(spectrum.astype(np.complex64), num_frames))
    assert np.abs(texture[0]).max() < 1e-3
    # only the constant the old DC band added changes: every frame-to-frame step is kept
    full = np.zeros((num_frames // 2 + 1, 2, 3, 4), np.complex128)
    full[:num_bands] = spectrum
    original = np.fft.irfft(full, n=num_frames, axis=0)
    np.testing.assert_allclose(np.diff(texture, axis=0), np.diff(original, axis=0), atol=1e-3)


def test_edits_keep_frame_0_at_the_photo():
    motion = motion_from_texture(random_texture(150, 3, 4, 7))
    for edited in (scale_bands(motion, np.linspace(0, 3, 16)), magnify(motion, 2.5),
                   resize_motion(motion, 6, 9), flip_horizontal(motion)):
        assert np.abs(motion_to_texture(edited)[0]).max() < 1e-3


def test_spectrum_matches_numpy_rfft_convention():
    texture = random_texture(150, 2, 3, 0)
    motion = motion_from_texture(texture)
    # bands 1..15 are numpy's rfft; band 0 is derived so that frame 0 stays the photo
    np.testing.assert_allclose(motion.spectrum[1:], np.fft.rfft(texture, axis=0)[1:16], rtol=1e-5, atol=1e-4)
    assert motion.spectrum.dtype == np.complex64 and motion.spectrum.shape == (16, 2, 2, 3)


@settings(max_examples=20, deadline=None)
@given(frame=st.integers(0, 149), seed=st.integers(0, 1000))
def test_displacement_at_integer_time_equals_texture_frame(frame, seed):
    motion = motion_from_texture(random_texture(150, 3, 3, seed))
    np.testing.assert_allclose(displacement_at(motion, frame), motion_to_texture(motion)[frame], atol=1e-4)


def test_displacement_at_fractional_time_follows_the_sinusoid():
    t = np.arange(150)
    texture = np.zeros((150, 2, 1, 1), np.float32)
    texture[:, 0, 0, 0] = 3 * np.sin(2 * np.pi * 2 * t / 150)  # band 2
    motion = motion_from_texture(texture)
    for time in (0.5, 10.25, 149.75):
        expected = 3 * np.sin(2 * np.pi * 2 * time / 150)
        assert displacement_at(motion, time)[0, 0, 0] == pytest.approx(expected, abs=1e-4)


def test_slowdown_evaluates_the_series_at_t_over_s():
    motion = motion_from_texture(random_texture(150, 2, 2, 3))
    np.testing.assert_allclose(displacement_at(motion, 30, slowdown=4), displacement_at(motion, 7.5), atol=1e-6)


def test_band_frequencies_are_0_2_hz_steps():
    np.testing.assert_allclose(band_frequencies(16, 150, 30), np.arange(16) * 0.2)


def test_scale_bands_and_magnify():
    motion = motion_from_texture(random_texture(150, 2, 2, 4))
    gains = np.zeros(16)
    gains[3] = 2.0
    scaled = scale_bands(motion, gains)
    assert np.all(scaled.spectrum[[1, 2, 4]] == 0)
    np.testing.assert_allclose(scaled.spectrum[3], 2 * motion.spectrum[3])
    np.testing.assert_allclose(motion_to_texture(magnify(motion, 0.5)), 0.5 * motion_to_texture(motion), atol=1e-5)
    with pytest.raises(ValueError):
        scale_bands(motion, np.ones(3))


def test_flip_negates_x_and_mirrors_the_grid():
    motion = motion_from_texture(random_texture(150, 3, 5, 5))
    flipped_texture = motion_to_texture(flip_horizontal(motion))
    texture = motion_to_texture(motion)
    np.testing.assert_allclose(flipped_texture[:, 0], -texture[:, 0, :, ::-1], atol=1e-5)
    np.testing.assert_allclose(flipped_texture[:, 1], texture[:, 1, :, ::-1], atol=1e-5)
    np.testing.assert_allclose(flip_horizontal(flip_horizontal(motion)).spectrum, motion.spectrum)
    vertical = motion_to_texture(flip_vertical(motion))
    np.testing.assert_allclose(vertical[:, 1], -texture[:, 1, ::-1, :], atol=1e-5)


def test_resize_scales_displacements_with_the_grid():
    texture = np.zeros((150, 2, 8, 10), np.float32)
    texture[:, 0] = 2.0 * np.sin(2 * np.pi * np.arange(150) / 150)[:, None, None]
    texture[:, 1] = -1.0 * np.sin(2 * np.pi * np.arange(150) / 150)[:, None, None]
    motion = motion_from_texture(texture)
    bigger = resize_motion(motion, 16, 30)  # y x2, x x3
    assert bigger.spectrum.shape == (16, 2, 16, 30)
    np.testing.assert_allclose(motion_to_texture(bigger)[:, 0], 3 * texture[:, 0, :1, :1].repeat(16, 1).repeat(30, 2), atol=1e-4)
    np.testing.assert_allclose(motion_to_texture(bigger)[:, 1], 2 * texture[:, 1, :1, :1].repeat(16, 1).repeat(30, 2), atol=1e-4)


def test_flip_commutes_with_resize():
    motion = motion_from_texture(random_texture(150, 8, 12, 6))
    a = flip_horizontal(resize_motion(motion, 4, 6)).spectrum
    b = resize_motion(flip_horizontal(motion), 4, 6).spectrum
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_crop_and_mask():
    motion = motion_from_texture(random_texture(150, 6, 7, 7))
    cropped = crop_motion(motion, 1, 2, 3, 4)
    np.testing.assert_array_equal(cropped.spectrum, motion.spectrum[:, :, 1:4, 2:6])
    with pytest.raises(ValueError):
        crop_motion(motion, 5, 0, 3, 3)
    mask = np.zeros((6, 7))
    mask[:, :3] = 1
    masked = mask_motion(motion, mask)
    assert np.all(masked.spectrum[..., 3:] == 0)
    np.testing.assert_array_equal(masked.spectrum[..., :3], motion.spectrum[..., :3])


def test_motion_rejects_bad_shapes():
    with pytest.raises(ValueError):
        Motion(np.zeros((16, 3, 4, 4), np.complex64))
    with pytest.raises(ValueError):
        Motion(np.zeros((16, 2, 4, 4), np.complex64), num_frames=10)


def test_save_load_round_trip(tmp_path):
    motion = Motion(motion_from_texture(random_texture(150, 4, 6, 8)).spectrum, 150, 24.0)
    path = tmp_path / "motion.npz"
    save_motion(str(path), motion)
    loaded = load_motion(str(path))
    np.testing.assert_array_equal(loaded.spectrum, motion.spectrum)
    assert (loaded.num_frames, loaded.fps) == (150, 24.0)
    assert [p.name for p in tmp_path.iterdir()] == ["motion.npz"]  # no temp files left


def test_load_rejects_bad_files_with_one_sentence(tmp_path):
    good = tmp_path / "good.npz"
    save_motion(str(good), zero_motion(4, 4))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, spectrum=np.zeros((16, 3, 4, 4), np.complex64), num_frames=150, fps=30.0)
    not_finite = tmp_path / "nan.npz"
    spectrum = np.zeros((16, 2, 4, 4), np.complex64)
    spectrum[0, 0, 0, 0] = np.nan
    np.savez(not_finite, spectrum=spectrum, num_frames=150, fps=30.0)
    missing_key = tmp_path / "missing.npz"
    np.savez(missing_key, spectrum=np.zeros((16, 2, 4, 4), np.complex64))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    for path, words in [(truncated, "truncated"), (wrong_shape, "shape"), (not_finite, "non-finite"),
                        (missing_key, "lacks"), (text, "truncated"), (tmp_path / "absent.npz", "does not exist")]:
        with pytest.raises(MotionFileError) as error:
            load_motion(str(path))
        message = str(error.value)
        assert words in message and "\n" not in message
