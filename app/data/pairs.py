"""Frame pairs for training and evaluating the learned renderer: videos -> (I_0, I_t, F_t, W) shards.

The renderer learns to turn a start frame I_0 and a displacement field F_t into the frame I_t that
the video really shows t frames later. For every clip (read, cut to an optional [start:end] range,
resampled to `fps`, centre-cropped and resized to the training size exactly like
app/data/extract.py does) this module takes a start frame every `stride` frames and, for each start,
a window of up to `window` frames:

    flow from the start frame to every frame of the window  (app.data.flow.flow_from_start)
    W(p) = mean_t |F_t(p)| over the window                  (the softmax-splatting importance)
    pairs (I_0, I_t, F_t) for t in `offsets` that fall inside the window (near and far)

Seamless loops (names with 'loop', see extract.may_wrap) may wrap past their end, like extraction.

A pairs folder holds one shard per clip, `shards/NAME.npz`:
    images0   uint8   (S, H, W, 3)   start frames
    weights   float16 (S, H, W)      W(p) of each start's window
    frames    uint8   (P, H, W, 3)   the true frames I_t
    flows     float16 (P, 2, H, W)   F_t from the start frame, pixels, x then y
    pair_start int32  (P,)           which start frame each pair belongs to
    pair_t     int32  (P,)           t of each pair
plus a JSON sidecar (written last: its presence marks the clip finished, so a re-run skips it) and
`index.json` listing every clip with its train/val split (extract.split_of: the same split as the
motion dataset, so held-out clips are never trained on).

`PairDataset(dir, split)` serves the pairs to torch, with flips and random crops for training.
`python -m app.data.pairs VIDEO... -o PAIRS_DIR` builds a folder from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

import numpy as np
import torch

from app.atomic import atomic_write
from app.data.extract import (
    INDEX_NAME, SHARD_FOLDER, clip_frames, clip_name, may_wrap, parse_input, split_of, write_json,
)

INDEX_KIND = "renderer-pairs"
DEFAULT_OFFSETS = (3, 8, 15, 30, 60, 100, 149)


@dataclass(frozen=True)
class PairSettings:
    """What the pair builder produces."""

    width: int = 256
    height: int = 160
    fps: float = 30.0                 # videos are resampled to this rate first
    window: int = 150                 # frames per window (start frame included)
    min_window: int = 60              # a non-looping clip's last starts keep at least this many frames
    stride: int = 30                  # frames between two start frames
    offsets: tuple = DEFAULT_OFFSETS  # t of the kept pairs (those inside the window)
    flow_method: str | None = None    # None: app.data.flow.DEFAULT_METHOD
    wrap: str = "loops"               # "loops": wrap videos named *loop*; "always"; "never"


@dataclass
class PairClipReport:
    """What the builder did with one clip."""

    name: str
    source: str
    split: str = ""
    frames: int = 0
    starts: int = 0
    pairs: int = 0
    wrapped: bool = False
    median_weight_px: float = 0.0  # median over pixels and starts of W(p)
    seconds: float = 0.0
    error: str = ""
    start_frames: list = field(default_factory=list)


# --- inputs --------------------------------------------------------------------------------------


def expand_inputs(inputs) -> list[str]:
    """Videos, frame folders, folders of videos and 'path[START:END]' ranges -> one spec per clip."""
    from app.data.video import list_videos

    specs = []
    for spec in ([inputs] if isinstance(inputs, str) else inputs):
        spec = str(spec)
        path, _, _ = parse_input(spec)
        if path != spec:  # a range: keep it as one clip
            specs.append(spec)
        else:
            specs.extend(list_videos([spec]))
    return list(dict.fromkeys(specs))


def window_plan(num_video_frames: int, settings: PairSettings, wrap: bool) -> list[tuple[int, int]]:
    """(start frame, window length) of every window of a clip."""
    if wrap:
        return [(start, settings.window) for start in range(0, num_video_frames, settings.stride)]
    shortest = min(settings.min_window, settings.window)
    return [(start, min(settings.window, num_video_frames - start))
            for start in range(0, num_video_frames - shortest + 1, settings.stride)]


# --- one clip ------------------------------------------------------------------------------------


def read_clip_frames(spec: str, settings: PairSettings) -> np.ndarray:
    """uint8 (N, H, W, 3) frames of a clip spec at the training size and frame rate."""
    frames = list(clip_frames(spec, settings.fps, settings.width, settings.height))
    if not frames:
        raise ValueError(f"The range of '{spec}' holds no frames.")
    return np.stack(frames)  # (N, H, W, 3)


def build_clip(spec: str, out_dir: str, settings: PairSettings) -> PairClipReport:
    """Build one clip's shard; problems become the report's `error` (and no shard is written)."""
    from app.data.flow import DEFAULT_METHOD, flow_from_start

    began = time.perf_counter()
    path, _, _ = parse_input(spec)
    name = clip_name(spec)
    report = PairClipReport(name=name, source=spec, split=split_of(name))
    try:
        frames = read_clip_frames(spec, settings)
        report.frames = len(frames)
        wrap = may_wrap(path, settings.wrap) and len(frames) >= settings.window // 2
        report.wrapped = wrap
        plan = window_plan(len(frames), settings, wrap)
        if not plan:
            raise ValueError(f"The clip has {len(frames)} frames at {settings.fps:g} fps, fewer than the "
                             f"{settings.min_window} a window needs, and does not loop.")
        images0, weights, pair_frames, pair_flows, pair_start, pair_t = [], [], [], [], [], []
        for start_number, (first, length) in enumerate(plan):
            indices = [(first + t) % len(frames) for t in range(length)]
            window = frames[indices]  # (T, H, W, 3)
            flows = flow_from_start(window, method=settings.flow_method or DEFAULT_METHOD)  # (T-1, 2, H, W)
            # W(p) = mean over the window's T frames of |F_t(p)| (|F_0| = 0 counts as a frame).
            magnitude_sum = np.sqrt(np.square(flows).sum(axis=1)).sum(axis=0)  # (H, W)
            weights.append((magnitude_sum / length).astype(np.float16))
            images0.append(window[0])
            for t in settings.offsets:
                if 0 < t < length:
                    pair_frames.append(window[t])
                    pair_flows.append(flows[t - 1].astype(np.float16))
                    pair_start.append(start_number)
                    pair_t.append(t)
            report.start_frames.append(int(first))
        if not pair_frames:
            raise ValueError("No window is long enough for any of the requested offsets.")
    except (ValueError, OSError) as error:
        report.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        return report
    except Exception as error:  # a decoder or flow failure: report it, skip the clip
        report.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return report

    report.starts = len(images0)
    report.pairs = len(pair_frames)
    report.median_weight_px = float(np.median(np.stack(weights).astype(np.float32)))
    report.seconds = time.perf_counter() - began
    shard_dir = os.path.join(out_dir, SHARD_FOLDER)
    os.makedirs(shard_dir, exist_ok=True)
    arrays = dict(
        images0=np.stack(images0), weights=np.stack(weights), frames=np.stack(pair_frames),
        flows=np.stack(pair_flows), pair_start=np.asarray(pair_start, np.int32),
        pair_t=np.asarray(pair_t, np.int32),
    )
    atomic_write(os.path.join(shard_dir, name + ".npz"), lambda file: np.savez(file, **arrays))
    write_json(os.path.join(shard_dir, name + ".json"), asdict(report))  # last: marks the clip finished
    return report


def _build_clip_worker(arguments) -> PairClipReport:
    import cv2

    cv2.setNumThreads(1)
    spec, out_dir, settings = arguments
    return build_clip(spec, out_dir, settings)


def finished_clip(out_dir: str, spec: str) -> PairClipReport | None:
    """The saved report of a clip already built into out_dir, or None."""
    name = clip_name(spec)
    sidecar = os.path.join(out_dir, SHARD_FOLDER, name + ".json")
    shard = os.path.join(out_dir, SHARD_FOLDER, name + ".npz")
    if not (os.path.isfile(sidecar) and os.path.isfile(shard)):
        return None
    try:
        with open(sidecar, encoding="utf-8") as file:
            return PairClipReport(**json.load(file))
    except (OSError, ValueError, TypeError):
        return None  # a broken sidecar: build the clip again


# --- the whole folder ----------------------------------------------------------------------------


def build_pairs(inputs, out_dir: str, settings: PairSettings = PairSettings(), workers: int = 1,
                on_clip=None) -> list[PairClipReport]:
    """Build every clip's shard (skipping finished ones), then write index.json.

    inputs: videos, frame folders, folders of videos, 'folder[0:240]' ranges.
    on_clip(report, done, total) is called as each clip finishes (for a progress bar).
    """
    specs = expand_inputs(inputs)
    os.makedirs(out_dir, exist_ok=True)
    reports: dict[str, PairClipReport] = {}
    todo = []
    for spec in specs:
        report = finished_clip(out_dir, spec)
        if report is None:
            todo.append(spec)
        else:
            reports[spec] = report
            if on_clip:
                on_clip(report, len(reports), len(specs))
    jobs = [(spec, out_dir, settings) for spec in todo]
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for report in pool.imap_unordered(_build_clip_worker, jobs):
                reports[report.source] = report
                if on_clip:
                    on_clip(report, len(reports), len(specs))
    else:
        for job in jobs:
            report = _build_clip_worker(job)
            reports[report.source] = report
            if on_clip:
                on_clip(report, len(reports), len(specs))
    ordered = [reports[spec] for spec in specs]
    write_index(out_dir, ordered, settings)
    return ordered


def write_index(out_dir: str, reports: list[PairClipReport], settings: PairSettings) -> dict:
    """index.json: every clip with its shard, split and counts (clips that failed have no shard)."""
    clips = []
    for report in reports:
        entry = {k: v for k, v in asdict(report).items() if k != "start_frames"}
        entry["shard"] = f"{SHARD_FOLDER}/{report.name}.npz" if not report.error else None
        clips.append(entry)
    index = {
        "format": 1,
        "kind": INDEX_KIND,
        "settings": asdict(settings),
        "clips": clips,
        "pairs": {split: sum(c["pairs"] for c in clips if c["split"] == split and c["shard"])
                  for split in ("train", "val")},
    }
    write_json(os.path.join(out_dir, INDEX_NAME), index)
    return index


def load_pairs_index(pairs_dir: str) -> dict:
    """A pairs folder's index.json (ValueError with one sentence when missing or not a pairs folder)."""
    path = os.path.join(pairs_dir, INDEX_NAME)
    try:
        with open(path, encoding="utf-8") as file:
            index = json.load(file)
    except FileNotFoundError:
        raise ValueError(f"'{pairs_dir}' is not a pairs folder: it has no {INDEX_NAME}.") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"The pairs index '{path}' is unreadable ({error}).") from None
    if index.get("kind") != INDEX_KIND:
        raise ValueError(f"'{pairs_dir}' is not a pairs folder built by app.data.pairs.")
    return index


