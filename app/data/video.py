"""Video reading for the whole app: video files and folders of frames -> RGB uint8 frames.

This module owns three things:
- `open_video`: a video file (.mp4 .avi .mov .webm .mkv ...) or a folder of numbered frames
  (png/jpg/bmp/tif) -> `VideoStream`, whose frames are decoded one at a time as they are iterated
  (a long video never has to fit in memory). `read_video` reads them all into a `Video` with
  frames (N, H, W, 3). Files are decoded with OpenCV (fast, and it reads every clip in
  ../shared/data, including the DynTex .avi files); when OpenCV cannot open a file or gets no
  frames from it, imageio-ffmpeg (the ffmpeg command-line tool) is tried. Folders of frames are
  read with app.data.images.
- `resample_stream` / `resample_fps`: nearest-frame resampling of a clip to another frame rate.
- `list_videos`: expand files and folders given by a user into a list of videos.

Anything that cannot be read raises `VideoReadError` with one human sentence (from open_video, or
while iterating when a frame part way through cannot be decoded).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.data.images import ImageLoadError, load_image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 30.0


class VideoReadError(ValueError):
    """A video could not be read; the message is one sentence for a person."""


@dataclass
class Video:
    """Decoded frames of one video."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    fps: float  # frames per second
    source: str  # the file or folder it was read from
    notes: list[str] = field(default_factory=list)  # sentences for a person about what was done


@dataclass
class VideoStream:
    """One video whose frames are decoded as they are iterated; frames.close() stops the decoder."""

    frames: Iterator[np.ndarray]  # each (H, W, 3) uint8 RGB
    fps: float  # frames per second
    source: str  # the file or folder it is read from
    notes: list[str] = field(default_factory=list)  # sentences for a person about what was done


class _ReaderFailed(Exception):
    """One decoder could not read a file; another may still manage."""


# --- reading -------------------------------------------------------------------------------------


def read_video(
    path: str | os.PathLike,
    max_frames: int | None = None,
    start: int = 0,
    fps: float | None = None,
) -> Video:
    """Read frames start .. start + max_frames - 1 of a video file or a folder of frames.

    fps: the frame rate of a folder of frames (default 30); for a video file it overrides the
    rate stored in the file. Raises VideoReadError when nothing can be read.
    """
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be a positive integer or None, not {max_frames!r}.")
    stream = open_video(path, start, fps)
    with contextlib.closing(stream.frames):
        frames = list(itertools.islice(stream.frames, max_frames))
    return Video(frames=np.stack(frames), fps=stream.fps, source=stream.source, notes=stream.notes)  # (N, H, W, 3)


def open_video(path: str | os.PathLike, start: int = 0, fps: float | None = None) -> VideoStream:
    """A video file or a folder of frames, from frame `start` on, decoded as it is iterated.

    fps as in read_video. Raises VideoReadError when the video cannot be opened or holds no frame
    from `start` on.
    """
    if int(start) != start or start < 0:
        raise ValueError(f"start must be a non-negative integer, not {start!r}.")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, not {fps!r}.")
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"Could not read '{path}': it does not exist.")
    if path.is_dir():
        return _open_frame_folder(path, start, fps or DEFAULT_FOLDER_FPS)
    if path.stat().st_size == 0:
        raise VideoReadError(f"Could not read '{path}': the file is empty.")
    if path.suffix.lower() in FRAME_EXTENSIONS:
        raise VideoReadError(f"Could not read '{path}': it is a single image, not a video.")
    return _open_video_file(path, start, fps)


def _open_video_file(path: Path, start: int, fps: float | None) -> VideoStream:
    """Try OpenCV, then imageio-ffmpeg."""
    notes = []
    try:
        frames, file_fps, frames_seen = _read_with_opencv(path, start)
    except _ReaderFailed as opencv_problem:
        try:
            frames, file_fps, frames_seen = _read_with_ffmpeg(path, start)
        except _ReaderFailed as ffmpeg_problem:
            raise VideoReadError(
                f"Could not read '{path}': it is not a video file or it is damaged "
                f"({opencv_problem}; {ffmpeg_problem})."
            ) from None
        notes.append(f"Read with imageio-ffmpeg because {opencv_problem}.")
    if frames is None:
        raise VideoReadError(
            f"Could not read '{path}': it has only {frames_seen} frames, "
            f"so there is nothing from frame {start} on."
        )
    if fps is None and not (file_fps and file_fps > 0):
        fps = DEFAULT_FOLDER_FPS
        notes.append(f"The file does not state its frame rate; assumed {DEFAULT_FOLDER_FPS:g} fps.")
    return VideoStream(frames=_decoded(frames, path), fps=float(fps or file_fps), source=str(path), notes=notes)


def _decoded(frames: Iterator[np.ndarray], path: Path) -> Iterator[np.ndarray]:
    """frames, with a decoder failing part way through reported as a VideoReadError."""
    with contextlib.closing(frames):
        try:
            yield from frames
        except _ReaderFailed as problem:
            raise VideoReadError(f"Could not read '{path}': {problem}.") from None


