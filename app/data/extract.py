"""The dataset builder: videos -> optical flow from start frames -> spectral volumes -> training shards.

For every video: resample to the target fps, centre-crop to the target aspect and resize to the
training size, take a start frame every `stride` frames, estimate flow from that start frame to each
of the following T-1 frames, keep the K lowest temporal bands of the resulting motion texture, and
drop windows that show camera motion or no motion. A seamlessly looping video may wrap around its end
(see may_wrap).

Videos are streamed (clip_frames): frames are decoded, resampled and resized one at a time, and
the windows slide over them (sliding_windows) holding one window of training-size frames; a
video that wraps also keeps its first T-1 frames. A long 1080p video never has to fit in memory.

A dataset folder holds one shard per video (`shards/NAME.npz`: images (N, H, W, 3) uint8, spectra
(N, K, 2, H, W) complex64, plus a JSON sidecar with per-window statistics) and `index.json` with
every kept window, the per-video report, the validation split and the per-frequency normalization
scales. Re-running skips videos whose shard is already there (resumable).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

import numpy as np

from app.atomic import atomic_write
from app.core.normalize import frequency_scales
from app.core.spectral import Motion, motion_to_texture

INDEX_NAME = "index.json"
SHARD_FOLDER = "shards"
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class ExtractSettings:
    """What the builder produces and how it filters windows."""

    width: int = 256
    height: int = 160
    num_frames: int = 150          # T: frames per window (start frame included)
    stride: int = 10               # frames between two start frames
    num_bands: int = 16            # K
    fps: float = 30.0              # videos are resampled to this rate first
    flow_method: str | None = None  # None: the flow module's measured default
    min_motion_px: float = 0.15    # drop a window whose 95th-percentile mean |F_t| is below this
    camera_motion_px: float = 1.0  # global translation above this ...
    camera_coherence: float = 0.7  # ... shared by this share of pixels means camera motion
    wrap: str = "loops"            # "loops": wrap videos named *loop*; "always"; "never"
    loop_stride: int | None = None  # stride for videos that wrap (seamless loops); None: stride
    denoise: bool = True           # subtract the flow-noise floor measured above band K (denoise_spectrum)
    min_band_share: float = 0.45   # drop a window with less motion energy in the K bands: flicker or noise


@dataclass
class ClipReport:
    """What extraction did with one video."""

    name: str
    source: str
    frames: int = 0
    windows_total: int = 0
    windows_kept: int = 0
    dropped_camera: int = 0
    dropped_static: int = 0
    dropped_noise: int = 0                # mostly flicker or flow noise (band_energy_share too low)
    wrapped: bool = False
    median_displacement_px: float = 0.0   # median over kept windows of median_p mean_t |F_t(p)|
    p95_displacement_px: float = 0.0      # median over kept windows of the 95th percentile
    band_energy_share: float = 0.0        # share of motion-texture energy kept by the K bands
    denoised_energy_share: float = 1.0    # share of the K bands' energy left after denoising
    noise_floor_px: float = 0.0           # median flow-noise amplitude per band, px
    low_band_share_raw: float = 0.0       # share of band 1..K-1 power in bands 1-4, before denoising
    low_band_share: float = 0.0           # the same after denoising
    seconds: float = 0.0
    error: str = ""
    windows: list = field(default_factory=list)


# --- inputs --------------------------------------------------------------------------------------

_RANGE_PATTERN = re.compile(r"^(?P<path>.*)\[(?P<start>\d*):(?P<end>\d*)\]$")


def parse_input(spec: str):
    """'clip.mp4' or 'frames_dir[0:240]' -> (path, start, end) with an optional frame range."""
    match = _RANGE_PATTERN.match(spec)
    if not match or os.path.exists(spec):
        return spec, 0, None
    start = int(match["start"]) if match["start"] else 0
    end = int(match["end"]) if match["end"] else None
    return match["path"], start, end


def clip_name(path: str) -> str:
    """A file-system-safe, stable name for a video (its file or folder name plus a short hash)."""
    base = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "clip"
    digest = zlib.crc32(os.path.abspath(path).encode("utf-8")) & 0xFFFF
    return f"{safe}-{digest:04x}"


def split_of(name: str, validation_fraction: float = VALIDATION_FRACTION) -> str:
    """Deterministic train/val assignment per clip, so no clip is in both."""
    stem = name.rsplit("-", 1)[0]
    return "val" if (zlib.crc32(stem.encode("utf-8")) % 1000) < validation_fraction * 1000 else "train"


# --- frames --------------------------------------------------------------------------------------


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop (N, H0, W0, 3) to the target aspect, then resize to (N, height, width, 3)."""
    return np.stack([fit_frame(frame, width, height) for frame in frames])


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop (H0, W0, 3) to the target aspect, then resize to (height, width, 3)."""
    import cv2

    source_height, source_width = frame.shape[:2]
    target_aspect = width / height
    if source_width / source_height > target_aspect:
        crop_width = int(round(source_height * target_aspect))
        left = (source_width - crop_width) // 2
        frame = frame[:, left:left + crop_width]
    else:
        crop_height = int(round(source_width / target_aspect))
        top = (source_height - crop_height) // 2
        frame = frame[top:top + crop_height]
    interpolation = cv2.INTER_AREA if frame.shape[1] > width else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(frame), (width, height), interpolation=interpolation)


def clip_frames(spec: str, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """The frames of a clip spec ('clip.mp4', 'frames_dir[0:240]') at this frame rate and size,
    each (height, width, 3) uint8, decoded one at a time. Raises VideoReadError (a ValueError) when
    the video cannot be read, also part way through."""
    from app.data.video import open_video, resample_stream

    path, start, end = parse_input(spec)
    stream = open_video(path, start)
    with contextlib.closing(stream.frames):
        in_range = stream.frames if end is None else itertools.islice(stream.frames, max(0, end - start))
        for frame in resample_stream(in_range, stream.fps, fps):
            yield fit_frame(frame, width, height)


def may_wrap(path: str, wrap: str) -> bool:
    """Whether windows of this video may run past its end into its start.

    Pixel differences do not tell a seamless loop from a clip reliably (measured on the gid-loops
    and the real clips: the seam-to-step ratios overlap), so it is a naming convention: "loops"
    wraps videos whose file or folder name contains "loop"; "always" and "never" override it.
    """
    if wrap not in ("loops", "always", "never"):
        raise ValueError(f"Unknown wrap mode '{wrap}': use loops, always or never.")
    if wrap == "loops":
        return "loop" in os.path.basename(os.path.normpath(path)).lower()
    return wrap == "always"


class Counted:
    """An iterator over items that counts how many it has passed on (count)."""

    def __init__(self, items: Iterable):
        self.items = iter(items)
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.count += 1
        return item


def wrapped(frames: Counted, num_frames: int, loops: bool) -> Iterator:
    """The frames, then, when the clip loops and has at least num_frames // 2 of them, its first
    num_frames - 1 frames again (cyclically), so that a window may start at any frame."""
    head = []  # the first num_frames - 1 frames of a looping clip
    for frame in frames:
        if loops and len(head) < num_frames - 1:
            head.append(frame)
        yield frame
    if loops and frames.count >= num_frames // 2:
        for t in range(num_frames - 1):
            yield head[t % len(head)]


def sliding_windows(frames: Iterable, num_frames: int, stride: int) -> Iterator[tuple[int, list]]:
    """(start, the num_frames frames from frame start on) for start = 0, stride, 2 stride ... while
    the frames last. Holds at most num_frames frames; frames between windows are passed over."""
    window = deque()
    start = 0
    for index, frame in enumerate(frames):
        if index < start:
            continue
        window.append(frame)
        if len(window) == num_frames:
            yield start, list(window)
            start += stride
            for _ in range(min(stride, num_frames)):
                window.popleft()


# --- window statistics and filters ---------------------------------------------------------------


def camera_motion_score(motion_texture: np.ndarray):
    """(largest global shift in px, share of pixels moving with it) over the window's frames.

    The global shift of frame t is the median displacement over all pixels; a pixel moves with it
    when its own displacement is within half that shift of it. Camera shake or pan moves nearly
    every pixel by nearly the same vector; a swaying tree does not.
    """
    global_shift = np.median(motion_texture.reshape(motion_texture.shape[0], 2, -1), axis=2)  # (T, 2)
    shift_size = np.linalg.norm(global_shift, axis=1)  # (T,)
    worst = int(np.argmax(shift_size))
    if shift_size[worst] == 0:
        return 0.0, 0.0
    residual = np.linalg.norm(motion_texture[worst] - global_shift[worst][:, None, None], axis=0)  # (H, W)
    coherent_share = float((residual < 0.5 * shift_size[worst]).mean())
    return float(shift_size[worst]), coherent_share


NOISE_OVERSUBTRACTION = 2.0  # pure white noise keeps e^-2 = 14% of its in-band power (1.0: 37%)


def denoise_spectrum(full_spectrum: np.ndarray, num_bands: int, blur_px: int = 5):
    """Bands 1..K-1 of a full rfft (T/2+1, 2, H, W) with the flow-noise floor subtracted.

    Optical-flow error and brightness flicker are close to white in time: they put the same power
    in every temporal band, while oscillation lives in the lowest bands. The power per band above
    K (where the kept motion has nothing) estimates that floor at each pixel and axis (box-blurred
    over blur_px); each kept band is shrunk by the gain max(0, 1 - 2 floor / |S_k|^2) (spectral
    subtraction with over-subtraction 2).
    Returns (spectrum (K, 2, H, W) complex64, floor (2, H, W) power per band).
    """
    import cv2

    upper = full_spectrum[num_bands:]
    if len(upper) == 0:
        return full_spectrum[:num_bands].astype(np.complex64), np.zeros(full_spectrum.shape[1:], np.float32)
    floor = np.mean(np.abs(upper) ** 2, axis=0).astype(np.float32)  # (2, H, W)
    floor = np.stack([cv2.blur(plane, (blur_px, blur_px)) for plane in floor])
    kept = full_spectrum[:num_bands].copy()
    power = np.abs(kept[1:]) ** 2
    gain = np.clip(1.0 - NOISE_OVERSUBTRACTION * floor[None] / np.maximum(power, 1e-12), 0.0, 1.0)
    kept[1:] *= gain
    return kept.astype(np.complex64), floor


def band_power_shares(spectrum: np.ndarray) -> np.ndarray:
    """(K,) share of the motion power (bands 1..K-1) in each band; band 0 (the anchor) gets 0."""
    power = np.square(np.abs(spectrum)).sum(axis=(1, 2, 3))
    power[0] = 0.0
    total = power.sum()
    return power / total if total > 0 else power


def window_statistics(motion_texture: np.ndarray, num_bands: int, fps: float, denoise: bool = True):
    """Spectrum and statistics of one window's motion texture (T, 2, H, W)."""
    num_frames = motion_texture.shape[0]
    full = np.fft.rfft(motion_texture, axis=0)  # (T/2+1, 2, H, W)
    raw = Motion(full[:num_bands].astype(np.complex64), num_frames, fps)
    if denoise:
        spectrum, floor = denoise_spectrum(full, num_bands)
        motion = Motion(spectrum, num_frames, fps)
    else:
        motion, floor = raw, np.zeros((2,) + motion_texture.shape[2:], np.float32)
    total_energy = float(np.square(motion_texture).sum())
    kept_energy = float(np.square(motion_to_texture(raw)).sum())
    denoised_energy = float(np.square(motion_to_texture(motion)).sum())
    mean_magnitude = np.linalg.norm(motion_to_texture(motion), axis=1).mean(axis=0)  # (H, W): W(p) of the paper
    shares_raw, shares = band_power_shares(raw.spectrum), band_power_shares(motion.spectrum)
    return motion, {
        "median_displacement_px": float(np.median(mean_magnitude)),
        "p95_displacement_px": float(np.percentile(mean_magnitude, 95)),
        "band_energy_share": kept_energy / total_energy if total_energy > 0 else 1.0,
        "denoised_energy_share": denoised_energy / kept_energy if kept_energy > 0 else 1.0,
        # amplitude of the noise floor per band, in px of displacement (2 |S| / T)
        "noise_floor_px": float(2.0 * np.sqrt(np.median(floor)) / num_frames),
        "low_band_share_raw": float(shares_raw[1:5].sum()),
        "low_band_share": float(shares[1:5].sum()),
    }


