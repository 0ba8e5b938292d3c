"""Drag-and-release clips: pull a point of the photo, let go, and render the scene springing back.

This module owns the offline version of the studio's interactive dynamics (what
`python -m app poke IMAGE MOTION.npz --at X,Y --pull DX,DY` writes):

    poke_frames(image, motion, at, pull, ...)   generator of uint8 (H, W, 3) frames
    poke_to_file(image_path, motion_path, out, at, pull, ...) -> path

Timeline at `fps` frames per second: the pull eases in from nothing over the first 60% of the
hold (HOLD_SECONDS, 0.5 s), stays at full strength for the rest of it, then is released and the
modes (app/core/modal.py) swing and die out. Frame n shows the state at time n / fps, so frame 0
is the still photo. Frames are rendered by the torch softmax splat with hole filling ("splat",
importance alpha * mean_t |F_t| from the motion's own loop) or by the GL mesh warp ("gl").
"""

from __future__ import annotations

import math

import numpy as np

from app.core.modal import ModalParameters, ModalSimulator
from app.core.spectral import Motion, resize_motion

POKE_RENDERERS = ("splat", "gl")
HOLD_SECONDS = 0.5
EASE_FRACTION = 0.6  # of the hold spent easing the pull in


def pull_strength(time_s: float, hold_seconds: float = HOLD_SECONDS) -> float | None:
    """How much of the pull is applied at time_s: eases 0 -> 1 (half a cosine), 1 while held, None after release."""
    if time_s >= hold_seconds:
        return None
    ease_seconds = EASE_FRACTION * hold_seconds
    if time_s >= ease_seconds:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * time_s / ease_seconds)


def poke_frames(image: np.ndarray, motion: Motion, at=(0.0, 0.0), pull=(0.0, 0.0), seconds: float = 4.0,
                fps: float = 30.0, params: ModalParameters | None = None, renderer: str = "splat",
                alpha: float = 1.0, grid_px: int = 2, ctx=None, hold_seconds: float = HOLD_SECONDS):
    """Generator of round(seconds * fps) uint8 (H, W, 3) frames of a drag at `at` = (x, y) pixels
    by `pull` = (dx, dy) pixels, held for hold_seconds, then released.

    The motion is resized to the photo. renderer: "splat" (torch softmax splat + fill, alpha is
    its importance scale) or "gl" (mesh warp with grid_px spacing; ctx: a moderngl context to draw
    with, default a headless EGL one made and released here). Arguments are checked before the
    generator starts: a bad one raises ValueError with one sentence.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"The photo must be uint8 (H, W, 3); got {image.dtype} {image.shape}.")
    if renderer not in POKE_RENDERERS:
        raise ValueError(f"Unknown renderer '{renderer}'; choose splat or gl.")
    if not (seconds > 0 and fps > 0 and math.isfinite(seconds) and math.isfinite(fps)):
        raise ValueError(f"seconds and fps must be positive; got {seconds} s at {fps} fps.")
    height, width = image.shape[:2]
    x, y = float(at[0]), float(at[1])
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        raise ValueError(f"The poke point ({x:g}, {y:g}) lies outside the {width}x{height} photo.")
    motion = resize_motion(motion, height, width)
    simulator = ModalSimulator(motion, params or ModalParameters())
    num_frames = max(1, int(round(seconds * fps)))
    if renderer == "gl":
        return _poke_gl(image, motion, simulator, (x, y), pull, num_frames, fps, hold_seconds, grid_px, ctx)
    return _poke_splat(image, motion, simulator, (x, y), pull, num_frames, fps, hold_seconds, alpha)


def _simulate(simulator: ModalSimulator, at, pull, num_frames: int, fps: float, hold_seconds: float):
    """Yield the simulator once per frame, in the state of time n / fps, driving the drag and release."""
    for frame_index in range(num_frames):
        strength = pull_strength(frame_index / fps, hold_seconds)
        if strength is not None:
            simulator.grab(at[0], at[1], strength * float(pull[0]), strength * float(pull[1]))
        elif simulator.holding:
            simulator.release()
        yield simulator
        simulator.step(1.0 / fps)


def _poke_splat(image, motion, simulator, at, pull, num_frames, fps, hold_seconds, alpha):
    """Frames by the torch softmax splat with hole filling."""
    import torch

    from app.render.splat import importance_from_motion, mean_motion_magnitude, splat_frames

    source = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div(255)  # (1, 3, H, W), a copy
    importance = importance_from_motion(mean_motion_magnitude(motion), alpha)  # (1, 1, H, W)
    with torch.inference_mode():
        for now in _simulate(simulator, at, pull, num_frames, fps, hold_seconds):
            displacement = torch.from_numpy(now.displacement())[None]  # (1, 2, H, W)
            frame = splat_frames(source, displacement, importance)[0]  # (3, H, W)
            yield (frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _poke_gl(image, motion, simulator, at, pull, num_frames, fps, hold_seconds, grid_px, ctx):
    """Frames by the GL mesh warp; a headless context made here is released at the end."""
    from app.render.gl import MeshWarpRenderer, create_headless_context, release_context

    own_context = ctx is None
    if own_context:
        ctx = create_headless_context()
    renderer = None
    try:
        renderer = MeshWarpRenderer(ctx, image, motion, grid_px=grid_px)
        for now in _simulate(simulator, at, pull, num_frames, fps, hold_seconds):
            yield renderer.render(now.band_factors())
    finally:
        if renderer is not None:
            renderer.release()
        if own_context:
            release_context(ctx)


def poke_to_file(image_path, motion_path, out, at, pull, seconds: float = 4.0, fps: float = 30.0,
                 params: ModalParameters | None = None, renderer: str = "splat", progress=None, cancel=None,
                 **options) -> str:
    """Render a drag-and-release clip of a photo and its motion file into out (mp4, gif, webm or a
    PNG folder, by extension); returns the path. progress(done, total) and cancel() as export_frames.
    options go to poke_frames (alpha, grid_px, ctx, hold_seconds)."""
    from app.core.spectral import load_motion
    from app.pipeline import load_photo
    from app.render.export import export_frames

    image = load_photo(str(image_path))
    motion = load_motion(str(motion_path))
    frames = poke_frames(image, motion, at=at, pull=pull, seconds=seconds, fps=fps, params=params,
                         renderer=renderer, **options)
    total = max(1, int(round(seconds * fps)))
    return export_frames(out, frames, fps, progress=progress, cancel=cancel, total=total)
