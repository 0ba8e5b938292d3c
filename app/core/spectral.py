"""The Motion type: a spectral volume and the functions that move between it and displacements.

Convention (numpy's unnormalized forward FFT over time):
    S = rfft(F, axis=time)[:K]          F: motion texture, (T, 2, H, W) float, pixels, x then y
    F = irfft(pad(S, T // 2 + 1), n=T)  S: spectrum, (K, 2, H, W) complex64

Displacements are in pixels of the H x W grid the spectrum lives on. F_t(p) moves the start-frame
pixel p to p + F_t(p) at frame t. Every edit is a cheap function Motion -> Motion.

Frame 0 is the photo: F_0 = 0 holds by construction. For K bands of a T-frame loop,
F_0 = (S_0 + sum_{k>=1} w_k Re S_k) / T with w_k = 2 (1 for a Nyquist band), so every Motion
derives its DC band from the others (anchor_first_frame): no model, brush or edit can move frame 0.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, replace

import numpy as np

DEFAULT_NUM_FRAMES = 150
DEFAULT_FPS = 30.0
DEFAULT_NUM_BANDS = 16

# What a real motion never exceeds: files and projects are checked against these before reading data.
MAX_BANDS = 128
MAX_FRAMES = 3600  # two minutes at 30 fps
MIN_FPS, MAX_FPS = 1.0, 240.0
MAX_SPECTRUM_VALUES = 16 * 2 * 2048 * 2048  # K * 2 * H * W: 1 GiB of complex64
MAX_DISPLACEMENT_PX = 10_000.0  # |S_k| <= T * this (a band moving pixels further than this is no motion)


class MotionFileError(ValueError):
    """A motion file that cannot be read or is not a valid spectral volume (one clear sentence)."""


@dataclass(frozen=True)
class Motion:
    """Spectral volume of per-pixel trajectories.

    spectrum: complex64 (K, 2, H, W), x then y, band k at frequency k * fps / num_frames Hz.
    num_frames: T, the length of the loop in frames.
    fps: frames per second of the loop.
    """

    spectrum: np.ndarray
    num_frames: int = DEFAULT_NUM_FRAMES
    fps: float = DEFAULT_FPS

    def __post_init__(self):
        spectrum = np.asarray(self.spectrum)
        if spectrum.ndim != 4 or spectrum.shape[1] != 2:
            raise ValueError(f"A spectrum must have shape (K, 2, H, W); got {spectrum.shape}.")
        if int(self.num_frames) < 2:
            raise ValueError(f"A motion needs at least 2 frames; got {self.num_frames}.")
        if spectrum.shape[0] > int(self.num_frames) // 2 + 1:
            raise ValueError(
                f"{spectrum.shape[0]} bands do not fit {self.num_frames} frames "
                f"(at most {int(self.num_frames) // 2 + 1})."
            )
        if not MIN_FPS <= float(self.fps) <= MAX_FPS:
            raise ValueError(f"fps must be between {MIN_FPS:g} and {MAX_FPS:g}; got {self.fps}.")
        if int(self.num_frames) > MAX_FRAMES:
            raise ValueError(f"A motion has at most {MAX_FRAMES} frames; got {self.num_frames}.")
        object.__setattr__(self, "spectrum", anchor_first_frame(spectrum, int(self.num_frames)))
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def num_bands(self) -> int:
        return self.spectrum.shape[0]

    @property
    def height(self) -> int:
        return self.spectrum.shape[2]

    @property
    def width(self) -> int:
        return self.spectrum.shape[3]

    @property
    def frequencies_hz(self) -> np.ndarray:
        """(K,) frequency of each band in Hz."""
        return band_frequencies(self.num_bands, self.num_frames, self.fps)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


def anchor_first_frame(spectrum: np.ndarray, num_frames: int) -> np.ndarray:
    """complex64 copy of a (K, 2, H, W) spectrum whose DC band makes F_0 = 0 exactly.

    S_0 = -sum_{k>=1} w_k Re S_k (real): irfft then gives F_0 = 0, and no other frame changes
    except by the constant the old DC band added to every frame (a drift that is not motion).
    """
    anchored = np.array(spectrum, dtype=np.complex64, copy=True)
    weights = np.full(anchored.shape[0], 2.0, np.float32)
    if num_frames % 2 == 0 and anchored.shape[0] == num_frames // 2 + 1:
        weights[-1] = 1.0  # the Nyquist band counts once
    weights[0] = 0.0
    anchored[0] = -np.tensordot(weights, anchored.real, axes=(0, 0))
    return anchored


def band_frequencies(num_bands: int, num_frames: int, fps: float) -> np.ndarray:
    """(K,) frequency in Hz of each rfft band: k * fps / T."""
    return np.arange(num_bands, dtype=np.float64) * fps / num_frames


def zero_motion(height: int, width: int, num_bands: int = DEFAULT_NUM_BANDS,
                num_frames: int = DEFAULT_NUM_FRAMES, fps: float = DEFAULT_FPS) -> Motion:
    """A motion that moves nothing."""
    return Motion(np.zeros((num_bands, 2, height, width), np.complex64), num_frames, fps)


# --- between spectrum and motion texture -------------------------------------------------------


def motion_from_texture(motion_texture: np.ndarray, num_bands: int = DEFAULT_NUM_BANDS,
                        fps: float = DEFAULT_FPS) -> Motion:
    """Spectral volume of a motion texture (T, 2, H, W), keeping the K lowest bands."""
    motion_texture = np.asarray(motion_texture, dtype=np.float32)
    if motion_texture.ndim != 4 or motion_texture.shape[1] != 2:
        raise ValueError(f"A motion texture must have shape (T, 2, H, W); got {motion_texture.shape}.")
    num_frames = motion_texture.shape[0]
    spectrum = np.fft.rfft(motion_texture, axis=0)[:num_bands]  # (K, 2, H, W)
    return Motion(spectrum.astype(np.complex64), num_frames, fps)


def motion_to_texture(motion: Motion) -> np.ndarray:
    """All T displacement fields of a motion: float32 (T, 2, H, W)."""
    full = np.zeros((motion.num_frames // 2 + 1,) + motion.spectrum.shape[1:], np.complex64)
    full[: motion.num_bands] = motion.spectrum
    return np.fft.irfft(full, n=motion.num_frames, axis=0).astype(np.float32)


def band_factors(num_bands: int, num_frames: int, t: float) -> np.ndarray:
    """(K,) complex weights w_k so that F(t) = sum_k Re(w_k * S_k) matches irfft at integer t.

    irfft counts the DC term (and a Nyquist term, for even T) once and every other band twice,
    scaled by 1/T. Fractional t evaluates the same band-limited Fourier series between frames.
    """
    k = np.arange(num_bands)
    weights = np.where(k == 0, 1.0, 2.0) / num_frames
    if num_frames % 2 == 0 and num_bands == num_frames // 2 + 1:
        weights[-1] = 1.0 / num_frames
    return (weights * np.exp(2j * np.pi * k * t / num_frames)).astype(np.complex64)


def displacement_at(motion: Motion, t: float, slowdown: float = 1.0) -> np.ndarray:
    """Displacement field float32 (2, H, W) at frame t (may be fractional), without all T frames.

    slowdown s > 1 plays the loop s times slower: the series is evaluated at t / s.
    """
    factors = band_factors(motion.num_bands, motion.num_frames, t / slowdown)  # (K,)
    field = np.tensordot(factors, motion.spectrum, axes=(0, 0))  # (2, H, W) complex
    return field.real.astype(np.float32)


# --- edits: Motion -> Motion ---------------------------------------------------------------------


def scale_bands(motion: Motion, gains) -> Motion:
    """Multiply band k by gains[k] (a K-vector of real or complex gains)."""
    gains = np.asarray(gains)
    if gains.shape != (motion.num_bands,):
        raise ValueError(f"Expected {motion.num_bands} band gains; got shape {gains.shape}.")
    return replace(motion, spectrum=motion.spectrum * gains.astype(np.complex64)[:, None, None, None])


def magnify(motion: Motion, factor: float) -> Motion:
    """Scale every displacement by factor (>1 magnifies, <1 minifies)."""
    return replace(motion, spectrum=motion.spectrum * np.float32(factor))


def resize_motion(motion: Motion, height: int, width: int) -> Motion:
    """Resample the spectrum to height x width; displacements scale with the grid.

    The 4K real planes (real and imaginary parts of every band and axis) are made contiguous in one
    copy and resized one by one: OpenCV is fastest on contiguous single-channel float planes (a
    plane sliced out of an (H, W, 4K) stack, or one multi-channel call, is several times slower)."""
    import cv2

    if (height, width) == (motion.height, motion.width):
        return motion
    shrinking = height * width < motion.height * motion.width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    pairs = motion.spectrum.view(np.float32).reshape(-1, motion.height, motion.width, 2)  # (2K, H, W, re/im)
    planes = np.ascontiguousarray(pairs.transpose(0, 3, 1, 2))  # (2K, 2, H, W)
    resized = np.empty(planes.shape[:2] + (height, width), np.float32)  # (2K, 2, h, w)
    for index in np.ndindex(*planes.shape[:2]):
        resized[index] = cv2.resize(planes[index], (width, height), interpolation=interpolation)
    spectrum = np.ascontiguousarray(resized.transpose(0, 2, 3, 1)).view(np.complex64)  # (2K, h, w, 1)
    spectrum = spectrum.reshape(motion.num_bands, 2, height, width)
    scale = np.array([width / motion.width, height / motion.height], np.float32)[None, :, None, None]
    return replace(motion, spectrum=spectrum * scale)


def crop_motion(motion: Motion, top: int, left: int, height: int, width: int) -> Motion:
    """Cut out a window; displacements keep their pixel units."""
    if top < 0 or left < 0 or top + height > motion.height or left + width > motion.width:
        raise ValueError(
            f"Crop ({top}, {left}, {height}x{width}) does not fit a {motion.height}x{motion.width} motion.")
    return replace(motion, spectrum=motion.spectrum[:, :, top:top + height, left:left + width].copy())


def flip_horizontal(motion: Motion) -> Motion:
    """Mirror left-right: the grid flips and the x displacement changes sign."""
    spectrum = motion.spectrum[:, :, :, ::-1].copy()
    spectrum[:, 0] *= -1
    return replace(motion, spectrum=spectrum)


def flip_vertical(motion: Motion) -> Motion:
    """Mirror top-bottom: the grid flips and the y displacement changes sign."""
    spectrum = motion.spectrum[:, :, ::-1, :].copy()
    spectrum[:, 1] *= -1
    return replace(motion, spectrum=spectrum)


def mask_motion(motion: Motion, mask: np.ndarray) -> Motion:
    """Multiply the motion by a soft (H, W) mask in [0, 1]; 0 freezes a pixel."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != (motion.height, motion.width):
        raise ValueError(f"Mask shape {mask.shape} does not match the motion {motion.height}x{motion.width}.")
    return replace(motion, spectrum=motion.spectrum * mask[None, None])