# --- one video -----------------------------------------------------------------------------------


def extract_clip(spec: str, out_dir: str, settings: ExtractSettings) -> ClipReport:
    """Extract every kept window of one video into its shard; errors become the report's `error`."""
    import time

    from app.data.flow import DEFAULT_METHOD, flow_from_start

    began = time.perf_counter()
    path, _, _ = parse_input(spec)
    name = clip_name(spec)
    report = ClipReport(name=name, source=spec)
    images, spectra = [], []
    try:
        loops = may_wrap(path, settings.wrap)
        stride = settings.loop_stride if loops and settings.loop_stride else settings.stride
        frames = Counted(clip_frames(spec, settings.fps, settings.width, settings.height))
        windows = sliding_windows(wrapped(frames, settings.num_frames, loops), settings.num_frames, stride)
        for first, window in windows:  # window: T frames (H, W, 3)
            flows = flow_from_start(window, method=settings.flow_method or DEFAULT_METHOD)  # (T-1, 2, H, W)
            motion_texture = np.concatenate([np.zeros_like(flows[:1]), flows], axis=0)  # (T, 2, H, W)
            shift, coherence = camera_motion_score(motion_texture)
            motion, stats = window_statistics(motion_texture, settings.num_bands, settings.fps, settings.denoise)
            stats.update(start_frame=int(first), camera_shift_px=shift, camera_coherence=coherence)
            if shift > settings.camera_motion_px and coherence > settings.camera_coherence:
                report.dropped_camera += 1
                stats["kept"] = False
            elif stats["band_energy_share"] < settings.min_band_share:
                report.dropped_noise += 1
                stats["kept"] = False
            elif stats["p95_displacement_px"] < settings.min_motion_px:
                report.dropped_static += 1
                stats["kept"] = False
            else:
                stats["kept"] = True
                images.append(window[0])
                spectra.append(motion.spectrum)
            report.windows.append(stats)
    except (ValueError, OSError) as error:
        report.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        return report
    report.frames = frames.count
    report.wrapped = loops and frames.count >= settings.num_frames // 2
    report.windows_total = len(report.windows)
    if frames.count == 0:
        report.error = f"The range of '{spec}' holds no frames."
        return report
    if not report.windows:
        report.error = (f"The video has {frames.count} frames at {settings.fps:g} fps, fewer than the "
                        f"{settings.num_frames} a window needs, and does not loop.")
        return report

    kept = [w for w in report.windows if w["kept"]]
    report.windows_kept = len(kept)
    if kept:
        report.median_displacement_px = float(np.median([w["median_displacement_px"] for w in kept]))
        report.p95_displacement_px = float(np.median([w["p95_displacement_px"] for w in kept]))
        report.band_energy_share = float(np.median([w["band_energy_share"] for w in kept]))
        for key in ("noise_floor_px", "low_band_share_raw", "low_band_share", "denoised_energy_share"):
            setattr(report, key, float(np.median([w[key] for w in kept])))
    report.seconds = time.perf_counter() - began

    shard_dir = os.path.join(out_dir, SHARD_FOLDER)
    os.makedirs(shard_dir, exist_ok=True)
    image_stack = np.stack(images) if images else np.zeros((0, settings.height, settings.width, 3), np.uint8)
    spectrum_stack = (np.stack(spectra) if spectra else
                      np.zeros((0, settings.num_bands, 2, settings.height, settings.width), np.complex64))
    atomic_write(os.path.join(shard_dir, name + ".npz"),
                 lambda file: np.savez(file, images=image_stack, spectra=spectrum_stack))
    write_json(os.path.join(shard_dir, name + ".json"), asdict(report))  # last: marks the clip finished
    return report


