"""Motion metrics: how close a predicted Motion is to a reference Motion of the same scene.

- spectrum error: per band k, the power P_k = mean over pixels of |S_k,x|^2 + |S_k,y|^2, expressed
  as the squared amplitude in pixels of the band's sinusoid (S_k * 2 / T; DC and Nyquist * 1 / T).
  The error of band k is |log10(P_k,pred + eps) - log10(P_k,ref + eps)| (decades of power; 1.0 is
  a 10x power or ~3.2x amplitude mismatch); eps = (0.01 px)^2 is the floor under which a band
  counts as still. `spectrum_error` is the mean over bands, `spectrum_error_per_band` the (K,) vector.
- motion-region IoU: a pixel moves when its mean displacement over the loop, mean_t |F_t(p)|,
  exceeds 0.5 px at 256 x 160 (scaled with sqrt(H * W / (256 * 160)) at other sizes, so the same
  scene gives the same mask at any size); IoU of the predicted and the reference masks, 1 when
  both are empty.
- loop seam: app.core.loop.loop_seam (mean |F_T - F_1| plus gradients) and seam_ratio (the jump from
  the last frame to the first over the median step inside the loop) of the prediction.

Two motions are compared at the reference's size: a prediction at another size is resized
(displacements scale with the grid), missing bands count as zero; loop length and fps must agree.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.core.loop import loop_seam, seam_ratio
from app.core.spectral import Motion, motion_to_texture, resize_motion

POWER_EPS_PX2 = 1e-4                 # (0.01 px)^2: the power floor of the log spectrum error
MOVING_THRESHOLD_PX = 0.5            # mean_t |F_t(p)| above this moves, at ...
THRESHOLD_REFERENCE_SIZE = (256, 160)  # ... this (width, height)


# --- alignment -----------------------------------------------------------------------------------


def align_motion(prediction: Motion, reference: Motion) -> Motion:
    """The prediction at the reference's size and band count (extra zero bands); timing must match."""
    if prediction.num_frames != reference.num_frames or not np.isclose(prediction.fps, reference.fps):
        raise ValueError(
            f"The predicted loop ({prediction.num_frames} frames at {prediction.fps:g} fps) does not match "
            f"the reference ({reference.num_frames} frames at {reference.fps:g} fps).")
    prediction = resize_motion(prediction, reference.height, reference.width)
    if prediction.num_bands < reference.num_bands:
        padded = np.zeros_like(reference.spectrum)
        padded[:prediction.num_bands] = prediction.spectrum
        prediction = replace(prediction, spectrum=padded)
    elif prediction.num_bands > reference.num_bands:
        prediction = replace(prediction, spectrum=prediction.spectrum[:reference.num_bands].copy())
    return prediction


# --- spectrum --------------------------------------------------------------------------------------


def band_power(motion: Motion) -> np.ndarray:
    """(K,) mean over pixels of the squared sinusoid amplitude of each band, in px^2."""
    k = np.arange(motion.num_bands)
    weights = np.where(k == 0, 1.0, 2.0) / motion.num_frames  # |S_k| -> amplitude in px
    if motion.num_frames % 2 == 0:
        weights[k == motion.num_frames // 2] = 1.0 / motion.num_frames
    squared = np.square(np.abs(motion.spectrum.astype(np.complex128)))  # (K, 2, H, W)
    return squared.sum(axis=1).mean(axis=(1, 2)) * weights ** 2


def spectrum_error_per_band(prediction: Motion, reference: Motion, eps: float = POWER_EPS_PX2) -> np.ndarray:
    """(K,) |log10(P_pred + eps) - log10(P_ref + eps)| per band."""
    prediction = align_motion(prediction, reference)
    return np.abs(np.log10(band_power(prediction) + eps) - np.log10(band_power(reference) + eps))


def spectrum_error(prediction: Motion, reference: Motion, eps: float = POWER_EPS_PX2) -> float:
    """Mean over bands of the log10 power error (0 for identical spectra)."""
    return float(spectrum_error_per_band(prediction, reference, eps).mean())


# --- motion region -------------------------------------------------------------------------------


def mean_displacement(motion: Motion) -> np.ndarray:
    """(H, W) mean over the loop of |F_t(p)| in pixels."""
    return np.linalg.norm(motion_to_texture(motion), axis=1).mean(axis=0)


def moving_threshold(height: int, width: int, threshold_px: float = MOVING_THRESHOLD_PX) -> float:
    """The moving threshold at height x width: threshold_px at 256 x 160, scaled with the image size."""
    reference_width, reference_height = THRESHOLD_REFERENCE_SIZE
    return threshold_px * float(np.sqrt(height * width / (reference_height * reference_width)))


def motion_mask(motion: Motion, threshold_px: float = MOVING_THRESHOLD_PX) -> np.ndarray:
    """(H, W) bool: pixels whose mean displacement exceeds the size-scaled threshold."""
    return mean_displacement(motion) > moving_threshold(motion.height, motion.width, threshold_px)


def mask_iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty."""
    union = np.logical_or(mask_a, mask_b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(mask_a, mask_b).sum() / union)


def motion_iou(prediction: Motion, reference: Motion, threshold_px: float = MOVING_THRESHOLD_PX) -> float:
    """IoU of the moving regions of two motions (prediction aligned to the reference)."""
    prediction = align_motion(prediction, reference)
    return mask_iou(motion_mask(prediction, threshold_px), motion_mask(reference, threshold_px))


# --- all together --------------------------------------------------------------------------------


def compare_motions(prediction: Motion, reference: Motion) -> dict:
    """Every metric of a prediction against a reference.

    {"spectrum_error": float, "spectrum_error_per_band": [K floats], "iou": float, "seam": float,
     "seam_ratio": float, "mean_displacement_px": float (prediction), "reference_mean_displacement_px"}
    """
    prediction = align_motion(prediction, reference)
    per_band = spectrum_error_per_band(prediction, reference)
    predicted_magnitude, reference_magnitude = mean_displacement(prediction), mean_displacement(reference)
    threshold = moving_threshold(reference.height, reference.width)
    return {
        "spectrum_error": float(per_band.mean()),
        "spectrum_error_per_band": [float(v) for v in per_band],
        "iou": mask_iou(predicted_magnitude > threshold, reference_magnitude > threshold),
        "seam": loop_seam(prediction),
        "seam_ratio": seam_ratio(prediction),
        "mean_displacement_px": float(predicted_magnitude.mean()),
        "reference_mean_displacement_px": float(reference_magnitude.mean()),
    }
