"""A full-resolution export streams: render a batch, write it, drop it, in bounded memory."""

import json
import os
import subprocess
import sys

import numpy as np

from app.core.spectral import Motion
from app.render.frames import PIXELS_PER_BATCH, RenderSettings, frames_per_batch, render_loop, resize_field
from tests.conftest import REPO_ROOT

# A child process exports 60 frames of a 1500x1000 photo whose 16-band motion lives on a 96x64 grid
# (as in the studio) and prints its resident memory before and at peak. Holding the motion at full
# size would take 16 x 2 x 1.5 MP x 8 bytes = 366 MB, and all 60 frames 257 MB.
CHILD = r"""
import json, os, sys, tempfile
import numpy as np
import torch
from app.core.spectral import Motion
from app.pipeline import render_to_file
from app.render.frames import RenderSettings

def status_mb(key):  # VmRSS now, VmHWM the peak of this program (ru_maxrss counts the parent's too)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":")) / 1024

rng = np.random.default_rng(0)
spectrum = (rng.normal(size=(16, 2, 64, 96)) + 1j * rng.normal(size=(16, 2, 64, 96))).astype(np.complex64)
motion = Motion(spectrum, num_frames=60, fps=30.0)
rows, columns = np.mgrid[0:1000, 0:1500]
image = np.stack([rows % 256, columns % 256, (rows + columns) % 256], axis=-1).astype(np.uint8)
baseline = status_mb("VmRSS")
with tempfile.TemporaryDirectory() as folder:
    render_to_file(image, motion, os.path.join(folder, "frames"), RenderSettings(renderer="warp", device="cpu"))
    written = len(os.listdir(os.path.join(folder, "frames")))
print(json.dumps({"baseline_mb": baseline, "peak_mb": status_mb("VmHWM"), "frames": written}))
"""
FRAME_MB = 1000 * 1500 * 3 / 2**20  # 4.3 MB a frame


def test_a_big_export_streams_in_bounded_memory():
    # A fixed mmap threshold makes glibc hand big freed buffers back at once, so the resident
    # memory measures what is alive, not what the allocator's arenas happen to keep.
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "262144"}
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["frames"] == 60
    growth_mb = figures["peak_mb"] - figures["baseline_mb"]
    # A batch's working set (fields, maps, outputs, encoder) measured about 26 frames' worth of
    # uint8 pixels (110 MB); the full-size motion, or all 60 frames at once, is more than 45.
    assert growth_mb < 45 * FRAME_MB, figures


def test_batches_are_capped_in_pixels():
    settings = RenderSettings(batch_size=8)
    assert frames_per_batch(settings, 288, 512) == 8
    assert frames_per_batch(settings, 1080, 1920) == PIXELS_PER_BATCH // (1920 * 1080)
    assert frames_per_batch(settings, 3000, 4000) == 1


def test_frames_leave_the_renderer_one_batch_at_a_time():
    """The renderer yields a batch's frames before it renders the next batch."""
    rng = np.random.default_rng(1)
    motion = Motion((rng.normal(size=(4, 2, 12, 16)) * 0.5).astype(np.complex64), num_frames=12, fps=30.0)
    image = rng.integers(0, 256, size=(1500, 2000, 3), dtype=np.uint8)  # 3 MP: one frame a batch
    batches = []
    frames = render_loop(image, motion, RenderSettings(renderer="warp", device="cpu"),
                         progress=lambda done, total: batches.append(done))
    for number, frame in enumerate(frames):
        assert frame.shape == (1500, 2000, 3)
        assert batches[-1] == number + 1  # only this frame's batch has been rendered
        if number == 2:
            break


def test_a_resized_field_scales_its_pixels_with_the_grid():
    field = np.zeros((2, 4, 8), np.float32)
    field[0], field[1] = 1.0, -2.0  # one pixel right, two up on the 8x4 grid
    resized = resize_field(field, 40, 80)  # ten times larger
    assert resized.shape == (2, 40, 80) and resized.dtype == np.float32
    np.testing.assert_allclose(resized[0], 10.0, rtol=1e-6)
    np.testing.assert_allclose(resized[1], -20.0, rtol=1e-6)
