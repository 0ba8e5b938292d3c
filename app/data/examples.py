"""Bundled examples: a photo (the first frame of a seamless loop) and the motion extracted from it.

`python -m app.data.examples VIDEO NAME` writes resources/examples/NAME.png and NAME.npz. The motion
is extracted at 256 pixels wide (the training scale) and stored at 128 pixels wide to keep the
repository small; renderers resize it to the photo, scaling displacements with it.
"""

from __future__ import annotations

import sys

import numpy as np

from app.core.spectral import DEFAULT_NUM_BANDS, motion_from_texture, resize_motion, save_motion
from app.data.extract import fit_frames
from app.data.flow import flow_from_start
from app.data.images import save_image
from app.data.video import read_video, resample_fps


def make_example(video_path: str, name: str, out_dir: str, num_frames: int = 150, fps: float = 30.0,
                 extract_width: int = 256, stored_width: int = 128) -> None:
    """Write out_dir/NAME.png (first frame, full size) and out_dir/NAME.npz (its loop's motion)."""
    from pathlib import Path

    video = read_video(video_path)
    frames = resample_fps(video.frames, video.fps, fps)
    photo = frames[0]  # (H, W, 3)
    height, width = photo.shape[:2]
    extract_height = int(round(extract_width * height / width))
    small = fit_frames(frames, extract_width, extract_height)
    indices = [t % len(small) for t in range(num_frames)]  # a seamless loop may wrap
    flows = flow_from_start(small[indices])  # (T-1, 2, h, w)
    texture = np.concatenate([np.zeros_like(flows[:1]), flows], axis=0)  # (T, 2, h, w)
    motion = motion_from_texture(texture, num_bands=DEFAULT_NUM_BANDS, fps=fps)
    stored_height = int(round(stored_width * height / width))
    motion = resize_motion(motion, stored_height, stored_width)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_image(str(out / f"{name}.png"), photo)
    save_motion(str(out / f"{name}.npz"), motion)


if __name__ == "__main__":
    from app.paths import EXAMPLES_DIR

    make_example(sys.argv[1], sys.argv[2], str(EXAMPLES_DIR))
