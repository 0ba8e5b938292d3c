"""Frequency-adaptive normalization and the loop seam measure."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.loop import loop_seam, loop_seam_torch, seam_ratio
from app.core.normalize import (
    denormalize_spectrum, denormalize_spectrum_torch, frequency_scales, normalize_spectrum,
    normalize_spectrum_torch,
)
from app.core.spectral import Motion, motion_from_texture


def random_spectrum(seed, shape=(16, 2, 5, 6), scale=3.0):
    rng = np.random.default_rng(seed)
    return (scale * (rng.normal(size=shape) + 1j * rng.normal(size=shape))).astype(np.complex64)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
def test_normalization_inverse_is_exact(seed, scale):
    spectrum = random_spectrum(seed, scale=scale)
    scales = frequency_scales(spectrum)
    normalized = normalize_spectrum(spectrum, scales)
    assert normalized.shape == (16, 4, 5, 6) and normalized.dtype == np.float32
    np.testing.assert_allclose(denormalize_spectrum(normalized, scales), spectrum, rtol=1e-4, atol=1e-5 * scale)


def test_normalized_values_are_order_one_per_band():
    bands = np.arange(1, 17, dtype=np.float32)[:, None, None, None] ** -2.0  # steep falloff
    spectra = random_spectrum(0, shape=(20, 16, 2, 8, 8)) * bands
    scales = frequency_scales(spectra)
    normalized = normalize_spectrum(spectra, scales)  # (20, 16, 4, 8, 8)
    per_band = np.percentile(np.abs(normalized), 95, axis=(0, 2, 3, 4))
    assert np.all(per_band > 0.5) and np.all(per_band < 1.5)


def test_scales_are_the_95th_percentile_of_magnitudes():
    spectra = [random_spectrum(s) for s in range(3)]
    scales = frequency_scales(spectra)
    expected = np.percentile(np.abs(np.stack(spectra)).transpose(1, 0, 2, 3, 4).reshape(16, -1), 95, axis=1)
    np.testing.assert_allclose(scales, expected, rtol=1e-5)
    assert np.all(frequency_scales(np.zeros((16, 2, 3, 3), np.complex64)) > 0)


def test_torch_normalization_matches_numpy():
    spectrum = random_spectrum(4)
    scales = frequency_scales(spectrum)
    normalized = normalize_spectrum_torch(torch.from_numpy(spectrum), scales)
    np.testing.assert_allclose(normalized.numpy(), normalize_spectrum(spectrum, scales), atol=1e-5)
    back = denormalize_spectrum_torch(normalized, scales)
    np.testing.assert_allclose(back.numpy(), spectrum, rtol=1e-4, atol=1e-4)


def test_seam_is_zero_for_a_motion_without_motion_and_positive_otherwise():
    assert loop_seam(Motion(np.zeros((16, 2, 4, 4), np.complex64))) == 0.0
    assert loop_seam(Motion(random_spectrum(1))) > 0.0


def test_seam_of_a_ramp_is_large_and_of_a_sinusoid_small():
    t = np.arange(150, dtype=np.float32)
    ramp = np.broadcast_to((t / 10)[:, None, None, None], (150, 2, 6, 6)).copy()
    sinusoid = np.broadcast_to(np.sin(2 * np.pi * t / 150)[:, None, None, None], (150, 2, 6, 6)).copy()
    ramp_motion, sine_motion = motion_from_texture(ramp), motion_from_texture(sinusoid)
    assert loop_seam(ramp_motion) > 10 * loop_seam(sine_motion)
    assert seam_ratio(sine_motion) < np.pi / 2
    assert seam_ratio(ramp_motion) > 5


def test_torch_seam_matches_numpy_and_has_gradients():
    spectrum = random_spectrum(2)
    tensor = torch.from_numpy(spectrum).requires_grad_(True)
    seam = loop_seam_torch(tensor, 150)
    assert float(seam.detach()) == pytest.approx(loop_seam(Motion(spectrum)), rel=1e-5)
    seam.backward()
    assert tensor.grad is not None and torch.isfinite(tensor.grad.abs()).all() and tensor.grad.abs().sum() > 0
    batched = loop_seam_torch(torch.from_numpy(np.stack([spectrum, 2 * spectrum])), 150)
    assert batched.shape == (2,) and float(batched[1]) == pytest.approx(2 * float(batched[0]), rel=1e-5)