def _extract_clip_worker(arguments):
    import cv2

    cv2.setNumThreads(1)
    spec, out_dir, settings = arguments
    return extract_clip(spec, out_dir, settings)


# --- the whole dataset ---------------------------------------------------------------------------


def finished_report(out_dir: str, spec: str):
    """The saved report of a clip already extracted into out_dir, or None."""
    sidecar = os.path.join(out_dir, SHARD_FOLDER, clip_name(spec) + ".json")
    if not os.path.isfile(sidecar):
        return None
    with open(sidecar, encoding="utf-8") as file:
        return ClipReport(**json.load(file))


def extract_dataset(specs, out_dir: str, settings: ExtractSettings = ExtractSettings(), workers: int = 1,
                    on_clip=None) -> list[ClipReport]:
    """Extract every video (skipping finished ones), then write index.json with scales and splits.

    on_clip(report, done, total) is called as each clip finishes (for a progress bar).
    """
    os.makedirs(out_dir, exist_ok=True)
    reports: dict[str, ClipReport] = {}
    todo = []
    for spec in specs:
        report = finished_report(out_dir, spec)
        if report is not None:
            reports[spec] = report
        else:
            todo.append(spec)
    done = len(reports)
    for report in reports.values():
        if on_clip:
            on_clip(report, done, len(specs))
    jobs = [(spec, out_dir, settings) for spec in todo]
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(workers) as pool:
            for report in pool.imap_unordered(_extract_clip_worker, jobs):
                reports[report.source] = report
                done += 1
                if on_clip:
                    on_clip(report, done, len(specs))
    else:
        for job in jobs:
            report = _extract_clip_worker(job)
            reports[report.source] = report
            done += 1
            if on_clip:
                on_clip(report, done, len(specs))
    ordered = [reports[spec] for spec in specs]
    write_index(out_dir, ordered, settings)
    return ordered


