"""Frequency-adaptive normalization of spectral volumes (the representation the diffusion model sees).

A spectrum (..., K, 2, H, W) complex becomes (..., K, 4, H, W) real with channels
(Re x, Im x, Re y, Im y). Each band k is divided by its own scale s_k (the 95th percentile of
coefficient magnitude |S_k| over a dataset), then compressed with sign(v) * sqrt(|v|), applied to
real and imaginary parts alike. The inverse is exact. Scales travel with a dataset (its index) and
with a model (its checkpoint). Numpy and torch versions share the same formulas.
"""

from __future__ import annotations

import numpy as np

SCALE_PERCENTILE = 95.0
MIN_SCALE = 1e-6


def frequency_scales(spectra, percentile: float = SCALE_PERCENTILE) -> np.ndarray:
    """(K,) per-band scale: the percentile of |S_k| over every example, axis and pixel.

    spectra: one (K, 2, H, W) array, an (N, K, 2, H, W) array, or an iterable of (K, 2, H, W).
    Bands that never move get MIN_SCALE so the forward map stays finite.
    """
    if isinstance(spectra, np.ndarray):
        stacked = spectra if spectra.ndim == 5 else spectra[None]
        magnitudes = np.abs(stacked).transpose(1, 0, 2, 3, 4).reshape(stacked.shape[1], -1)  # (K, N*2*H*W)
    else:
        per_band = None
        for spectrum in spectra:
            flat = np.abs(np.asarray(spectrum)).reshape(spectrum.shape[0], -1)  # (K, 2*H*W)
            per_band = flat if per_band is None else np.concatenate([per_band, flat], axis=1)
        if per_band is None:
            raise ValueError("Cannot compute normalization scales from an empty set of spectra.")
        magnitudes = per_band
    scales = np.percentile(magnitudes, percentile, axis=1)
    return np.maximum(scales, MIN_SCALE).astype(np.float32)


def _band_scales(scales, ndim_tail: int = 3):
    """Reshape (K,) scales to broadcast over (..., K, C, H, W)."""
    return scales.reshape((-1,) + (1,) * ndim_tail)


def normalize_spectrum(spectrum: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Complex (..., K, 2, H, W) -> float32 (..., K, 4, H, W) normalized (Re x, Im x, Re y, Im y)."""
    scaled = spectrum / _band_scales(np.asarray(scales, np.float32))
    parts = np.stack([scaled.real, scaled.imag], axis=-3)  # (..., K, 2 axes, 2 parts, H, W)
    parts = parts.reshape(parts.shape[:-5] + (parts.shape[-5], 4) + parts.shape[-2:])
    return (np.sign(parts) * np.sqrt(np.abs(parts))).astype(np.float32)


def denormalize_spectrum(normalized: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Exact inverse of normalize_spectrum: float (..., K, 4, H, W) -> complex64 (..., K, 2, H, W)."""
    parts = np.sign(normalized) * np.square(normalized)
    spectrum = (parts[..., 0::2, :, :] + 1j * parts[..., 1::2, :, :]) * _band_scales(np.asarray(scales, np.float32))
    return spectrum.astype(np.complex64)


def normalize_spectrum_torch(spectrum, scales):
    """Torch version of normalize_spectrum (differentiable)."""
    import torch

    scales = torch.as_tensor(scales, dtype=torch.float32, device=spectrum.device)
    scaled = spectrum / _band_scales(scales)
    parts = torch.stack([scaled.real, scaled.imag], dim=-3)  # (..., K, 2, 2, H, W)
    parts = parts.reshape(parts.shape[:-5] + (parts.shape[-5], 4) + parts.shape[-2:])
    return torch.sign(parts) * torch.sqrt(torch.abs(parts))


def denormalize_spectrum_torch(normalized, scales):
    """Torch version of denormalize_spectrum (differentiable): (..., K, 4, H, W) -> complex (..., K, 2, H, W)."""
    import torch

    scales = torch.as_tensor(scales, dtype=torch.float32, device=normalized.device)
    parts = torch.sign(normalized) * torch.square(normalized)
    spectrum = torch.complex(parts[..., 0::2, :, :].float(), parts[..., 1::2, :, :].float())
    return spectrum * _band_scales(scales)
