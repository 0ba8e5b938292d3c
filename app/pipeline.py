"""The jobs the studio and the command line share: photo + motion -> frames -> file.

    load_photo(path) -> uint8 (H, W, 3)          (one-sentence errors for bad files)
    load_learned_renderer(device) -> module|None (models/renderer.safetensors when shipped)
    render_to_file(image, motion, out, settings, progress, cancel) -> path
    run_demo(out_dir)                            (what `make run` does)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.core.spectral import Motion, load_motion

ROOT_DIR = Path(__file__).resolve().parents[1]
RESOURCES_DIR = ROOT_DIR / "resources"
EXAMPLES_DIR = RESOURCES_DIR / "examples"
MODELS_DIR = ROOT_DIR / "models"
RENDERER_WEIGHTS = MODELS_DIR / "renderer.safetensors"
DEFAULT_EXAMPLE = "willow"


def example_paths(name: str = DEFAULT_EXAMPLE):
    """(photo path, motion path) of a bundled example."""
    return EXAMPLES_DIR / f"{name}.png", EXAMPLES_DIR / f"{name}.npz"


def bundled_examples() -> list[str]:
    """Names of the bundled examples that have both a photo and a motion."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.png") if p.with_suffix(".npz").is_file())


def load_photo(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB photo; ImageLoadError (one sentence) for a bad file."""
    from app.data.images import load_image

    return load_image(str(path)).pixels


def load_learned_renderer(device="cpu", path=RENDERER_WEIGHTS):
    """The shipped learned renderer on `device`, or None when no weights are shipped."""
    from app.render.net import load_renderer

    if not Path(path).is_file():
        return None
    return load_renderer(path, device)


def render_to_file(image: np.ndarray, motion: Motion, out_path: str, settings=None, progress=None,
                   cancel=None, net=None) -> str:
    """Render the loop with settings (RenderSettings) and export it by out_path's extension."""
    from app.render.export import export_frames
    from app.render.frames import RenderSettings, frame_count, render_loop, resolve_device

    settings = settings or RenderSettings()
    if settings.renderer == "net" and net is None:
        net = load_learned_renderer(resolve_device(settings.device))
        if net is None:
            raise ValueError("No learned renderer is shipped in models/; use --renderer splat.")
    total = frame_count(motion, settings)
    frames = render_loop(image, motion, settings, cancel=cancel, net=net)
    return export_frames(out_path, frames, motion.fps, progress=progress, cancel=cancel, total=total)


def run_demo(out_dir: str = "out"):
    """Animate the bundled example into out_dir; yields one line per step for the console."""
    import time

    from app.render.export import export_frames, read_frame_count, seam_error
    from app.render.frames import RenderSettings, render_loop

    photo_path, motion_path = example_paths()
    image = load_photo(str(photo_path))
    motion = load_motion(str(motion_path))
    os.makedirs(out_dir, exist_ok=True)
    yield (f"Example '{DEFAULT_EXAMPLE}': photo {image.shape[1]}x{image.shape[0]}, motion {motion.num_bands} "
           f"bands at {motion.width}x{motion.height}, {motion.num_frames} frames at {motion.fps:g} fps.")
    settings = RenderSettings(renderer="splat", device="auto")
    began = time.perf_counter()
    frames = list(render_loop(image, motion, settings))  # 150 frames of the photo's size
    render_seconds = time.perf_counter() - began
    video_path = export_frames(os.path.join(out_dir, f"{DEFAULT_EXAMPLE}-loop.mp4"), frames, motion.fps)
    seam = seam_error(frames)
    yield (f"Wrote {video_path}: {read_frame_count(video_path)} frames rendered by softmax splatting in "
           f"{render_seconds:.1f} s ({len(frames) / render_seconds:.0f} frames/s); loop seam "
           f"{seam['seam']:.2f} against a median frame step of {seam['median_step']:.2f} (ratio {seam['ratio']:.2f}).")
