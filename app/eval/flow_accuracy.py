"""Optical-flow accuracy benchmark on synthetic videos with known oscillatory motion.

This module owns the measurement behind `app.data.flow.DEFAULT_METHOD`: every candidate flow
method (and settings variants, chained vs. direct) estimates the flow from frame 0 to every later
frame of a few synthetic videos (`app.data.synthetic`), and is scored by end-point error (EPE)
against the true motion, overall and on moving pixels, with seconds per flow (one thread per
flow; `flow_from_start` runs independent flows in parallel threads on top of that).

    python -m app.eval.flow_accuracy                 # table at 256x160
    python -m app.eval.flow_accuracy --json --sizes 256x160 512x288 --methods dis tvl1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from app.data.flow import DEFAULT_CHAINED, DEFAULT_METHOD, FLOW_METHODS, flow_from_start
from app.data.synthetic import (
    flow_error,
    render_synthetic_video,
    sinusoidal_motion_texture,
    textured_image,
)

__all__ = ["FlowVariant", "VARIANTS", "run_flow_benchmark", "main"]

# Displacement cap at width 256; scaled with the width (motions of ~0.5-10 px, up to ~20).
MAX_AMPLITUDE_AT_256 = 12.0


@dataclass(frozen=True)
class FlowVariant:
    """One row of the benchmark: a method, its settings and whether it is chained."""

    name: str
    method: str
    settings: dict = field(default_factory=dict)
    chained: bool = False


def _variants() -> list[FlowVariant]:
    variants = [
        FlowVariant("zero", "zero"),
        FlowVariant("flow-default", DEFAULT_METHOD, {}, DEFAULT_CHAINED),
        FlowVariant("flow-farneback", "farneback"),
        FlowVariant("flow-farneback-chained", "farneback", chained=True),
        FlowVariant("flow-farneback-w21", "farneback", {"winsize": 21, "poly_n": 7, "poly_sigma": 1.5}),
        FlowVariant("flow-dis", "dis"),
        FlowVariant("flow-dis-chained", "dis", chained=True),
        FlowVariant("flow-dis-fast", "dis", {"preset": "fast"}),  # finest scale 0 too
        FlowVariant("flow-dis-medium-s1", "dis", {"finest_scale": 1}),  # OpenCV's own preset
        FlowVariant("flow-dis-ref20", "dis", {"refinement_iterations": 20, "refinement_alpha": 40.0}),
        FlowVariant("flow-dis-stride2", "dis", {"patch_stride": 2}),
        FlowVariant("flow-dis_refined", "dis_refined"),
        FlowVariant("flow-dis_refined-chained", "dis_refined", chained=True),
        FlowVariant("flow-dis_refined-a20", "dis_refined", {"alpha": 20.0}),
        FlowVariant("flow-dis_refined-nosmooth", "dis_refined", {"presmooth_sigma": 0.0}),
        FlowVariant("flow-dis_refined-fast", "dis_refined", {"preset": "fast"}),
        FlowVariant("flow-tvl1", "tvl1"),
        FlowVariant("flow-tvl1-chained", "tvl1", chained=True),
        FlowVariant("flow-tvl1-l008", "tvl1", {"lambda_": 0.08}),
        FlowVariant("flow-deepflow", "deepflow"),
        FlowVariant("flow-pcaflow", "pcaflow"),
    ]
    return [v for v in variants if v.method in FLOW_METHODS]


VARIANTS: list[FlowVariant] = _variants()


def _scene(width, height, num_frames, fps, seed, noise_std, edge_sigma_px, max_amplitude):
    """A synthetic video and its true flow from frame 0: (T, H, W, 3) uint8, (T-1, 2, H, W)."""
    image = textured_image(height, width, seed)
    scale = width / 256.0
    amplitude = max_amplitude * scale
    edge = None if edge_sigma_px is None else edge_sigma_px * scale
    motion = sinusoidal_motion_texture(
        height, width, num_frames, fps, seed, amplitude, edge_sigma_px=edge
    )
    frames = render_synthetic_video(image, motion, noise_std=noise_std, seed=seed)
    return frames, motion[1:]


def _select(methods) -> list[FlowVariant]:
    """Variants whose name or method is in `methods` (None: all), always with the zero baseline."""
    if methods is None:
        return list(VARIANTS)
    wanted = set(methods)
    return [v for v in VARIANTS if v.name == "zero" or v.name in wanted or v.method in wanted]


def run_flow_benchmark(
    sizes=((256, 160),),
    num_frames: int = 21,
    seeds=(0, 1, 2),
    methods=None,
    fps: float = 10.0,
    noise_std: float = 2.0,
    edge_sigmas=(None, 6.0),
    max_amplitude: float = MAX_AMPLITUDE_AT_256,
    progress=None,
) -> list[dict]:
    """Score flow variants on synthetic videos; one dict per variant per (width, height) size.

    Each seed gives one video per entry of edge_sigmas (None: very soft moving regions; a number:
    motion boundaries blurred by that many pixels at width 256), with max displacement
    max_amplitude (pixels at width 256) scaled by width / 256 and Gaussian noise of noise_std grey levels.
    methods: variant names or method names to run (None: all); the zero baseline always runs.
    Each dict: name, method, chained, settings, size, epe, epe_median, epe_p95, epe_moving,
    seconds_per_flow, ratio (epe / best epe at that size), ratio_moving.
    """
    variants = _select(methods)
    rows = []
    for width, height in sizes:
        scenes = [
            _scene(width, height, num_frames, fps, seed, noise_std, edge, max_amplitude)
            for seed in seeds
            for edge in edge_sigmas
        ]
        size_rows = []
        for variant in variants:
            estimates, truths, seconds = [], [], 0.0
            for frames, truth in scenes:
                start = time.perf_counter()
                flow = flow_from_start(
                    frames, variant.method, chained=variant.chained, workers=1, **variant.settings
                )
                seconds += time.perf_counter() - start
                estimates.append(flow)
                truths.append(truth)
            error = flow_error(np.concatenate(estimates), np.concatenate(truths))
            num_flows = sum(len(t) for t in truths)
            row = {
                "name": variant.name,
                "method": variant.method,
                "chained": variant.chained,
                "settings": dict(variant.settings),
                "size": f"{width}x{height}",
                **{k: round(v, 4) for k, v in error.items()},
                "seconds_per_flow": round(seconds / num_flows, 4),
            }
            size_rows.append(row)
            if progress is not None:
                progress(row)
        best = min(r["epe"] for r in size_rows)
        best_moving = min(r["epe_moving"] for r in size_rows)
        for row in size_rows:
            row["ratio"] = round(row["epe"] / max(best, 1e-9), 3)
            row["ratio_moving"] = round(row["epe_moving"] / max(best_moving, 1e-9), 3)
        rows.extend(size_rows)
    return rows


def _format_table(rows: list[dict]) -> str:
    header = f"{'name':<26} {'size':>8} {'epe':>7} {'median':>7} {'p95':>7} {'moving':>7} {'s/flow':>7} {'ratio':>6} {'ratio_mv':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['name']:<26} {r['size']:>8} {r['epe']:>7.3f} {r['epe_median']:>7.3f} {r['epe_p95']:>7.3f} "
            f"{r['epe_moving']:>7.3f} {r['seconds_per_flow']:>7.3f} {r['ratio']:>6.2f} {r['ratio_moving']:>8.2f}"
        )
    return "\n".join(lines)


def _parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval.flow_accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["256x160"], help="WIDTHxHEIGHT sizes")
    parser.add_argument("--frames", type=int, default=21, help="frames per synthetic video")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="variant or method names (default all)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--noise", type=float, default=2.0, help="sensor noise std in grey levels")
    parser.add_argument(
        "--max-amplitude", type=float, default=MAX_AMPLITUDE_AT_256, help="largest displacement at width 256"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    args = parser.parse_args(argv)

    if args.list:
        for v in VARIANTS:
            print(f"{v.name:<26} method={v.method} chained={v.chained} settings={v.settings}")
        return 0
    unknown = [m for m in args.methods or [] if m not in FLOW_METHODS and m not in {v.name for v in VARIANTS}]
    if unknown:
        print(f"unknown methods/variants: {unknown}", file=sys.stderr)
        return 2

    rows = run_flow_benchmark(
        sizes=[_parse_size(s) for s in args.sizes],
        num_frames=args.frames,
        seeds=tuple(args.seeds),
        methods=args.methods,
        fps=args.fps,
        noise_std=args.noise,
        max_amplitude=args.max_amplitude,
    )
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
