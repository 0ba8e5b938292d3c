"""Motion prediction benchmark: seconds per photo and quality for each number of DDIM steps.

This module owns the measurement behind the predictor's speed/quality trade-off. For every step
count (default 10, 25, 50, 250) it runs app.diffusion.predict.predict_motion on 256x160 photos
(the model's size; the model's own CFG weight, seed 0) without loop guidance and, where it is cheap enough, with it:

    seconds         wall seconds per prediction (model call, VAE decode and denormalization), the
                    mean over the photos, after one warm-up prediction (CUDA synchronized)
    ratio           seconds / seconds of the largest step count without loop guidance (default
                    250, the paper's setting), measured in the same run
    spectrum_error, iou, seam, seam_ratio (with --data): app/eval/metrics.compare_motions of each
                    prediction against the reference motion of its 'val' window, averaged

Loop guidance (loop=true rows, on at most 2 photos) costs a VAE decode and backward per step and
two self-recurrence passes; with --loop auto (default) a step count is measured with it only where
the estimated seconds per photo (plain x 4 at first, then the measured looped seconds per step)
stay within --loop-budget. Without --data the photo is a synthetic texture and only
speed is measured.

    python -m app bench predict [--json] [--weights PATH] [--steps 10,25,50,250] [--items N]
                                [--data DIR] [--loop auto|on|off] [--device cpu|cuda] [--threads N]
    JSON lines: {"name": "predict", "steps": 25, "loop": false, "device": "cpu", "seconds": 3.1,
                 "ratio": 0.1, "spectrum_error": ..., "iou": ..., "seam": ..., "items": 4, "model": ...}

Without --weights the shipped models/motion_model.safetensors is used when present, else an
untrained default_motion_model (said in every row: "model": "untrained default"; its quality
figures are meaningless, its timings are those of the default architecture).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

NAME = "predict"
DEFAULT_STEPS = (10, 25, 50, 250)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_WEIGHTS = os.path.join(REPO_ROOT, "models", "motion_model.safetensors")
LOOP_COST_FACTOR = 4.0  # first guess of looped / plain seconds (the VAE decoder's share decides it)
LOOP_PHOTOS = 2         # photos per loop-guided row (they are slow)


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of step counts like 10,25,50.") from None
    if not steps or min(steps) < 1 or max(steps) > 1000:
        raise argparse.ArgumentTypeError("Step counts must lie between 1 and 1000.")
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app bench predict",
                                     description="Seconds and quality of motion prediction per DDIM step count.")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--weights", help="motion model (default: models/motion_model.safetensors, else an untrained model)")
    parser.add_argument("--steps", type=parse_steps, default=list(DEFAULT_STEPS),
                        help="comma-separated DDIM step counts (default 10,25,50,250)")
    parser.add_argument("--data", help="dataset folder: score predictions against its 'val' windows")
    parser.add_argument("--items", type=int, default=4, help="photos per step count (default 4)")
    parser.add_argument("--loop", default="auto", choices=["auto", "on", "off"],
                        help="also measure loop guidance (auto: where cheap enough)")
    parser.add_argument("--loop-budget", type=float, default=60.0,
                        help="auto: largest estimated seconds per looped prediction (default 60)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    return parser


def load_model(weights: str | None, scales_hint=None):
    """(MotionModel, description): the given weights, the shipped ones, or an untrained default."""
    from app.diffusion.weights import default_motion_model, load_motion_model

    if weights is None and os.path.isfile(SHIPPED_WEIGHTS):
        return load_motion_model(SHIPPED_WEIGHTS), "models/motion_model.safetensors"
    if weights is not None:
        return load_motion_model(weights), weights
    scales = scales_hint if scales_hint is not None and len(scales_hint) == 16 else np.ones(16, np.float32)
    return default_motion_model(scales), "untrained default"


def photos_and_references(data: str | None, items: int, width: int, height: int):
    """[(uint8 photo (H, W, 3), reference Motion or None)]: 'val' windows, or one synthetic texture."""
    if data is None:
        from app.data.synthetic import textured_image

        return [(textured_image(height, width, seed=0), None)]
    from app.data.dataset import SpectralDataset

    dataset = SpectralDataset(data, split="val")
    if len(dataset) == 0:
        raise ValueError(f"The dataset '{data}' has no validation windows.")
    return [dataset.raw(index) for index in range(min(items, len(dataset)))]


def measure(model, photos, num_steps: int, loop: bool, device: str) -> dict:
    """Mean seconds per prediction and, where references exist, the mean metrics."""
    import torch

    from app.diffusion.predict import predict_motion
    from app.eval.metrics import compare_motions

    seconds, scores = [], []
    for photo, reference in photos:
        began = time.perf_counter()
        motion = predict_motion(photo, model, num_steps=num_steps, loop=loop, seed=0, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - began)
        if reference is not None:
            scores.append(compare_motions(motion, reference))
    row = {"seconds": round(float(np.mean(seconds)), 3)}
    if scores:
        for key in ("spectrum_error", "iou", "seam", "seam_ratio", "mean_displacement_px"):
            row[key] = round(float(np.mean([s[key] for s in scores])), 5)
    return row


def run_benchmark(model, description: str, photos, step_counts, loop_mode: str = "auto",
                  loop_budget: float = 60.0, device: str = "cpu", on_row=None) -> list[dict]:
    """Every row (plain, then looped where measured); on_row(row) as each is ready, ratio filled in.

    Loop rows use at most LOOP_PHOTOS photos. auto: a step count is measured with loop guidance when
    its estimated seconds per photo stay within loop_budget; the estimate is the plain time times
    LOOP_COST_FACTOR for the first, then the measured looped seconds per step times the steps.
    """
    from app.diffusion.predict import predict_motion

    predict_motion(photos[0][0], model, num_steps=1, device=device)  # warm-up
    rows = []
    for num_steps in sorted(step_counts):
        rows.append({"name": NAME, "steps": num_steps, "loop": False, "device": device,
                     "size": f"{model.width}x{model.height}", **measure(model, photos, num_steps, False, device),
                     "items": len(photos), "model": description})
    looped_per_step = None  # measured seconds per step with loop guidance
    for plain in list(rows):
        estimate = (plain["seconds"] * LOOP_COST_FACTOR if looped_per_step is None
                    else looped_per_step * plain["steps"])
        if loop_mode == "on" or (loop_mode == "auto" and estimate <= loop_budget):
            loop_photos = photos[:LOOP_PHOTOS]
            row = {**plain, "loop": True, **measure(model, loop_photos, plain["steps"], True, device),
                   "items": len(loop_photos)}
            looped_per_step = row["seconds"] / plain["steps"]
            rows.append(row)
    baseline = max((r for r in rows if not r["loop"]), key=lambda r: r["steps"])["seconds"]
    for row in rows:
        row["ratio"] = round(row["seconds"] / baseline, 4) if baseline > 0 else None
        if on_row:
            on_row(row)
    return rows


def format_table(rows: list[dict]) -> str:
    quality = any("spectrum_error" in row for row in rows)
    header = ["steps", "loop", "seconds", "ratio"] + (["spectrum err", "IoU", "seam", "seam ratio"] if quality else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["steps"]), "yes" if row["loop"] else "no", f"{row['seconds']:.2f}", f"{row['ratio']:.3f}"]
        if quality:
            cells += [f"{row.get('spectrum_error', float('nan')):.3f}", f"{row.get('iou', float('nan')):.3f}",
                      f"{row.get('seam', float('nan')):.4f}", f"{row.get('seam_ratio', float('nan')):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point of `python -m app bench predict`; a user's error prints one sentence, exit 2."""
    import torch

    args = build_parser().parse_args(argv)
    if args.items < 1:
        print("error: --items must be at least 1.", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: CUDA was requested but this machine has no CUDA GPU.", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        scales_hint = None
        if args.data is not None:
            from app.data.extract import load_index

            scales_hint = np.asarray(load_index(args.data)["scales"], np.float32)
        model, description = load_model(args.weights, scales_hint)
        photos = photos_and_references(args.data, args.items, model.width, model.height)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if description == "untrained default":
        print("note: no trained weights found; timing an untrained default_motion_model "
              "(its quality figures mean nothing).", file=sys.stderr)
    else:
        print(f"note: model {description}.", file=sys.stderr)
    rows = run_benchmark(model, description, photos, args.steps, args.loop, args.loop_budget, args.device,
                         on_row=(lambda row: print(json.dumps(row), flush=True)) if args.json else None)
    if not args.json:
        print(f"Motion prediction at {model.width}x{model.height}, {model.num_bands} bands, device {args.device}, "
              f"torch threads {torch.get_num_threads()}, model: {description}, {len(photos)} photo(s) per row")
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