def _read_with_opencv(path: Path, start: int) -> tuple[Iterator[np.ndarray] | None, float, int]:
    """Open with cv2.VideoCapture and pass over `start` frames: (the frames from there on, or None
    when there are none, fps, frames passed over)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise _ReaderFailed("OpenCV could not open it")
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames_seen = 0
    while frames_seen < start and capture.grab():  # grab() skips exactly, unlike seeking
        frames_seen += 1
    ok, first_bgr = capture.read()  # (H, W, 3) BGR
    if not ok:
        capture.release()
        if frames_seen == 0:
            raise _ReaderFailed("OpenCV found no frames in it")
        return None, fps, frames_seen
    return _opencv_frames(capture, first_bgr), fps, frames_seen + 1


def _opencv_frames(capture, frame_bgr: np.ndarray) -> Iterator[np.ndarray]:
    """RGB frames from frame_bgr (already read) to the end; releases the capture when done."""
    try:
        ok = True
        while ok:
            yield cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            ok, frame_bgr = capture.read()
    finally:
        capture.release()


def _read_with_ffmpeg(path: Path, start: int) -> tuple[Iterator[np.ndarray] | None, float, int]:
    """Open with the ffmpeg tool from imageio-ffmpeg and pass over `start` frames: (the frames
    from there on, or None when there are none, fps, frames passed over)."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except Exception:  # ffmpeg reports unreadable input as OSError, RuntimeError, StopIteration...
        raise _ReaderFailed("ffmpeg could not open it") from None
    fps = float(meta.get("fps") or 0.0)
    frames = _ffmpeg_frames(reader, *meta["size"])
    frames_seen = sum(1 for _ in itertools.islice(frames, start))
    first = next(frames, None)
    if first is None:
        frames.close()
        if frames_seen == 0:
            raise _ReaderFailed("ffmpeg found no frames in it")
        return None, fps, frames_seen
    return _starting_with(first, frames), fps, frames_seen + 1