# --- torch dataset -------------------------------------------------------------------------------


class PairDataset(torch.utils.data.Dataset):
    """The pairs of one split, all shards held in memory.

    split: "train", "val" or "all". augment (default: True for "train"): random horizontal flip
    (images mirrored, x flow negated). crop (width, height) or None: a random window of that size
    for training (the centre window without augmentation); flows keep their pixel values.
    Items are dicts of
        image0  float32 (3, H, W) in [0, 1]   the start frame
        image_t float32 (3, H, W) in [0, 1]   the true frame t frames later
        flow    float32 (2, H, W)             F_t in pixels, x then y
        weight  float32 (1, H, W)             W(p) = mean_t |F_t(p)| of the window
        t       int
    """

    def __init__(self, pairs_dir: str, split: str = "train", augment: bool | None = None,
                 crop: tuple[int, int] | None = None):
        if split not in ("train", "val", "all"):
            raise ValueError(f"Unknown split '{split}': use train, val or all.")
        self.index = load_pairs_index(pairs_dir)
        self.augment = (split == "train") if augment is None else augment
        self.crop = crop
        self.shards = []
        self.items = []  # (shard number, pair number)
        self.clips = []
        for clip in self.index["clips"]:
            if not clip["shard"] or (split != "all" and clip["split"] != split):
                continue
            with np.load(os.path.join(pairs_dir, clip["shard"])) as shard:
                arrays = {key: shard[key] for key in shard.files}
            self.items.extend((len(self.shards), pair) for pair in range(len(arrays["pair_t"])))
            self.shards.append(arrays)
            self.clips.append(clip["name"])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        shard_number, pair = self.items[index]
        shard = self.shards[shard_number]
        start = int(shard["pair_start"][pair])
        image0 = shard["images0"][start]  # (H, W, 3) uint8
        image_t = shard["frames"][pair]  # (H, W, 3) uint8
        flow = shard["flows"][pair].astype(np.float32)  # (2, H, W)
        weight = shard["weights"][start].astype(np.float32)[None]  # (1, H, W)
        height, width = image0.shape[:2]

        if self.augment and torch.rand(()) < 0.5:  # torch's RNG is seeded per DataLoader worker
            image0, image_t, weight = image0[:, ::-1], image_t[:, ::-1], weight[:, :, ::-1]
            flow = flow[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)[:, None, None]
        if self.crop is not None:
            crop_width, crop_height = min(self.crop[0], width), min(self.crop[1], height)
            if self.augment:
                top = int(torch.randint(0, height - crop_height + 1, ()))
                left = int(torch.randint(0, width - crop_width + 1, ()))
            else:
                top, left = (height - crop_height) // 2, (width - crop_width) // 2
            rows, columns = slice(top, top + crop_height), slice(left, left + crop_width)
            image0, image_t = image0[rows, columns], image_t[rows, columns]
            flow, weight = flow[:, rows, columns], weight[:, rows, columns]

        def to_tensor(image):  # (H, W, 3) uint8 -> (3, H, W) float [0, 1]
            return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)

        return {
            "image0": to_tensor(image0),
            "image_t": to_tensor(image_t),
            "flow": torch.from_numpy(np.ascontiguousarray(flow)),
            "weight": torch.from_numpy(np.ascontiguousarray(weight)),
            "t": int(shard["pair_t"][pair]),
        }


