"""Loop seam measures: how much the last frame of a motion differs from the first.

seam = mean |F_T - F_1| + mean |grad F_T - grad F_1|, with F_1 the first and F_T the last displacement
field of the loop and grad the forward differences along x and y. Means (not sums) over pixels keep
the number comparable across resolutions. The torch version is differentiable: the diffusion sampler
uses its gradient for loop self-guidance.
"""

from __future__ import annotations

import numpy as np

from app.core.spectral import Motion, band_factors


def _spatial_gradients(field):
    """Forward differences along x and y of (..., 2, H, W)."""
    return field[..., :, 1:] - field[..., :, :-1], field[..., 1:, :] - field[..., :-1, :]


def seam_between(first: np.ndarray, last: np.ndarray) -> float:
    """Seam measure between two displacement fields (2, H, W)."""
    first_dx, first_dy = _spatial_gradients(first)
    last_dx, last_dy = _spatial_gradients(last)
    return float(np.abs(last - first).mean() + np.abs(last_dx - first_dx).mean()
                 + np.abs(last_dy - first_dy).mean())


def first_and_last_fields(motion: Motion):
    """F_1 and F_T of a motion, (2, H, W) each, without building the whole texture."""
    factors = band_factors(motion.num_bands, motion.num_frames, 0.0), \
        band_factors(motion.num_bands, motion.num_frames, motion.num_frames - 1.0)
    return tuple(np.tensordot(f, motion.spectrum, axes=(0, 0)).real for f in factors)


def loop_seam(motion: Motion) -> float:
    """Seam measure of a motion (numpy)."""
    first, last = first_and_last_fields(motion)
    return seam_between(first, last)


def seam_ratio(motion: Motion) -> float:
    """Seam jump over the median jump between consecutive frames inside the loop.

    About 1 (up to pi/2 for a pure sinusoid) means the wrap from the last frame to the first is
    as smooth as a typical step of the loop; a cut loop gives much larger values.
    """
    from app.core.spectral import motion_to_texture

    texture = motion_to_texture(motion)  # (T, 2, H, W)
    steps = np.abs(np.diff(texture, axis=0)).mean(axis=(1, 2, 3))  # (T-1,)
    seam_jump = np.abs(texture[0] - texture[-1]).mean()
    return float(seam_jump / max(np.median(steps), 1e-12))


def loop_seam_torch(spectrum, num_frames: int):
    """Differentiable seam measure of complex spectra (..., K, 2, H, W); returns (...) per volume."""
    import torch

    num_bands = spectrum.shape[-4]
    first_factors = torch.as_tensor(band_factors(num_bands, num_frames, 0.0), device=spectrum.device)
    last_factors = torch.as_tensor(band_factors(num_bands, num_frames, num_frames - 1.0),
                                   device=spectrum.device)
    first = torch.einsum("k,...kchw->...chw", first_factors, spectrum.to(torch.complex64)).real
    last = torch.einsum("k,...kchw->...chw", last_factors, spectrum.to(torch.complex64)).real
    first_dx, first_dy = _spatial_gradients(first)
    last_dx, last_dy = _spatial_gradients(last)
    dims = (-3, -2, -1)
    return ((last - first).abs().mean(dim=dims) + (last_dx - first_dx).abs().mean(dim=dims)
            + (last_dy - first_dy).abs().mean(dim=dims))