def _starting_with(first: np.ndarray, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """first, then frames; closing this closes frames."""
    with contextlib.closing(frames):
        yield first
        yield from frames


def _ffmpeg_frames(reader, width: int, height: int) -> Iterator[np.ndarray]:
    """(H, W, 3) RGB frames from an imageio-ffmpeg reader; stops the ffmpeg process when done."""
    try:
        for raw_frame in reader:
            if len(raw_frame) != width * height * 3:
                raise _ReaderFailed("ffmpeg returned frames of an unexpected size")
            yield np.frombuffer(raw_frame, np.uint8).reshape(height, width, 3).copy()
    except _ReaderFailed:
        raise
    except Exception:
        raise _ReaderFailed("ffmpeg failed while decoding it") from None
    finally:
        reader.close()  # stops the ffmpeg process


# --- folders of frames ---------------------------------------------------------------------------


def natural_sort_key(name: str) -> list:
    """Sort key that orders numbers by value: '2.png' < '10.png', 'b00010.bmp' < 'b00100.bmp'."""
    parts = re.split(r"(\d+)", name.lower())  # text, number, text, number, ... (text may be '')
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def _name_pattern(name: str) -> str:
    """'b00042.bmp' -> 'b#.bmp': frames of one sequence share a pattern."""
    return re.sub(r"\d+", "#", name.lower())


def frame_files(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The frame images of a folder in natural order, and the image files that were left out.

    The frames are the image files sharing the most common name pattern (digits aside), so a
    stray image such as 'hand_segmented_00247.BMP' beside 'b00000.bmp'... is not taken as a frame.
    Raises VideoReadError when two sequences are equally likely.
    """
    folder = Path(folder)
    images = [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in FRAME_EXTENSIONS
    ]
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in images:
        groups[_name_pattern(path.name)].append(path)
    sizes = sorted((len(group) for group in groups.values()), reverse=True)
    if not sizes or sizes[0] == 1:  # no numbered sequence: every image is a frame
        chosen = images
    elif len(sizes) > 1 and sizes[0] == sizes[1]:
        raise VideoReadError(
            f"Could not read '{folder}': it holds several frame sequences of {sizes[0]} images "
            "with different names; put each in its own folder."
        )
    else:
        chosen = max(groups.values(), key=len)
    left_out = [path for path in images if path not in chosen]
    by_name = lambda path: natural_sort_key(path.name)  # noqa: E731
    return sorted(chosen, key=by_name), sorted(left_out, key=by_name)


def _open_frame_folder(folder: Path, start: int, fps: float) -> VideoStream:
    paths, left_out = frame_files(folder)
    if not paths:
        raise VideoReadError(f"Could not read '{folder}': it holds no video frames (png, jpg, bmp or tif).")
    if start >= len(paths):
        raise VideoReadError(
            f"Could not read '{folder}': it has only {len(paths)} frames, "
            f"so there is nothing from frame {start} on."
        )
    notes = []
    if left_out:
        names = ", ".join(path.name for path in left_out[:3]) + (", ..." if len(left_out) > 3 else "")
        notes.append(f"Ignored {len(left_out)} image file(s) not named like the frames: {names}.")
    return VideoStream(frames=_folder_frames(folder, paths[start:]), fps=float(fps), source=str(folder), notes=notes)


def _folder_frames(folder: Path, paths: list[Path]) -> Iterator[np.ndarray]:
    """The (H, W, 3) frames of these files, one at a time; all must have the first one's size."""
    first_shape = None
    for path in paths:
        try:
            pixels = load_image(path, max_side=None).pixels  # (H, W, 3)
        except ImageLoadError as error:
            raise VideoReadError(str(error)) from None
        if first_shape is None:
            first_shape = pixels.shape
        elif pixels.shape != first_shape:
            raise VideoReadError(
                f"Could not read '{folder}': its frames have different sizes "
                f"('{paths[0].name}' is {first_shape[1]}x{first_shape[0]}, "
                f"'{path.name}' is {pixels.shape[1]}x{pixels.shape[0]})."
            )
        yield pixels


# --- frame rate ----------------------------------------------------------------------------------


def resample_fps(frames: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """resample_stream over an (N, ...) array: the resampled (M, ...) array."""
    if not source_fps > 0 or not target_fps > 0:
        raise ValueError(f"Frame rates must be positive, not {source_fps!r} and {target_fps!r}.")
    frames = np.asarray(frames)
    if len(frames) == 0 or source_fps == target_fps:
        return frames
    return np.stack(list(resample_stream(frames, source_fps, target_fps)))


def resample_stream(frames: Iterable, source_fps: float, target_fps: float) -> Iterator:
    """Resample frames from source_fps to target_fps by taking the nearest frame in time.

    The clip keeps its duration: N frames become round(N * target_fps / source_fps) frames (at
    least one), and output frame j (shown at time j / target_fps) is the source frame closest to
    that time. Going from 25 to 30 fps repeats every fifth frame; going down drops frames. No
    frames are blended. Frames come and go one at a time: since N is only known at the end, the
    frames whose place in the output is not yet certain are held (one or two).
    """
    if not source_fps > 0 or not target_fps > 0:
        raise ValueError(f"Frame rates must be positive, not {source_fps!r} and {target_fps!r}.")
    if source_fps == target_fps:
        yield from frames
        return
    pending = []  # frames of the next output frames, in order, not yet known to be in the output
    next_output = 0  # output frame of the next entry of pending
    emitted = 0
    count = 0
    frame = None
    for count, frame in enumerate(frames, start=1):
        while _nearest_source_frame(next_output, source_fps, target_fps) < count:
            pending.append(frame)
            next_output += 1
        certain = max(1, round(count * target_fps / source_fps))  # the output has at least this many frames
        while emitted < certain and pending:
            yield pending.pop(0)
            emitted += 1
    total = max(1, round(count * target_fps / source_fps)) if count else 0
    while emitted < total:  # the last output frames: pending ones, then the last frame repeated
        yield pending.pop(0) if pending else frame
        emitted += 1


def _nearest_source_frame(output_frame: int, source_fps: float, target_fps: float) -> int:
    """The source frame closest in time to an output frame; the small epsilon makes exact halves
    round up despite float error."""
    return math.floor(output_frame / target_fps * source_fps + 0.5 + 1e-9)


# --- finding videos ------------------------------------------------------------------------------


def list_videos(paths: list[str | os.PathLike] | str | os.PathLike) -> list[str]:
    """Expand files and folders into the videos they hold, each once, in a stable order.

    A video file is a video. A folder holding numbered frame images ('b00001.bmp', '2.png') is one
    video (the folder; a folder of unnumbered photos is not);
    video files in a folder are videos of their own, and sub-folders are searched the same way.
    Other files (LICENSE, README, text, single images) are ignored. A path that does not exist
    raises VideoReadError.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    videos: list[str] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise VideoReadError(f"'{path}' does not exist.")
        if path.is_dir():
            videos.extend(_videos_in_folder(path))
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(str(path))
    return list(dict.fromkeys(videos))  # drop repeats, keep order


def _videos_in_folder(folder: Path) -> list[str]:
    entries = sorted(
        (entry for entry in folder.iterdir() if not entry.name.startswith(".")),
        key=lambda entry: natural_sort_key(entry.name),
    )
    videos = [str(folder)] if _has_numbered_frames(entries) else []
    for entry in entries:
        if entry.is_dir():
            videos.extend(_videos_in_folder(entry))
        elif entry.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(str(entry))
    return videos


def _has_numbered_frames(entries: list[Path]) -> bool:
    """Whether at least two image files share a numbered name pattern ('b#.bmp', 'frame_#.png')."""
    patterns = [
        _name_pattern(entry.name)
        for entry in entries
        if entry.is_file() and entry.suffix.lower() in FRAME_EXTENSIONS
    ]
    return any("#" in pattern and patterns.count(pattern) >= 2 for pattern in set(patterns))
