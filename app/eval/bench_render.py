"""Rendering speed benchmark: frames per second of forward splatting against backward warping.

This module owns the measurement behind the renderer's speed claims. Every path renders the same
smooth oscillating motion of a random photo at 256x160 and 512x288, on CPU (and on CUDA when
available, same code, synchronized timing):

    grid-sample          backward warp with grid_sample (the cheap reference; smears, no holes)
    splat-avg            forward splat, equal weights, holes left empty
    splat-softmax        forward softmax splat, importance alpha * mean_t |F_t|, holes left empty
    splat-softmax-fill   softmax splat + pull-push hole filling (the product path: splat_frames)

each one frame per call and, suffixed "-batch10", 10 frames per call. ratio = fps / fps of
grid-sample with the same batching, same size and device, measured in the same run.

The flow layer is timed end to end through the product's render_loop at 512x288 (photo in, uint8
frames out, 8 frames per batch), against the sway-only render of the same run:

    render-sway        a spectral volume (the oscillation layer) alone
    render-flow        a velocity field from 4 arrows over a fluid mask: integration forward and
                       backward, symmetric softmax splatting, hole filling
    render-sway+flow   both layers at once
    ratio = fps / fps of render-sway.

    python -m app.eval.bench_render                 # readable table
    python -m app.eval.bench_render --json --quick  # one JSON object per line
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from app.render.splat import backward_warp_torch, importance_from_motion, splat, splat_frames

__all__ = ["SIZES", "BATCH_SIZE", "RenderTiming", "motion_displacements", "run_render_benchmark",
           "run_flow_benchmark", "main"]

SIZES = ((256, 160), (512, 288))  # (width, height)
BATCH_SIZE = 10
SOFTMAX_ALPHA = 1.0
REFERENCE = "grid-sample"


@dataclass(frozen=True)
class RenderTiming:
    """One row: a path at a size on a device."""

    name: str
    size: str
    device: str
    fps: float
    ratio: float

    def as_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "device": self.device,
                "fps": round(self.fps, 2), "ratio": round(self.ratio, 3)}


def motion_displacements(num_frames: int, height: int, width: int, device: str) -> torch.Tensor:
    """Smooth oscillating displacements (N, 2, H, W): amplitude up to ~2% of the width, phase waves."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.linspace(0, 1, height).view(1, height, 1)
    columns = torch.linspace(0, 1, width).view(1, 1, width)
    waves = torch.sin(3 * math.pi * columns) * torch.cos(2 * math.pi * rows)  # (1, H, W)
    amplitude = 0.02 * width * (0.5 + 0.5 * waves)
    phase = 4 * math.pi * (rows + 0.5 * columns) + torch.rand(1, 1, 1, generator=generator)
    times = torch.arange(num_frames, dtype=torch.float32).view(num_frames, 1, 1) / max(num_frames, 1)
    angle = 2 * math.pi * times + phase  # (N, H, W)
    displacements = torch.stack([amplitude * torch.sin(angle), 0.5 * amplitude * torch.cos(angle)], dim=1)
    return displacements.to(device)  # (N, 2, H, W)


def _paths(image: torch.Tensor, importance: torch.Tensor) -> dict[str, Callable]:
    """Each path renders the frames (n, C, H, W) for a batch of displacements (n, 2, H, W)."""
    return {
        REFERENCE: lambda displacements: backward_warp_torch(image, displacements),
        "splat-avg": lambda displacements: splat(image, displacements, "avg"),
        "splat-softmax": lambda displacements: splat(image, displacements, "softmax", importance),
        "splat-softmax-fill": lambda displacements: splat_frames(image, displacements, importance),
    }


def _median_seconds(renders: dict[str, Callable], displacements: torch.Tensor, batch_size: int,
                    repeats: int) -> dict[str, float]:
    """Median seconds per path to render all frames of displacements, batch_size frames per call.

    The paths take turns within each repeat, so a change in machine load hits them all alike.
    """
    device_is_cuda = displacements.device.type == "cuda"

    def render_all(render):
        for start in range(0, displacements.shape[0], batch_size):
            render(displacements[start:start + batch_size])
        if device_is_cuda:
            torch.cuda.synchronize()

    for render in renders.values():
        render_all(render)  # warm-up: allocator, caches, kernels
    durations = {name: [] for name in renders}
    for _ in range(repeats):
        for name, render in renders.items():
            start_time = time.perf_counter()
            render_all(render)
            durations[name].append(time.perf_counter() - start_time)
    return {name: statistics.median(seconds) for name, seconds in durations.items()}


