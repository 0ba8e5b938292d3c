"""GL rendering speed: frames per second of the mesh warp and the GL splat, and the modal step cost.

This module owns the measurement behind the real-time claims of app/render/gl.py and
app/core/modal.py. At 512x288 with a K = 16 spectral volume, on a headless EGL context:

    gl-mesh-{1,4,16}px            MeshWarpRenderer.draw into an offscreen framebuffer + ctx.finish()
    gl-mesh-{1,4,16}px-readback   MeshWarpRenderer.render (draw + read back uint8 (H, W, 3))
    gl-splat / gl-splat-readback  GLSplatRenderer: flow, 4-tap softmax splat, normalize, pull-push fill
    modal-step                    ModalSimulator.step(1/60) for K = 16 after a release (CPU)
    flow-fields                   the live viewport's flow layer per frame: FlowPlayer.fields (CPU torch,
                                  forward and backward integration of a 90-frame loop on the viewport's
                                  grid of at most LIVE_MAX_SIDE, resized back); the mean over
                                  two loops at a 1.37-frame step (fractional phases), since the
                                  integrator's cache makes most frames cheap and some dear; with the
                                  studio's torch threads (all cores but one, as run_app sets them)
    gl-mesh-4px-flow              MeshWarpRenderer.draw with a flow layer (two passes, two RG32F uploads,
                                  the mix), fields precomputed
    viewport-flow-frame           both: what one live frame of sway + flow costs the viewport
                                  (these three rows also carry mesh_ratio = fps / gl-mesh-4px fps)
    torch-splat-fill              the same-run reference: app.render.splat.splat_frames (softmax +
                                  fill) of one frame on the CPU, displacements precomputed; timed
                                  with torch's default thread count and with 1 thread, the faster
                                  counts (on a loaded machine torch's thread pool can be 50x slower
                                  than 1 thread, which would flatter every GL ratio)

ratio = fps / torch-splat-fill fps. Each row is the median over repeated frames whose band factors
change every frame (playback times), so nothing is cached between frames.

    python -m app.eval.bench_gl            # readable table
    python -m app.eval.bench_gl --json     # one JSON object per line
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from app.core.spectral import Motion, band_factors, displacement_at

WIDTH, HEIGHT = 512, 288
NUM_BANDS = 16
NUM_FRAMES = 150
GRID_SPACINGS = (1, 4, 16)
REFERENCE = "torch-splat-fill"


def benchmark_motion(height: int = HEIGHT, width: int = WIDTH, num_bands: int = NUM_BANDS) -> Motion:
    """A smooth swaying spectral volume, amplitudes of a few pixels falling off with frequency."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    spectrum = np.zeros((num_bands, 2, height, width), np.complex64)
    for band in range(1, num_bands):
        for axis in range(2):
            phase = rng.uniform(0, 2 * np.pi)
            amplitude = 4.0 / band * (1 + np.sin(5 * columns + 3 * rows + phase))
            spectrum[band, axis] = amplitude * np.exp(1j * (phase + 2 * columns)) * NUM_FRAMES / 2
    return Motion(spectrum, NUM_FRAMES, 30.0)


def benchmark_image(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


def median_seconds(render_frame, min_frames: int, min_seconds: float, warmup: int = 2) -> float:
    """Median wall time of render_frame(i) over at least min_frames calls and min_seconds."""
    for index in range(warmup):
        render_frame(index)
    times = []
    began = time.perf_counter()
    index = warmup
    while len(times) < min_frames or time.perf_counter() - began < min_seconds:
        start = time.perf_counter()
        render_frame(index)
        times.append(time.perf_counter() - start)
        index += 1
    return statistics.median(times)


def run_gl_benchmark(quick: bool = False) -> list[dict]:
    """All rows as dicts: name, size, device, fps, ratio (and microseconds for modal-step)."""
    import torch

    from app.core.modal import ModalSimulator
    from app.render.gl import (GLSplatRenderer, MeshWarpRenderer, create_headless_context, device_name,
                               release_context)
    from app.render.splat import importance_from_motion, mean_motion_magnitude, splat_frames

    min_frames, min_seconds = (5, 0.3) if quick else (20, 1.5)
    size = f"{WIDTH}x{HEIGHT}"
    motion = benchmark_motion()
    image = benchmark_image()

    def factors(index):
        return band_factors(motion.num_bands, motion.num_frames, (7 * index) % motion.num_frames)

    # Same-run reference: torch softmax splat + fill on the CPU.
    source = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)  # (1, 3, H, W)
    importance = importance_from_motion(mean_motion_magnitude(motion), 1.0)  # (1, 1, H, W)
    displacements = [torch.from_numpy(displacement_at(motion, 7 * i))[None] for i in range(4)]  # (1, 2, H, W)
    default_threads = torch.get_num_threads()
    reference_seconds = {}
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                reference_seconds[threads] = median_seconds(
                    lambda i: splat_frames(source, displacements[i % len(displacements)], importance),
                    min_frames, min_seconds)
    finally:
        torch.set_num_threads(default_threads)
    best_threads = min(reference_seconds, key=reference_seconds.get)
    reference_fps = 1.0 / reference_seconds[best_threads]
    rows = [{"name": REFERENCE, "size": size, "device": "cpu", "fps": reference_fps, "ratio": 1.0,
             "threads": best_threads}]

    ctx = create_headless_context()
    device = device_name(ctx)

    def gl_row(name, render_frame):
        def timed(i):
            render_frame(i)
            ctx.finish()

        fps = 1.0 / median_seconds(timed, min_frames, min_seconds)
        rows.append({"name": name, "size": size, "device": device, "fps": fps, "ratio": fps / reference_fps})

    try:
        target_colour = ctx.texture((WIDTH, HEIGHT), 4)
        target_depth = ctx.depth_renderbuffer((WIDTH, HEIGHT))
        target = ctx.framebuffer([target_colour], target_depth)
        for grid_px in GRID_SPACINGS:
            mesh = MeshWarpRenderer(ctx, image, motion, grid_px=grid_px)
            gl_row(f"gl-mesh-{grid_px}px", lambda i: mesh.draw(factors(i), target, flip_y=False))
            gl_row(f"gl-mesh-{grid_px}px-readback", lambda i: mesh.render(factors(i)))
            mesh.release()
        _flow_rows(ctx, image, motion, factors, target, gl_row, rows)
        splatter = GLSplatRenderer(ctx, image, motion, alpha=1.0)
        gl_row("gl-splat", lambda i: splatter.draw(factors(i), target, flip_y=False))
        gl_row("gl-splat-readback", lambda i: splatter.render(factors(i)))
        splatter.release()
        for resource in (target, target_colour, target_depth):
            resource.release()
    finally:
        release_context(ctx)

    simulator = ModalSimulator(motion)
    simulator.grab(WIDTH / 2, HEIGHT / 2, 10, -5)
    simulator.release()
    step_seconds = median_seconds(lambda i: simulator.step(1 / 60), 200, min_seconds / 3)
    rows.append({"name": "modal-step", "size": f"K={motion.num_bands}@60fps", "device": "cpu",
                 "microseconds": step_seconds * 1e6, "fps": 1.0 / step_seconds,
                 "ratio": (1.0 / step_seconds) / reference_fps})
    return rows