def write_index(out_dir: str, reports: list[ClipReport], settings: ExtractSettings) -> dict:
    """index.json: every kept window (shard, row, split), per-clip report, normalization scales."""
    entries, spectra = [], {}
    for report in reports:
        shard_path = os.path.join(out_dir, SHARD_FOLDER, report.name + ".npz")
        if report.windows_kept == 0 or not os.path.isfile(shard_path):
            continue
        split = split_of(report.name)
        kept = [w for w in report.windows if w["kept"]]
        with np.load(shard_path) as shard:
            if split == "train":
                spectra[report.name] = shard["spectra"]
        for row, window in enumerate(kept):
            entries.append({"shard": f"{SHARD_FOLDER}/{report.name}.npz", "row": row, "clip": report.name,
                            "split": split, "start_frame": window["start_frame"]})
    # Scales come from the training split only, so validation never leaks into the model.
    scales = clip_balanced_scales(spectra) if spectra else np.ones(settings.num_bands, np.float32)
    index = {
        "format": 1,
        "settings": asdict(settings),
        "scales": [float(s) for s in scales],
        "windows": entries,
        "clips": [{k: v for k, v in asdict(r).items() if k != "windows"} | {"split": split_of(r.name)}
                  for r in reports],
    }
    write_json(os.path.join(out_dir, INDEX_NAME), index)
    return index


