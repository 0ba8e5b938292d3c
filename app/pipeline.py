"""The jobs the studio and the command line share: photo + motion -> frames -> file.

Rendering here is backward warping for now; the splatting renderer takes its place when it lands.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.core.spectral import Motion, displacement_at, load_motion, resize_motion

RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
EXAMPLES_DIR = RESOURCES_DIR / "examples"
DEFAULT_EXAMPLE = "tree"


def example_paths(name: str = DEFAULT_EXAMPLE):
    """(photo path, motion path) of a bundled example."""
    return EXAMPLES_DIR / f"{name}.png", EXAMPLES_DIR / f"{name}.npz"


def bundled_examples() -> list[str]:
    """Names of the bundled examples that have both a photo and a motion."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.png") if p.with_suffix(".npz").is_file())


def loop_frames(image: np.ndarray, motion: Motion, num_loops: int = 1, slowdown: float = 1.0):
    """Yield uint8 (H, W, 3) frames of the loop; the motion is resized to the photo first."""
    from app.render.warp import backward_warp

    height, width = image.shape[:2]
    motion = resize_motion(motion, height, width)
    total = int(round(motion.num_frames * slowdown)) * num_loops
    for frame_number in range(total):
        displacement = displacement_at(motion, frame_number, slowdown=slowdown)  # (2, H, W)
        yield backward_warp(image, displacement)


def run_demo(out_dir: str = "out"):
    """Animate the bundled example into out_dir; yields one line per step for the console."""
    from app.data.images import load_image
    from app.render.export import write_mp4

    photo_path, motion_path = example_paths()
    image = load_image(str(photo_path)).pixels
    motion = load_motion(str(motion_path))
    os.makedirs(out_dir, exist_ok=True)
    yield f"Example '{DEFAULT_EXAMPLE}': photo {image.shape[1]}x{image.shape[0]}, motion {motion.num_bands} bands " \
          f"at {motion.width}x{motion.height}, {motion.num_frames} frames at {motion.fps:g} fps."
    video_path = os.path.join(out_dir, f"{DEFAULT_EXAMPLE}-loop.mp4")
    write_mp4(video_path, loop_frames(image, motion), motion.fps)
    yield f"Wrote {video_path}."
