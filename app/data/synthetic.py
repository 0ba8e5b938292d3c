"""Synthetic videos with known oscillatory motion, for testing and benchmarking optical flow.

This module owns:
- `textured_image`: a deterministic natural-ish texture (multi-scale smoothed noise + shapes),
- `sinusoidal_motion_texture`: a known motion (a few smooth regions, each a sinusoid in time),
- `render_synthetic_video`: frames in which start-frame pixel p appears at p + F_t(p),
- `flow_error`: end-point error statistics of an estimated flow against the truth.

Conventions match `app.data.flow`: displacements are float32 (T, 2, H, W) in pixels,
channel 0 = x (right), channel 1 = y (down), and displacement at t = 0 is zero.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "textured_image",
    "sinusoidal_motion_texture",
    "render_synthetic_video",
    "warp_forward",
    "flow_error",
    "moving_mask",
]

# A pixel counts as "moving" when its true displacement reaches this size at some frame.
MOVING_THRESHOLD_PX = 0.5


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic natural-ish RGB texture: uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)

    # Multi-scale smoothed colour noise with a roughly 1/f spectrum.
    for sigma, weight in ((24.0, 1.0), (10.0, 0.7), (4.0, 0.5), (1.5, 0.35), (0.7, 0.2)):
        noise = rng.standard_normal((height, width, 3)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        noise /= noise.std() + 1e-6
        image += weight * noise
    # Correlate the channels a little so colours look less like pure noise.
    mix = np.eye(3, dtype=np.float32) * 0.6 + 0.4 * rng.random((3, 3), dtype=np.float32)
    image = image @ mix.T
    image = (image - image.mean()) / (image.std() + 1e-6)
    image = np.clip(128.0 + 40.0 * image, 0, 255).astype(np.uint8)

    # Some hard edges: filled shapes and lines with random colours.
    scale = min(height, width)
    for _ in range(int(rng.integers(6, 12))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            radius = int(rng.integers(max(2, scale // 30), max(3, scale // 6)))
            cv2.circle(image, (cx, cy), radius, color, -1, cv2.LINE_AA)
        elif kind == 1:
            w, h = (int(v) for v in rng.integers(max(2, scale // 20), max(3, scale // 4), 2))
            cv2.rectangle(image, (cx, cy), (cx + w, cy + h), color, -1, cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, width)), int(rng.integers(0, height))
            thickness = int(rng.integers(1, 4))
            cv2.line(image, (cx, cy), (x2, y2), color, thickness, cv2.LINE_AA)
    return image


def _smooth_blob(
    height: int, width: int, rng: np.random.Generator, edge_sigma_px: float | None = None
) -> np.ndarray:
    """A smooth bump with peak 1 on an elliptic region: float32 (H, W).

    edge_sigma_px: blur of the region's edge; None gives a very soft bump (a third of its size).
    """
    scale = min(height, width)
    mask = np.zeros((height, width), np.float32)
    center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    axes = tuple(int(v) for v in rng.integers(max(4, scale // 8), max(5, scale // 3), 2))
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(mask, center, axes, angle, 0, 360, 1.0, -1)
    # Soft edges: the motion must stay smooth so that rendering by fixed-point inversion is exact.
    sigma = max(3.0, 0.35 * min(axes)) if edge_sigma_px is None else edge_sigma_px
    mask = cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return mask / max(float(mask.max()), 1e-6)


def sinusoidal_motion_texture(
    height: int,
    width: int,
    num_frames: int,
    fps: float = 30.0,
    seed: int = 0,
    max_amplitude_px: float = 6.0,
    num_regions: int = 4,
    min_hz: float = 0.2,
    max_hz: float = 3.0,
    edge_sigma_px: float | None = None,
) -> np.ndarray:
    """Known displacement from frame 0: float32 (T, 2, H, W), zero at t = 0.

    Each of `num_regions` smooth regions oscillates as a(p) * (cos(2 pi f t + phi) - cos(phi))
    with its own direction, frequency f in [min_hz, max_hz], amplitude and phase. Outside the
    regions the motion is zero. The largest displacement magnitude is at most max_amplitude_px.
    edge_sigma_px: sharpness of the region edges (motion boundaries); None gives very soft
    regions. It is floored at max_amplitude_px / 2 so the motion stays invertible (|grad F| < 1),
    which `render_synthetic_video` needs.
    """
    if edge_sigma_px is not None:
        edge_sigma_px = max(float(edge_sigma_px), 0.5 * max_amplitude_px, 1.0)
    rng = np.random.default_rng(10_000 + seed)
    times = np.arange(num_frames, dtype=np.float64) / fps  # (T,)
    motion = np.zeros((num_frames, 2, height, width), np.float64)
    for _ in range(num_regions):
        blob = _smooth_blob(height, width, rng, edge_sigma_px).astype(np.float64)  # (H, W)
        direction = rng.uniform(0, 2 * np.pi)
        # cos(.) - cos(phi) spans up to 2x the amplitude.
        amplitude = 0.5 * max_amplitude_px * rng.uniform(0.4, 1.0)
        frequency = rng.uniform(min_hz, max_hz)
        phase = rng.uniform(0, 2 * np.pi)
        wave = amplitude * (np.cos(2 * np.pi * frequency * times + phase) - np.cos(phase))  # (T,)
        motion[:, 0] += wave[:, None, None] * np.cos(direction) * blob
        motion[:, 1] += wave[:, None, None] * np.sin(direction) * blob
    # Overlapping regions add up: rescale so the cap holds.
    peak = float(np.sqrt((motion**2).sum(axis=1)).max()) if num_frames else 0.0
    if peak > max_amplitude_px:
        motion *= max_amplitude_px / peak
    motion[0] = 0.0
    return motion.astype(np.float32)


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates: two float32 (H, W) arrays x, y."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def warp_forward(
    image: np.ndarray, displacement: np.ndarray, tolerance_px: float = 1e-3, max_iterations: int = 60
) -> np.ndarray:
    """Move start pixel p of `image` (H, W, C) to p + displacement(p); displacement (2, H, W).

    Backward warping with the inverse displacement: for each output pixel p find q with
    q + F(q) = p by the fixed-point iteration q = p - F(q), until q moves less than
    tolerance_px (converges when |grad F| < 1, i.e. for smooth motion).
    """
    height, width = image.shape[:2]
    xs, ys = _pixel_grid(height, width)
    fx = np.ascontiguousarray(displacement[0], np.float32)
    fy = np.ascontiguousarray(displacement[1], np.float32)
    qx, qy = xs - fx, ys - fy
    for _ in range(max_iterations):
        fx_q = cv2.remap(fx, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy_q = cv2.remap(fy, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        new_qx, new_qy = xs - fx_q, ys - fy_q
        change = max(float(np.abs(new_qx - qx).max()), float(np.abs(new_qy - qy).max()))
        qx, qy = new_qx, new_qy
        if change < tolerance_px:
            break
    return cv2.remap(image, qx, qy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def render_synthetic_video(
    image: np.ndarray, motion_texture: np.ndarray, noise_std: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Frames where start pixel p appears at p + F_t(p).

    image uint8 (H, W, 3), motion_texture float32 (T, 2, H, W) -> uint8 (T, H, W, 3).
    noise_std: optional Gaussian sensor noise (grey levels) added to every frame but frame 0,
    which stays equal to `image`.
    """
    rng = np.random.default_rng(20_000 + seed)
    frames = np.empty((motion_texture.shape[0],) + image.shape, np.uint8)
    for t, displacement in enumerate(motion_texture):
        frame = warp_forward(image, displacement) if np.any(displacement) else image
        if noise_std > 0 and t > 0:
            noisy = frame.astype(np.float32) + rng.normal(0.0, noise_std, frame.shape)
            frame = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        frames[t] = frame
    return frames


