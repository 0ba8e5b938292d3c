"""Writing frames to files: MP4, GIF, WebM and PNG sequences, always atomically.

One entry point, export_frames(path, frames, fps, ...), picks the format from the path and streams
uint8 (H, W, 3) RGB frames into it:

    mp4   H.264 (libx264, CRF 18), yuv420p, even size, +faststart: plays in browsers and on phones.
    gif   loops forever (loop=0); one shared adaptive palette (256 colours, or gif_colours) taken
          from the first frame and no dithering, so still parts of a cinemagraph stay still;
          per-frame durations from fps whose sum is the loop's duration to the centisecond.
          estimate_gif_bytes() predicts the file size from two frames.
    webm  VP9 (libvpx-vp9, CRF 32, yuv420p) when the bundled ffmpeg has it, else VP8 (libvpx).
          The imageio-ffmpeg binary shipped with this project has libvpx-vp9, so WebM is VP9.
    png   a folder of frame_0000.png, frame_0001.png, ... (lossless, exact pixels).

Files appear complete or not at all: frames go to a hidden temporary file (or folder) beside the
target, renamed over it only when the encoder has finished. A cancel or an error removes the
temporary and leaves any existing target untouched. Existing files are replaced (a save dialog has
already asked); an existing non-empty folder is only replaced with overwrite=True, because that
throws away everything in it.

Frames with an odd width or height lose their last row/column for MP4 and WebM (yuv420p needs
even sizes); GIF and PNG keep the exact size.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import shutil
import tempfile

import numpy as np

from app.atomic import WriteError, atomic_path, check_folder, folder_mode, write_error

FORMATS = ("mp4", "gif", "webm", "png")
FILE_EXTENSIONS = {".mp4": "mp4", ".gif": "gif", ".webm": "webm", ".png": "png"}
PNG_FRAME_PATTERN = "frame_{:04d}.png"
MP4_CRF = 18  # visually lossless H.264
WEBM_CRF = 32  # VP9's recommended quality for HD-ish web video
GIF_MIN_DELAY_CS = 2  # browsers turn delays under 2 centiseconds into 10
GIF_COLOURS = (256, 128, 64, 32)
# Above this many pixels a frame, x264 looks 10 frames ahead instead of 40: its memory at
# 4000x3000 falls from 2.0 GB to 1.3 GB (measured) for a slightly less even bit rate.
LARGE_FRAME_PIXELS = 4_000_000


class ExportError(ValueError):
    """An export that cannot be written (one clear sentence)."""


class ExportCancelled(ExportError):
    """The export was cancelled; nothing was written."""


class ExportWriteError(ExportError, WriteError):
    """The output could not be written (full disk, read-only folder, ...); nothing was left behind."""


# --- frames --------------------------------------------------------------------------------------


def even_size(frame: np.ndarray) -> np.ndarray:
    """Crop an (H, W, 3) frame to even height and width, which yuv420p needs."""
    height, width = frame.shape[:2]
    return frame[: height - height % 2, : width - width % 2]


def _as_rgb(frame) -> np.ndarray:
    """A frame as contiguous uint8 (H, W, 3); grey (H, W) and RGBA (H, W, 4) are converted."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ExportError(f"Frames must be uint8 images; got {frame.dtype}.")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or min(frame.shape[:2]) < 1:
        raise ExportError(f"Frames must have shape (H, W, 3); got {frame.shape}.")
    return np.ascontiguousarray(frame[:, :, :3])


def _checked_frames(frames, target: str, progress, cancel, total):
    """Yield validated frames of one size; check cancel before and report progress after each."""
    size = None
    done = 0
    for frame in frames:
        if cancel is not None and cancel():
            raise ExportCancelled(f"Export cancelled; '{target}' was not written.")
        frame = _as_rgb(frame)
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise ExportError(f"Frame {done} has shape {frame.shape} but the first frame has {size}.")
        yield frame
        done += 1
        if progress is not None:
            progress(done, total)
    if cancel is not None and cancel():
        raise ExportCancelled(f"Export cancelled; '{target}' was not written.")