def run_render_benchmark(num_frames: int = 30, repeats: int = 5, sizes=SIZES,
                         devices=None) -> list[RenderTiming]:
    """Time every path, unbatched and batched, at each size on each device."""
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    timings = []
    for device in devices:
        for width, height in sizes:
            generator = torch.Generator().manual_seed(1)
            image = torch.rand(1, 3, height, width, generator=generator).to(device)  # (1, 3, H, W)
            displacements = motion_displacements(num_frames, height, width, device)  # (N, 2, H, W)
            importance = importance_from_motion(displacements, SOFTMAX_ALPHA).to(device)  # (1, 1, H, W)
            size = f"{width}x{height}"
            renders = _paths(image, importance)
            for batch_size in (1, min(BATCH_SIZE, num_frames)):
                suffix = "" if batch_size == 1 else f"-batch{batch_size}"
                seconds = _median_seconds(renders, displacements, batch_size, repeats)
                reference_fps = num_frames / seconds[REFERENCE]
                for name in renders:
                    fps = num_frames / seconds[name]
                    timings.append(RenderTiming(name + suffix, size, device, fps, fps / reference_fps))
    return timings


FLOW_SIZE = (512, 288)
FLOW_REFERENCE = "render-sway"


def _flow_scene(width: int, height: int, num_frames: int):
    """A random photo, a swaying motion of num_frames frames, and a flow over the lower half."""
    import numpy as np

    from app.core.flow_field import FlowHints, flow_from_hints
    from app.core.spectral import motion_from_texture

    image = (np.random.default_rng(2).uniform(0, 255, (height, width, 3))).astype(np.uint8)
    texture = motion_displacements(num_frames, height, width, "cpu").numpy()  # (T, 2, H, W)
    motion = motion_from_texture(texture, num_bands=min(16, num_frames // 2 + 1))
    mask = np.zeros((height, width), np.float32)
    mask[height // 2:] = 1.0
    arrows = [[0.1 * width, 0.6 * height, 0.1 * width, 0], [0.5 * width, 0.7 * height, 0.08 * width, 0.02 * height],
              [0.8 * width, 0.9 * height, 0.12 * width, 0], [0.3 * width, 0.95 * height, 0.1 * width, -0.01 * height]]
    flow = flow_from_hints(FlowHints(width, height, arrows=arrows, mask=mask, num_frames=num_frames), height, width)
    return image, motion, flow


def run_flow_benchmark(num_frames: int = 30, repeats: int = 3, size=FLOW_SIZE, devices=None) -> list[RenderTiming]:
    """End-to-end render_loop speed of flow, sway+flow and sway alone at one size (paths take turns)."""
    from app.core.flow_field import FlowField
    from app.render.frames import RenderSettings, render_loop

    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    width, height = size
    image, motion, flow = _flow_scene(width, height, num_frames)
    flow = FlowField(flow.velocity, num_frames, flow.fps)
    timings = []
    for device in devices:
        settings = RenderSettings(device=device)
        paths = {
            FLOW_REFERENCE: lambda: render_loop(image, motion, settings),
            "render-flow": lambda: render_loop(image, None, settings, flow=flow),
            "render-sway+flow": lambda: render_loop(image, motion, settings, flow=flow),
        }
        for render in paths.values():
            next(iter(render()))  # warm-up
        durations = {name: [] for name in paths}
        for _ in range(repeats):
            for name, render in paths.items():
                began = time.perf_counter()
                count = sum(1 for _ in render())
                if device == "cuda":
                    torch.cuda.synchronize()
                durations[name].append(time.perf_counter() - began)
        reference_fps = count / statistics.median(durations[FLOW_REFERENCE])
        for name in paths:
            fps = count / statistics.median(durations[name])
            timings.append(RenderTiming(name, f"{width}x{height}", device, fps, fps / reference_fps))
    return timings


def _print_table(timings: list[RenderTiming], num_frames: int) -> None:
    print(f"Render speed, {num_frames} frames per run, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; ratio = fps / {REFERENCE} fps (same batching).")
    print(f"{'path':<28} {'size':>8} {'device':>6} {'fps':>9} {'ms/frame':>9} {'ratio':>7}")
    for timing in timings:
        print(f"{timing.name:<28} {timing.size:>8} {timing.device:>6} {timing.fps:>9.1f} "
              f"{1000 / timing.fps:>9.2f} {timing.ratio:>7.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval.bench_render",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--frames", type=int, default=30, help="frames rendered per timed run (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per path; the median counts")
    parser.add_argument("--quick", action="store_true", help="short run: 10 frames, 2 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.frames < 1 or args.repeats < 1:
        parser.error("--frames and --repeats must be at least 1.")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    num_frames, repeats = args.frames, args.repeats
    if args.quick:
        num_frames, repeats = min(num_frames, 10), min(repeats, 2)

    timings = run_render_benchmark(num_frames, repeats)
    flow_timings = run_flow_benchmark(num_frames, repeats)
    if args.json:
        for timing in timings + flow_timings:
            print(json.dumps(timing.as_dict()))
    else:
        _print_table(timings, num_frames)
        print()
        print(f"Flow layer, end-to-end render_loop, {num_frames} frames per run; "
              f"ratio = fps / {FLOW_REFERENCE} fps (same run).")
        print(f"{'path':<28} {'size':>8} {'device':>6} {'fps':>9} {'ms/frame':>9} {'ratio':>7}")
        for timing in flow_timings:
            print(f"{timing.name:<28} {timing.size:>8} {timing.device:>6} {timing.fps:>9.1f} "
                  f"{1000 / timing.fps:>9.2f} {timing.ratio:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