def moving_mask(truth: np.ndarray, threshold_px: float = MOVING_THRESHOLD_PX) -> np.ndarray:
    """Pixels whose true displacement reaches threshold_px at some frame: bool (H, W)."""
    magnitude = np.sqrt((truth.astype(np.float32) ** 2).sum(axis=1))  # (N, H, W)
    return magnitude.max(axis=0) >= threshold_px


def flow_error(estimated: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """End-point error statistics of estimated vs. true flow, both (N, 2, H, W).

    mask: optional bool (H, W) or (N, H, W) of pixels to evaluate; `epe_moving` is always on the
    pixels that move by at least MOVING_THRESHOLD_PX at some frame (see `moving_mask`).
    Returns epe (mean), epe_median, epe_p95, epe_moving and the fraction of moving pixels.
    """
    if estimated.shape != truth.shape:
        raise ValueError(f"shape mismatch: estimated {estimated.shape} vs truth {truth.shape}")
    diff = estimated.astype(np.float32) - truth.astype(np.float32)
    epe = np.sqrt((diff**2).sum(axis=1))  # (N, H, W)
    selected = np.ones(epe.shape, bool) if mask is None else np.broadcast_to(mask, epe.shape)
    moving = np.broadcast_to(moving_mask(truth), epe.shape) & selected
    values = epe[selected]
    return {
        "epe": float(values.mean()),
        "epe_median": float(np.median(values)),
        "epe_p95": float(np.percentile(values, 95)),
        "epe_moving": float(epe[moving].mean()) if moving.any() else 0.0,
        "moving_fraction": float(moving.mean()),
    }