# --- command line --------------------------------------------------------------------------------


def main(argv=None) -> int:
    """python -m app.data.pairs VIDEO... -o PAIRS_DIR [--size 256x160] [--stride 30] [--workers N]"""
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m app.data.pairs",
                                     description="Build frame pairs (I_0, I_t, F_t, W) for the learned renderer.")
    parser.add_argument("inputs", nargs="+", help="videos, frame folders or folders of videos; "
                                                  "append [START:END] to use a frame range")
    parser.add_argument("-o", "--out", required=True, help="pairs folder")
    parser.add_argument("--size", default="256x160", help="WxH (default 256x160)")
    parser.add_argument("--stride", type=int, default=PairSettings.stride, help="frames between start frames")
    parser.add_argument("--window", type=int, default=PairSettings.window, help="frames per window")
    parser.add_argument("--fps", type=float, default=PairSettings.fps)
    parser.add_argument("--flow", default=None, help="optical flow method (default: app.data.flow.DEFAULT_METHOD)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
        for spec in args.inputs:
            if not os.path.exists(parse_input(spec)[0]):
                raise ValueError(f"Input '{spec}' does not exist.")
        settings = PairSettings(width=width, height=height, stride=args.stride, window=args.window,
                                fps=args.fps, flow_method=args.flow)
        specs = expand_inputs(args.inputs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    bar = tqdm(total=len(specs), unit="clip", desc="pairs")

    def on_clip(report, done, total):
        bar.n = done
        bar.refresh()
        status = f"skipped: {report.error}" if report.error else \
            f"{report.split}, {report.starts} starts, {report.pairs} pairs, median W {report.median_weight_px:.2f} px"
        bar.write(f"{report.name}: {status}")

    reports = build_pairs(specs, args.out, settings, workers=args.workers, on_clip=on_clip)
    bar.close()
    for split in ("train", "val"):
        chosen = [r for r in reports if r.split == split and not r.error]
        print(f"{split}: {len(chosen)} clips, {sum(r.pairs for r in chosen)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