def write_json(path: str, data) -> str:
    """data as indented JSON (an index.json, a clip's sidecar), written atomically."""
    return atomic_write(path, lambda file: file.write(json.dumps(data, indent=1).encode("utf-8")))


def clip_balanced_scales(spectra_by_clip: dict, samples_per_clip: int = 200_000, seed: int = 0) -> np.ndarray:
    """(K,) per-band 95th-percentile scales in which every clip counts the same.

    A plain percentile over all pixels lets the clip with the most windows (and the noisiest
    flow) set every band's scale; here each clip contributes the same number of sampled
    magnitudes per band, whatever its window count.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for spectra in spectra_by_clip.values():
        magnitudes = np.abs(spectra).transpose(1, 0, 2, 3, 4).reshape(spectra.shape[1], -1)  # (K, N*2*H*W)
        picks = rng.integers(0, magnitudes.shape[1], samples_per_clip)
        samples.append(magnitudes[:, picks])
    return frequency_scales(np.concatenate(samples, axis=1)[None, :, None, None, :])


def clip_weights(windows: list) -> np.ndarray:
    """Sampling weight per window: 1 / (windows of its clip), so one clip cannot dominate training."""
    counts: dict = {}
    for window in windows:
        counts[window["clip"]] = counts.get(window["clip"], 0) + 1
    return np.array([1.0 / counts[w["clip"]] for w in windows], np.float64)


def load_index(dataset_dir: str) -> dict:
    """Read a dataset's index.json (ValueError with one sentence when it is missing or broken)."""
    path = os.path.join(dataset_dir, INDEX_NAME)
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise ValueError(f"'{dataset_dir}' is not a dataset: it has no {INDEX_NAME}.") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"The dataset index '{path}' is unreadable ({error}).") from None