def mean_amplitude(motion: Motion) -> np.ndarray:
    """(K,) mean |S_k| over pixels and both axes: the amplitude spectrum drawn beside band sliders."""
    return np.abs(motion.spectrum).mean(axis=(1, 2, 3))


# --- files -------------------------------------------------------------------------------------


def check_motion_values(motion: Motion, what: str = "The motion") -> None:
    """ValueError with one sentence when a motion holds NaN, infinite or absurdly large values."""
    spectrum = motion.spectrum
    if not np.all(np.isfinite(spectrum)):
        raise ValueError(f"{what} contains non-finite values (NaN or infinity).")
    largest = float(np.abs(spectrum).max()) if spectrum.size else 0.0
    if largest > motion.num_frames * MAX_DISPLACEMENT_PX:
        raise ValueError(f"{what} moves pixels further than {MAX_DISPLACEMENT_PX:g} pixels.")


def save_motion(path: str, motion: Motion) -> None:
    """Write a .npz (spectrum, num_frames, fps) atomically: temp file in the same folder, then rename.
    A motion with non-finite or absurd values is refused (ValueError) before anything is written."""
    from app.atomic import atomic_write

    check_motion_values(motion)
    atomic_write(path, lambda file: np.savez(file, spectrum=motion.spectrum, num_frames=np.int64(motion.num_frames),
                                             fps=np.float64(motion.fps)), suffix=".npz")