# --- formats ---------------------------------------------------------------------------------------


def export_format(path, format: str | None = None) -> str:
    """The format ('mp4', 'gif', 'webm' or 'png') for a path; a folder or no extension means png."""
    if format is not None:
        name = str(format).lower().lstrip(".")
        if name not in FORMATS:
            raise ExportError(f"Unknown export format '{format}'; choose mp4, gif, webm or png.")
        return name
    path = os.fspath(path)
    if os.path.isdir(path):
        return "png"
    extension = os.path.splitext(path)[1].lower()
    if extension == "":
        return "png"
    if extension not in FILE_EXTENSIONS:
        raise ExportError(f"Unknown export format '{extension}'; use .mp4, .gif, .webm or a folder for PNG frames.")
    return FILE_EXTENSIONS[extension]


@functools.lru_cache(maxsize=1)
def webm_codec() -> str:
    """'libvpx-vp9' when the bundled ffmpeg has VP9, else 'libvpx' (VP8)."""
    import subprocess

    import imageio_ffmpeg

    encoders = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"],
                              capture_output=True, text=True, check=False).stdout
    return "libvpx-vp9" if " libvpx-vp9 " in encoders else "libvpx"


def _write_video(temp_path: str, frames, fps: float, codec: str, output_params: list) -> None:
    """Encode frames with the bundled ffmpeg into temp_path (yuv420p, even size), streaming.

    Frames are piped to ffmpeg one at a time as raw RGB, so none waits in memory. Any error or a
    cancel (raised by the frames iterator) kills ffmpeg at once instead of letting it finish the
    frames it holds: a cancel takes effect within one frame.
    """
    import subprocess

    import imageio_ffmpeg

    frames = iter(frames)
    first = even_size(next(frames))
    height, width = first.shape[:2]
    if height < 2 or width < 2:
        raise ExportError(f"Frames of {first.shape[1]}x{first.shape[0]} pixels are too small for a video.")
    if codec == "libx264" and width * height > LARGE_FRAME_PIXELS:
        output_params = [*output_params, "-x264-params", "rc-lookahead=10"]  # ffmpeg 2.0 -> 1.3 GB at 12 MP
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", f"{float(fps):.6f}", "-i", "-", "-an", "-c:v", codec,
               "-pix_fmt", "yuv420p", *output_params, temp_path]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        finished = False
        try:
            for frame in itertools.chain([first], (even_size(f) for f in frames)):
                if frame.shape[:2] != (height, width):
                    raise ExportError(f"A frame has shape {frame.shape} but the first frame has {first.shape}.")
                process.stdin.write(np.ascontiguousarray(frame).data)
            process.stdin.close()
            finished = process.wait() == 0
        except BrokenPipeError:
            pass  # ffmpeg stopped early: reported below from its log
        finally:
            if not finished and process.poll() is None:
                process.kill()
            process.wait()
            try:
                process.stdin.close()
            except OSError:
                pass
        if not finished:
            if _disk_is_full(temp_path):
                raise _encoder_error(temp_path, codec)  # worded for the target by the caller
            log.seek(0)
            message = log.read().decode("utf-8", "replace").strip().splitlines()
            if process.returncode not in (0, None) and message:
                raise ExportError(f"The {codec} encoder failed: {message[-1].strip().rstrip('.')}.")
    if not os.path.isfile(temp_path) or os.path.getsize(temp_path) == 0:
        raise _encoder_error(temp_path, codec)
    if codec == "libx264" and not _mp4_is_complete(temp_path):  # ffmpeg could not finish it (e.g. disk full)
        raise _encoder_error(temp_path, codec)


