"""Motion metrics: how close a predicted Motion is to a reference Motion of the same scene.

- band power P_k: mean over pixels of |S_k,x|^2 + |S_k,y|^2, expressed as the squared amplitude in
  pixels of the band's sinusoid (S_k * 2 / T; DC and Nyquist * 1 / T).
- spectrum error: per band k, |log10(P_k,pred + eps) - log10(P_k,ref + eps)| (decades of power; 1.0
  is a 10x power or ~3.2x amplitude mismatch); eps = (0.01 px)^2 is the floor under which a band
  counts as still. `spectrum_error` is the mean over all bands, `spectrum_error_per_band` the (K,) vector.
- band log ratio: the same per band, signed (+ too strong, - too weak), over bands 1..K-1 only (DC
  follows from the others, F_0 = 0); band_log_error is the mean of its absolute values.
- low band share: the share of the power of bands 1..K-1 in bands 1-4 (real sway: most of it).
- |F_0|: mean displacement of frame 0 in px (0 by construction); frame step: mean over pixels and
  the T - 1 steps inside the loop of |F_{t+1} - F_t| in px (jitter); mean displacement: of |F_t|.
- motion-region IoU: a pixel moves when its mean displacement over the loop, mean_t |F_t(p)|,
  exceeds 0.5 px at 256 x 160 (scaled with sqrt(H * W / (256 * 160)) at other sizes, so the same
  scene gives the same mask at any size); IoU of the predicted and the reference masks, 1 when
  both are empty. Chance level: the expected IoU of a random mask of the predicted area, p q / (p + q - p q).
- photo dependence: mean |cosine| between the spectra (bands 1..K-1, resized to a common grid) of
  predictions for photos of different clips: 1 when the output ignores the photo.
- loop seam: app.core.loop.loop_seam (mean |F_T - F_1| plus gradients) and seam_ratio (the jump from
  the last frame to the first over the median step inside the loop) of the prediction.

Two motions are compared at the reference's size: a prediction at another size is resized
(displacements scale with the grid), missing bands count as zero; loop length and fps must agree.
docs/evaluation.md explains each figure and how to run the evaluation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.core.loop import loop_seam, seam_ratio
from app.core.spectral import Motion, displacement_at, motion_to_texture, resize_motion

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


# --- the figures of issue 10: one motion's own statistics ----------------------------------------

LOW_BANDS = (1, 4)                   # bands 1-4 (0.2-0.8 Hz for 150 frames at 30 fps): where sway lives
COMMON_GRID = (24, 40)               # (height, width) on which spectra of different photos are compared


def oscillation_bands(num_bands: int) -> np.ndarray:
    """The bands 1..K-1: every band but DC (which follows from the others, F_0 = 0)."""
    return np.arange(1, num_bands)


def band_log_ratio(prediction: Motion, reference: Motion, eps: float = POWER_EPS_PX2) -> np.ndarray:
    """(K - 1,) signed log10(P_pred + eps) - log10(P_ref + eps) of bands 1..K-1 (prediction aligned).

    +1 is a band 10x too strong (in power), -1 10x too weak; 0 for identical spectra."""
    prediction = align_motion(prediction, reference)
    return log_ratio_of_powers(band_power(prediction), band_power(reference), eps)


def log_ratio_of_powers(predicted_power: np.ndarray, reference_power: np.ndarray,
                        eps: float = POWER_EPS_PX2) -> np.ndarray:
    """(K - 1,) signed log10 power ratio of bands 1..K-1 from two (K,) band powers."""
    bands = oscillation_bands(len(reference_power))
    return np.log10(predicted_power[bands] + eps) - np.log10(reference_power[bands] + eps)


def low_band_share(power: np.ndarray, low: tuple[int, int] = LOW_BANDS) -> float | None:
    """Share of the power of bands 1..K-1 that lies in bands low[0]..low[1]; None for a still motion."""
    bands = oscillation_bands(len(power))
    total = float(power[bands].sum())
    if total <= 0.0:
        return None
    return float(power[low[0]:low[1] + 1].sum()) / total


def first_frame_px(motion: Motion) -> float:
    """Mean |F_0| over pixels in px (0 by construction: frame 0 is the photo)."""
    return float(np.linalg.norm(displacement_at(motion, 0.0), axis=0).mean())


def frame_steps(texture: np.ndarray) -> np.ndarray:
    """(T - 1, H, W) |F_{t+1}(p) - F_t(p)| in px of a motion texture (T, 2, H, W): the jitter."""
    return np.linalg.norm(np.diff(texture, axis=0), axis=1)


def mean_frame_step(motion: Motion) -> float:
    """Mean over pixels and the T - 1 steps inside the loop of |F_{t+1} - F_t| in px (0 when still)."""
    return float(frame_steps(motion_to_texture(motion)).mean())


def chance_iou(predicted_fraction: float, reference_fraction: float) -> float:
    """Expected IoU of a random mask covering predicted_fraction of the image with the reference mask.

    E|A and B| / E|A or B| = p q / (p + q - p q); 1 when both masks are empty (as mask_iou)."""
    p, q = float(predicted_fraction), float(reference_fraction)
    union = p + q - p * q
    return 1.0 if union <= 0.0 else p * q / union


def motion_statistics(motion: Motion) -> dict:
    """One motion's own figures, from a single motion texture.

    {"band_power": (K,) px^2, "displacement": (H, W) mean_t |F_t| px, "first_frame_px",
     "frame_step_px", "mean_displacement_px", "low_band_share" (None when still), "seam_ratio"}
    """
    texture = motion_to_texture(motion)  # (T, 2, H, W)
    power = band_power(motion)
    displacement = np.linalg.norm(texture, axis=1).mean(axis=0)  # (H, W)
    # the seam ratio of app.core.loop.seam_ratio, from the texture already at hand
    component_steps = np.abs(np.diff(texture, axis=0)).mean(axis=(1, 2, 3))  # (T - 1,)
    seam_jump = np.abs(texture[0] - texture[-1]).mean()
    return {
        "band_power": power,
        "displacement": displacement,
        "first_frame_px": float(np.linalg.norm(texture[0], axis=0).mean()),
        "frame_step_px": float(frame_steps(texture).mean()),
        "mean_displacement_px": float(displacement.mean()),
        "low_band_share": low_band_share(power),
        "seam_ratio": float(seam_jump / max(np.median(component_steps), 1e-12)),
    }


def score_prediction(prediction: Motion, reference: Motion, reference_statistics: dict | None = None) -> dict:
    """Every issue-10 figure of a prediction against its reference (prediction aligned to it).

    reference_statistics: motion_statistics(reference), when already computed for other methods.
    {"iou", "iou_chance", "band_log_ratio": [K - 1], "band_log_error" (mean |ratio| over bands
     1..K-1), "low_band_share", "first_frame_px", "frame_step_px", "mean_displacement_px", "seam_ratio"}
    """
    prediction = align_motion(prediction, reference)
    if reference_statistics is None:
        reference_statistics = motion_statistics(reference)
    own = motion_statistics(prediction)
    threshold = moving_threshold(reference.height, reference.width)
    predicted_mask = own["displacement"] > threshold
    reference_mask = reference_statistics["displacement"] > threshold
    ratio = log_ratio_of_powers(own["band_power"], reference_statistics["band_power"])
    return {
        "iou": mask_iou(predicted_mask, reference_mask),
        "iou_chance": chance_iou(predicted_mask.mean(), reference_mask.mean()),
        "band_log_ratio": [float(v) for v in ratio],
        "band_log_error": float(np.abs(ratio).mean()),
        **{key: own[key] for key in ("low_band_share", "first_frame_px", "frame_step_px",
                                     "mean_displacement_px", "seam_ratio")},
    }


# --- photo dependence ----------------------------------------------------------------------------


def grid_spectrum(motion: Motion, grid: tuple[int, int] = COMMON_GRID) -> np.ndarray:
    """complex64 vector of bands 1..K-1 of a motion resized to the common grid (height, width)."""
    resized = resize_motion(motion, *grid)
    return resized.spectrum[1:].reshape(-1)


def spectrum_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """|<a, b>| / (|a| |b|) of two complex spectra of equal shape: 1 identical (up to a complex
    factor), 0 orthogonal; None when either is zero (a still motion has no direction)."""
    a, b = np.asarray(a, np.complex128).reshape(-1), np.asarray(b, np.complex128).reshape(-1)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms <= 0.0:
        return None
    return float(abs(np.vdot(a, b)) / norms)


def photo_dependence(vectors: list, groups: list) -> tuple[dict, float | None]:
    """Mean |cosine| between spectra of different groups (photos of different clips).

    vectors: grid_spectrum of each prediction; groups: its clip. Returns ({group: mean over pairs
    with one member in the group}, mean over all pairs); None where no pair exists. Low values mean
    the spectra differ with the photo; 1 means one spectrum for every photo.
    """
    keep = [i for i, v in enumerate(vectors) if np.linalg.norm(v) > 0]
    per_group = {group: None for group in groups}
    if len(keep) < 2:
        return per_group, None
    matrix = np.stack([np.asarray(vectors[i], np.complex128) for i in keep])  # (N, D)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    cosines = np.abs(matrix.conj() @ matrix.T)  # (N, N)
    labels = np.array([groups[i] for i in keep], dtype=object)
    different = labels[:, None] != labels[None, :]
    for group in per_group:
        rows = labels == group
        pairs = different & rows[:, None]
        per_group[group] = float(cosines[pairs].mean()) if pairs.any() else None
    upper = np.triu(different, k=1)
    return per_group, float(cosines[upper].mean()) if upper.any() else None


def magnitude_dependence(vectors: list, groups: list) -> tuple[dict, float | None]:
    """photo_dependence of the amplitudes |S| alone: how alike *where and how strongly* things move is
    between photos of different clips, whatever the phases.

    For the reference motions this is the photo dependence that a model with every amplitude right
    but its phases drawn from the seed (one phase field for every photo) would score: with shared
    phases the phases cancel in the inner product. Never below photo_dependence (|sum a conj b| <=
    sum |a| |b|): a model's photo dependence near its magnitude dependence means phases that follow
    the seed, far below it phases that follow the photo.
    """
    return photo_dependence([np.abs(np.asarray(v)).astype(np.complex128) for v in vectors], groups)