def _member_header(archive: zipfile.ZipFile, member: str, name: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of an .npy member of an .npz, read from its header only."""
    with archive.open(member) as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise MotionFileError(f"Motion file '{name}' has an unknown array format.")
    return shape, dtype


def read_motion_npz(source, name: str) -> Motion:
    """A Motion from an .npz (a path or a binary file), checked header first: shapes, sizes and
    timing against the limits above before any data is read, then the values. MotionFileError
    with one sentence for anything wrong."""
    try:
        with zipfile.ZipFile(source) as archive:
            members = {member[:-4]: member for member in archive.namelist() if member.endswith(".npy")}
            missing = {"spectrum", "num_frames", "fps"} - set(members)
            if missing:
                raise MotionFileError(f"Motion file '{name}' lacks {', '.join(sorted(missing))}.")
            shape, dtype = _member_header(archive, members["spectrum"], name)
            for scalar in ("num_frames", "fps"):
                scalar_shape, scalar_dtype = _member_header(archive, members[scalar], name)
                if int(np.prod(scalar_shape)) != 1 or scalar_dtype.kind not in "iuf":
                    raise MotionFileError(f"Motion file '{name}' has an invalid {scalar}.")
            _check_spectrum_header(shape, dtype, name)
            for scalar in ("num_frames", "fps"):
                if archive.getinfo(members[scalar]).file_size > 4096:
                    raise MotionFileError(f"Motion file '{name}' has an invalid {scalar}.")
            num_frames_value = np.load(archive.open(members["num_frames"]), allow_pickle=False).reshape(-1)[0]
            fps = float(np.load(archive.open(members["fps"]), allow_pickle=False).reshape(-1)[0])
            if not (np.isfinite(num_frames_value) and float(num_frames_value) == int(num_frames_value)):
                raise MotionFileError(f"Motion file '{name}' has an invalid frame count ({num_frames_value}).")
            num_frames = int(num_frames_value)
            _check_timing(shape[0], num_frames, fps, name)
            spectrum = np.load(archive.open(members["spectrum"]), allow_pickle=False)
    except MotionFileError:
        raise
    except MemoryError:
        raise MotionFileError(f"Motion file '{name}' is too large to load.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, TypeError,
            OverflowError, RuntimeError) as error:
        raise MotionFileError(f"Motion file '{name}' is truncated or not a motion file ({error}).") from None
    if spectrum.shape != tuple(shape):
        raise MotionFileError(f"Motion file '{name}' is truncated or not a motion file.")
    motion = Motion(spectrum, num_frames, fps)
    try:
        check_motion_values(motion, f"Motion file '{name}'")
    except ValueError as error:
        raise MotionFileError(str(error)) from None
    return motion


def _check_spectrum_header(shape: tuple, dtype: np.dtype, name: str) -> None:
    if dtype.kind != "c" or len(shape) != 4 or shape[1] != 2:
        raise MotionFileError(
            f"Motion file '{name}' holds a spectrum of shape {tuple(shape)} and type {dtype}; "
            "expected complex (K, 2, H, W).")
    if min(shape) < 1:
        raise MotionFileError(f"Motion file '{name}' holds an empty spectrum {tuple(shape)}.")
    values = int(np.prod(shape, dtype=np.float64))
    if shape[0] > MAX_BANDS or values > MAX_SPECTRUM_VALUES:
        raise MotionFileError(
            f"Motion file '{name}' is too large ({shape[0]} bands of {shape[3]}x{shape[2]}; the limit is "
            f"{MAX_BANDS} bands and {MAX_SPECTRUM_VALUES:,} values, e.g. 16 bands of 2048x2048).")


def _check_timing(num_bands: int, num_frames: int, fps: float, name: str) -> None:
    if not (2 <= num_frames <= MAX_FRAMES and np.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS
            and num_bands <= num_frames // 2 + 1):
        raise MotionFileError(
            f"Motion file '{name}' has invalid timing ({num_bands} bands, {num_frames} frames, {fps:g} fps; "
            f"a motion has 2 to {MAX_FRAMES} frames at {MIN_FPS:g} to {MAX_FPS:g} fps).")


def load_motion(path: str) -> Motion:
    """Read and validate a motion .npz; any problem raises MotionFileError with one sentence."""
    name = os.path.basename(str(path))
    if not os.path.isfile(path):
        raise MotionFileError(f"Motion file '{name}' does not exist.")
    return read_motion_npz(path, name)