def _encoder_error(temp_path: str, codec: str) -> Exception:
    """Why ffmpeg failed: a full disk (an OSError, which the caller words for the target), or the
    encoder itself (ExportError)."""
    if _disk_is_full(temp_path):
        import errno

        return OSError(errno.ENOSPC, "No space left on device")
    return ExportError(f"The video encoder ({codec}) stopped before the video was complete.")


def _disk_is_full(path: str) -> bool:
    """True when the file system holding path has less than 4 MiB free."""
    try:
        status = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return status.f_bavail * status.f_frsize < 4 * 1024 * 1024


def _mp4_is_complete(path: str) -> bool:
    """True when the MP4's top-level boxes hold a movie header (moov) and end with the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        position, names = 0, set()
        while position + 8 <= size:
            file.seek(position)
            header = file.read(16)
            length, name = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            if length < 8:
                return False
            names.add(name)
            position += length
    return position == size and b"moov" in names


def _write_mp4(temp_path: str, frames, fps: float, crf: int = MP4_CRF) -> None:
    """H.264 (libx264, preset medium) in yuv420p with the index up front (+faststart) for streaming."""
    _write_video(temp_path, frames, fps, "libx264",
                 ["-crf", str(crf), "-preset", "medium", "-movflags", "+faststart"])


def _write_webm(temp_path: str, frames, fps: float) -> None:
    """VP9 (or VP8) in constant quality mode, using both cores for rows."""
    codec = webm_codec()
    if codec == "libvpx-vp9":
        params = ["-crf", str(WEBM_CRF), "-b:v", "0", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"]
    else:
        params = ["-crf", "10", "-b:v", "2M", "-deadline", "good", "-cpu-used", "4"]
    _write_video(temp_path, frames, fps, codec, params + ["-f", "webm"])


def gif_durations_ms(num_frames: int, fps: float) -> list[int]:
    """Per-frame delays in ms (multiples of 10, GIF's unit) whose running sum tracks frame / fps.

    At 30 fps this gives 30, 40, 30, 30, 40, 30, ... so the loop lasts exactly as long as the video.
    Delays never drop under 20 ms (browsers slow shorter ones down to 100 ms), so GIFs top out at 50 fps.
    """
    ends_cs = [round(number * 100.0 / fps) for number in range(num_frames + 1)]
    return [max(GIF_MIN_DELAY_CS, end - start) * 10 for start, end in zip(ends_cs[:-1], ends_cs[1:])]


def _check_gif_colours(colours: int) -> int:
    if not 2 <= int(colours) <= 256:
        raise ExportError(f"A GIF has 2 to 256 colours; got {colours}.")
    return int(colours)


def _gif_bytes(frames, fps: float, colours: int) -> bytes:
    """The GIF of a few frames, in memory (for estimates)."""
    buffer = io.BytesIO()
    _write_gif(buffer, frames, fps, colours)
    return buffer.getvalue()


def estimate_gif_bytes(first_frame: np.ndarray, later_frame: np.ndarray, num_frames: int,
                       colours: int = 256) -> int:
    """Expected size of a num_frames GIF from its first frame and one later frame.

    Each frame after the first stores the box of pixels that changed, so the cost of one more frame
    is measured by encoding [first, later] and subtracting the one-frame GIF.
    """
    colours = _check_gif_colours(colours)
    one = len(_gif_bytes([first_frame], 30.0, colours))
    two = len(_gif_bytes([first_frame, later_frame], 30.0, colours))
    return int(one + max(0, two - one) * max(0, int(num_frames) - 1))


def _write_gif(temp_path, frames, fps: float, colours: int = 256) -> None:
    """Animated GIF looping forever, quantized to one palette made from the first frame.

    Cinemagraph frames are rearrangements of one photo's pixels, so the first frame's palette fits
    them all; no dithering keeps unchanged pixels identical between frames (no shimmer).
    Pillow merges identical consecutive frames into one longer frame.
    """
    from PIL import Image

    palette_image = None
    images = []  # paletted frames: one byte a pixel
    for frame in frames:
        image = Image.fromarray(frame)
        if palette_image is None:
            palette_image = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        images.append(image.quantize(palette=palette_image, dither=Image.Dither.NONE))
    images[0].save(temp_path, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=gif_durations_ms(len(images), fps), disposal=1, optimize=False)


def _write_png_folder(temp_folder: str, frames) -> None:
    """frame_0000.png, frame_0001.png, ... into temp_folder."""
    import cv2

    for number, frame in enumerate(frames):
        frame_path = os.path.join(temp_folder, PNG_FRAME_PATTERN.format(number))
        if not cv2.imwrite(frame_path, np.ascontiguousarray(frame[:, :, ::-1])):
            raise ExportError(f"Could not write '{frame_path}'.")


# --- the entry point -------------------------------------------------------------------------------


def _png_folder_path(path: str) -> str:
    """The folder a PNG sequence goes to: the path itself, without a '.png' extension."""
    if not os.path.isdir(path) and path.lower().endswith(".png"):
        return path[: -len(".png")]
    return path


def _check_folder(path: str) -> str:
    """The parent folder of path, or ExportError when it does not exist or is not writable."""
    try:
        return check_folder(path)
    except WriteError as error:
        raise ExportWriteError(str(error)) from None


def _remove(path: str | None) -> None:
    """Remove a temporary file or folder if it is still there."""
    if path is None:
        return
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _move_folder_into_place(temp_folder: str, target: str, overwrite: bool) -> None:
    """Rename temp_folder to target; an existing target folder is swapped out and deleted."""
    if not os.path.exists(target):
        os.rename(temp_folder, target)
        return
    if os.listdir(target) and not overwrite:
        raise ExportError(f"The folder '{target}' is not empty; pass overwrite=True to replace it.")
    old_folder = temp_folder + ".old"
    os.rename(target, old_folder)
    try:
        os.rename(temp_folder, target)
    except OSError:
        os.rename(old_folder, target)
        raise
    shutil.rmtree(old_folder, ignore_errors=True)


def export_frames(path, frames, fps: float, format: str | None = None, progress=None, cancel=None,
                  total: int | None = None, overwrite: bool = False, gif_colours: int = 256) -> str:
    """Write uint8 (H, W, 3) RGB frames to path as mp4, gif, webm or a PNG folder; returns the path.

    format: None takes it from the extension; no extension or an existing folder means a PNG
        sequence (a '.png' path writes the folder without the extension, 'out/loop.png' -> 'out/loop').
    frames: any iterable (a generator streams: video formats never hold all frames in memory).
    progress(done, total): after each frame; total is `total`, len(frames) or None.
    cancel(): checked before each frame; True stops with ExportCancelled and writes nothing.
    overwrite: needed to replace a non-empty folder with a PNG sequence; files are always replaced.
    gif_colours: palette size of a GIF (2 to 256; fewer colours, smaller file).
    """
    return _export(path, frames, fps, format, progress, cancel, total, overwrite, MP4_CRF, gif_colours)


def write_mp4(path: str, frames, fps: float, quality: int = 8, progress=None) -> str:
    """Encode uint8 (H, W, 3) frames to an H.264 MP4 that browsers and phones play; returns path.

    quality 1..10 is imageio's scale (CRF = (1 - quality / 10) * 51); progress(done) after each frame.
    """
    report = None if progress is None else (lambda done, total: progress(done))
    return _export(path, frames, fps, "mp4", report, None, None, False, int((1 - quality / 10.0) * 51))


def _export(path, frames, fps, format, progress, cancel, total, overwrite, mp4_crf, gif_colours=256) -> str:
    """export_frames with the MP4 quality as a parameter."""
    path = os.fspath(path)
    kind = export_format(path, format)
    gif_colours = _check_gif_colours(gif_colours)
    if not (isinstance(fps, (int, float, np.number)) and np.isfinite(fps) and fps > 0):
        raise ExportError(f"fps must be a positive number; got {fps}.")
    target = _png_folder_path(path) if kind == "png" else path
    folder = _check_folder(target)
    if kind == "png":
        if os.path.exists(target) and not os.path.isdir(target):
            raise ExportError(f"Cannot write PNG frames into '{target}': it is a file, not a folder.")
        if os.path.isdir(target) and os.listdir(target) and not overwrite:
            raise ExportError(f"The folder '{target}' is not empty; pass overwrite=True to replace it.")
    elif os.path.isdir(target):
        raise ExportError(f"Cannot write '{target}': a folder of that name is in the way.")
    if total is None and hasattr(frames, "__len__"):
        total = len(frames)

    checked = _checked_frames(frames, target, progress, cancel, total)
    temp_path = None
    try:
        first = next(checked, None)
        if first is None:
            raise ExportError(f"No frames to export to '{target}'.")
        stream = itertools.chain([first], checked)
        if kind == "png":
            temp_path = tempfile.mkdtemp(prefix=".export-", dir=folder)
            os.chmod(temp_path, folder_mode())  # mkdtemp makes a private 0700 folder
            _write_png_folder(temp_path, stream)
            _move_folder_into_place(temp_path, target, overwrite)
        else:
            with atomic_path(target, suffix="." + kind) as temp_path:
                if kind == "mp4":
                    _write_mp4(temp_path, stream, fps, crf=mp4_crf)
                elif kind == "gif":
                    _write_gif(temp_path, stream, fps, gif_colours)
                else:
                    _write_webm(temp_path, stream, fps)
    except ExportWriteError:
        raise
    except WriteError as error:
        raise ExportWriteError(str(error)) from error
    except OSError as error:
        raise ExportWriteError(str(write_error(target, error))) from error
    finally:
        checked.close()
        _remove(temp_path)
    return target


# --- progress ------------------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """A rough duration for people: '40 s', '3 min 10 s', '1 h 5 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{minutes} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min"


def progress_message(done: int, total: int | None, elapsed_s: float) -> str:
    """'Frame 12 of 150 (8%), about 2 min 30 s left': the rate so far, known from the first batch."""
    if not total:
        return f"Frame {done}" if done else "Preparing the first frames…"
    if done <= 0:
        return f"Preparing the first of {total} frames…"
    percent = int(100 * done / total)
    left_s = elapsed_s / done * (total - done)
    if done >= total:
        return f"Frame {done} of {total} (100%), finishing the file…"
    return f"Frame {done} of {total} ({percent}%), about {duration_text(left_s)} left"


# --- reading back and measuring --------------------------------------------------------------------


def read_frame_count(path) -> int:
    """Number of frames in an exported MP4/WebM, GIF or PNG folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return len([name for name in os.listdir(path) if name.startswith("frame_") and name.endswith(".png")])
    if not os.path.isfile(path):
        raise ExportError(f"'{path}' does not exist.")
    if path.lower().endswith(".gif"):
        from PIL import Image

        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    import imageio_ffmpeg

    return int(imageio_ffmpeg.count_frames_and_secs(path)[0])


def seam_error(frames) -> dict:
    """How visible the loop seam is, in pixel space (values 0-255).

    seam: mean |last frame - first frame|, the jump the viewer sees when the loop wraps.
    median_step: median of mean |frame i+1 - frame i| over the loop.
    ratio: seam / median_step; about 1 means the wrap looks like any other step, much more is a cut.
    """
    frames = [np.asarray(frame, np.float32) for frame in frames]
    if len(frames) < 2:
        raise ValueError(f"A seam needs at least 2 frames; got {len(frames)}.")
    steps = [np.abs(after - before).mean() for before, after in zip(frames[:-1], frames[1:])]
    seam = float(np.abs(frames[0] - frames[-1]).mean())
    median_step = float(np.median(steps))
    return {"seam": seam, "median_step": median_step, "ratio": seam / max(median_step, 1e-12)}