def _flow_rows(ctx, image, motion, factors, target, gl_row, rows) -> None:
    """The flow layer in the live viewport: its CPU fields, its GL draw, and both (see the docstring)."""
    import os

    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(previous_threads, (os.cpu_count() or 1) - 1)))
    try:
        _time_flow_rows(ctx, image, motion, factors, target, gl_row, rows)
    finally:
        torch.set_num_threads(previous_threads)


def _time_flow_rows(ctx, image, motion, factors, target, gl_row, rows) -> None:
    from app.core.flow_field import FlowHints, flow_from_hints
    from app.render.flow import LIVE_MAX_SIDE, FlowPlayer
    from app.render.gl import MeshWarpRenderer

    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    mask[HEIGHT // 2:] = 1.0
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[50, 180, 60, 0], [250, 220, 45, 10], [420, 260, 60, 0]], mask=mask)
    player = FlowPlayer(flow_from_hints(hints, HEIGHT, WIDTH).velocity, 90, 30.0, LIVE_MAX_SIDE)

    def fields(_index=0):
        player.advance(1.37 / 30)
        return player.fields()

    def mean_seconds(render_frame, count=2 * 90 // 1.37):
        render_frame()  # warm-up
        began = time.perf_counter()
        for index in range(int(count)):
            render_frame(index)
        ctx.finish()
        return (time.perf_counter() - began) / int(count)

    size = f"{WIDTH}x{HEIGHT}"
    seconds = mean_seconds(fields)
    rows.append({"name": "flow-fields", "size": size, "device": "cpu", "fps": 1.0 / seconds,
                 "ratio": (1.0 / seconds) / rows[0]["fps"]})
    mesh = MeshWarpRenderer(ctx, image, motion, grid_px=4)
    ready = player.fields()
    gl_row("gl-mesh-4px-flow", lambda i: mesh.draw(factors(i), target, flip_y=False, flow=ready))
    seconds = mean_seconds(lambda i=0: mesh.draw(factors(i), target, flip_y=False, flow=fields()))
    rows.append({"name": "viewport-flow-frame", "size": size, "device": rows[-1]["device"], "fps": 1.0 / seconds,
                 "ratio": (1.0 / seconds) / rows[0]["fps"]})
    mesh.release()
    sway = next(row["fps"] for row in rows if row["name"] == "gl-mesh-4px")
    for row in rows[-3:]:
        row["mesh_ratio"] = row["fps"] / sway


def _rounded(row: dict) -> dict:
    return {key: (round(value, 3) if isinstance(value, float) else value) for key, value in row.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench gl", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--quick", action="store_true", help="fewer frames per measurement")
    args = parser.parse_args(argv)
    try:
        rows = run_gl_benchmark(quick=args.quick)
    except Exception as error:  # no EGL: one sentence, not a traceback
        if "EGL" in str(error) or "context" in str(error).lower() or isinstance(error, (ImportError, OSError)):
            print(f"No headless OpenGL context ({error}); install libegl1 and libgl1.", file=sys.stderr)
            return 2
        raise
    for row in rows:
        row = _rounded(row)
        if args.json:
            print(json.dumps(row))
        else:
            extra = f"  {row['microseconds']:.1f} us/step" if "microseconds" in row else ""
            extra += f"  x{row['mesh_ratio']:.2f} of gl-mesh-4px" if "mesh_ratio" in row else ""
            print(f"{row['name']:<24} {row['size']:<12} {row['device']:<9} {row['fps']:>10.1f} fps  "
                  f"x{row['ratio']:.2f}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
