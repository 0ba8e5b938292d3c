"""Robust still-image loading and saving for the whole app.

This module owns turning any image file a user may hand us into one predictable thing: an RGB
uint8 array (H, W, 3), upright (EXIF orientation applied), opaque (transparency composited on
white), 8-bit, and no larger than `max_side` on its long side. Everything it did on the way is
reported as plain sentences in `LoadedImage.notes`.

A file that cannot be read raises `ImageLoadError` with one human sentence, never a Pillow or
OpenCV exception, and never a silently half-decoded picture: truncated files are an error.

Decoding uses Pillow. OpenCV is a fallback only for files Pillow does not recognise at all (and
whose first bytes do not claim a format Pillow fully supports, since such a file is corrupt).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

DEFAULT_MAX_SIDE = 4096

# The most pixels we agree to decode (after JPEG draft reduction), checked from the file's header
# before decoding: 150 MP is 450 MB as RGB (the largest medium-format cameras make 150 MP photos).
MAX_DECODED_PIXELS = 150_000_000
# Pixels converted to float at a time (alpha compositing, 16-bit): keeps the peak memory bounded.
CONVERSION_ROWS_PIXELS = 4_000_000

# Pillow refuses to open images with more than 2 x MAX_IMAGE_PIXELS pixels (about 179 MP by
# default) before we get a chance to shrink them. We check the decoded size ourselves above, so we
# raise Pillow's guard to our own limit: it then only stops absurd headers (over 600 MP).
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_DECODED_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_DECODED_PIXELS

# Transparent pixels are composited onto this colour (white, as image viewers show them).
BACKGROUND_RGB = (1.0, 1.0, 1.0)
BACKGROUND_NAME = "white"

# File signatures of formats Pillow always decodes: if Pillow cannot identify such a file, it is
# damaged, and we must not hand it to OpenCV (which might return a partly decoded picture).
_PILLOW_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)

# EXIF orientation tag value -> the Pillow transpose that makes the picture upright.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_WORDS = {
    2: "mirrored left to right",
    3: "rotated 180 degrees",
    4: "flipped upside down",
    5: "transposed",
    6: "rotated 90 degrees clockwise",
    7: "transversed",
    8: "rotated 90 degrees counter-clockwise",
}

_SIXTEEN_BIT_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageLoadError(ValueError):
    """An image file could not be read; the message is one sentence for a person."""


@dataclass
class LoadedImage:
    """A decoded image and what was done to it."""

    pixels: np.ndarray  # (H, W, 3) uint8 RGB, upright, opaque
    notes: list[str] = field(default_factory=list)  # sentences for a person, in the order done
    source_size: tuple[int, int] = (0, 0)  # (W, H) of the upright picture before downscaling


# --- loading -------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Read any image file as upright, opaque RGB uint8 with its long side <= max_side.

    max_side=None keeps the full size. Raises ImageLoadError for a file that cannot be read.
    """
    if max_side is not None and (int(max_side) != max_side or max_side < 1):
        raise ValueError(f"max_side must be a positive integer or None, not {max_side!r}.")
    path = Path(path)
    _check_is_readable_file(path)
    notes: list[str] = []
    try:
        array, source_size = _decode(path, max_side, notes)  # (H, W[, C]) in its own dtype
        pixels = _to_rgb8(array, notes)  # (H, W, 3) uint8
    except ImageLoadError:
        raise
    except MemoryError:
        raise _error(path, "there is not enough memory to load it") from None
    except Exception:  # a decoder failed in some way we did not foresee: the file is damaged
        raise _error(path, "the file is truncated or corrupt") from None
    pixels = _fit_long_side(pixels, source_size, max_side, notes)
    return LoadedImage(pixels=pixels, notes=notes, source_size=source_size)


def _error(path: Path, reason: str) -> ImageLoadError:
    return ImageLoadError(f"Could not read '{path}': {reason}.")


def _check_is_readable_file(path: Path) -> None:
    """Turn the common file-system problems into clear sentences before decoding."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise _error(path, "the file does not exist") from None
    except (OSError, ValueError) as problem:  # e.g. no permission on a parent folder
        reason = getattr(problem, "strerror", None) or str(problem)
        raise _error(path, f"it cannot be accessed ({reason})") from None
    if path.is_dir():
        raise _error(path, "it is a folder, not a file")
    if not path.is_file():
        raise _error(path, "it is not a regular file")
    if status.st_size == 0:
        raise _error(path, "the file is empty")
    if not os.access(path, os.R_OK):
        raise _error(path, "permission denied")


def _decode(path: Path, max_side: int | None, notes: list[str]) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode with Pillow, or with OpenCV for files Pillow does not recognise.

    Returns the array (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) (RGB order, alpha last, any
    dtype) and the upright source size (W, H).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        return _decode_with_opencv(path)
    except Image.DecompressionBombError:
        raise _error(path, "it has too many pixels to open safely") from None
    except PermissionError:
        raise _error(path, "permission denied") from None
    except FileNotFoundError:
        raise _error(path, "the file does not exist") from None
    with image:
        return _decode_with_pillow(path, image, max_side, notes)


def _decode_with_pillow(
    path: Path, image: Image.Image, max_side: int | None, notes: list[str]
) -> tuple[np.ndarray, tuple[int, int]]:
    # Things known only before decoding: how the file stores its pixels, and its full size.
    is_sixteen_bit_colour = image.mode in ("RGB", "RGBA") and ";16" in _raw_mode(image)
    stored_width, stored_height = image.size
    if getattr(image, "is_animated", False):
        notes.append("Used the first frame of an animated image.")

    # A JPEG can be decoded directly at 1/2, 1/4 or 1/8 size: cheap, and it keeps huge photos
    # within memory. The exact size is reached later with an area resize.
    if image.format == "JPEG" and max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image.draft(None, (int(np.ceil(stored_width * scale)), int(np.ceil(stored_height * scale))))
    if image.size[0] * image.size[1] > MAX_DECODED_PIXELS:
        raise _error(
            path,
            f"it is too large ({stored_width}x{stored_height} pixels; "
            f"the limit is {MAX_DECODED_PIXELS // 1_000_000} megapixels)",
        )
    _load_fully(image)  # before anything else may load it leniently (PNG getexif() does)

    orientation = _exif_orientation(image)
    if orientation in (5, 6, 7, 8):  # these orientations swap width and height
        source_size = (stored_height, stored_width)
    else:
        source_size = (stored_width, stored_height)
    if orientation in _ORIENTATION_TRANSPOSE:
        image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
        notes.append(f"Turned upright from its EXIF orientation ({_ORIENTATION_WORDS[orientation]}).")
    if is_sixteen_bit_colour:
        notes.append("Converted from 16-bit to 8-bit.")  # Pillow keeps the high byte of each value
    return _pillow_to_array(path, image, notes), source_size


def _load_fully(image: Image.Image) -> None:
    """Decode every pixel; a truncated file raises OSError instead of coming back half grey."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        image.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), or 1 when absent or unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF data
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # broken EXIF must not stop the picture from loading
        return 1
    return orientation if orientation in range(1, 9) else 1


def _raw_mode(image: Image.Image) -> str:
    """How the file stores its pixels, e.g. 'RGB;16B' (only known before load())."""
    if not image.tile:
        return ""
    args = image.tile[0].args
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def _pillow_to_array(path: Path, image: Image.Image, notes: list[str]) -> np.ndarray:
    """A loaded Pillow image as (H, W[, C]) with RGB order and alpha last."""
    mode = image.mode
    if mode in ("1", "L", "P", "RGB") and image.has_transparency_data:
        return np.asarray(image.convert("RGBA"))  # palette or colour-key transparency
    if mode in ("RGB", "RGBA", "L", "LA"):
        return np.asarray(image)
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode == "P":
        return np.asarray(image.convert("RGB"))
    if mode in ("PA", "RGBa", "RGBX"):
        return np.asarray(image.convert("RGBA" if mode != "RGBX" else "RGB"))
    if mode == "La":
        return np.asarray(image.convert("LA"))
    if mode == "CMYK":
        notes.append("Converted from CMYK to RGB.")
        return np.asarray(image.convert("RGB"))
    if mode in _SIXTEEN_BIT_GRAY_MODES:
        notes.append("Converted from 16-bit to 8-bit.")
        return np.asarray(image).astype(np.uint16)  # native byte order
    if mode == "I":
        return np.asarray(image)  # int32; its range is worked out in _to_unit_float
    if mode == "F":
        notes.append("Converted from 32-bit floating point to 8-bit.")
        return np.asarray(image)
    try:  # YCbCr, HSV, LAB and other rare colour modes
        return np.asarray(image.convert("RGB"))
    except ValueError:
        raise _error(path, f"its colour mode ({mode}) is not supported") from None


def _decode_with_opencv(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode a file Pillow does not recognise (e.g. some TIFF variants) with OpenCV."""
    with open(path, "rb") as file:
        head = file.read(16)
    if head.startswith(_PILLOW_SIGNATURES):
        raise _error(path, "the file is truncated or corrupt")
    encoded = np.fromfile(path, dtype=np.uint8)  # np.fromfile copes with non-ASCII paths
    array = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise _error(path, "it is not an image file")
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[:, :, ::-1]  # BGR -> RGB
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    height, width = array.shape[:2]
    return np.ascontiguousarray(array), (width, height)


# --- conversion to RGB uint8 ---------------------------------------------------------------------


def _to_rgb8(array: np.ndarray, notes: list[str]) -> np.ndarray:
    """(H, W[, C]) in any dtype, alpha last -> (H, W, 3) uint8 RGB composited on the background.

    8- and 16-bit pictures (a fixed value range) are converted in bands of rows, so a huge one never
    needs several float copies of itself at once."""
    huge = array.ndim == 3 and array.shape[0] * array.shape[1] > CONVERSION_ROWS_PIXELS
    if huge and array.dtype in (np.uint8, np.uint16):
        rows = max(1, CONVERSION_ROWS_PIXELS // array.shape[1])
        band_notes: list[str] = []
        bands = [_to_rgb8_whole(array[top:top + rows], band_notes) for top in range(0, array.shape[0], rows)]
        notes.extend(dict.fromkeys(band_notes))  # each note once, in order
        return np.concatenate(bands, axis=0)
    return _to_rgb8_whole(array, notes)


def _to_rgb8_whole(array: np.ndarray, notes: list[str]) -> np.ndarray:
    """_to_rgb8 in one piece."""
    if array.ndim == 2:
        array = array[:, :, None]  # (H, W, 1)
    channels = array.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"Unexpected number of channels: {channels}.")
    has_alpha = channels in (2, 4)
    if has_alpha and array.dtype == np.uint8 and array[:, :, -1].min() == 255:
        has_alpha = False  # an alpha channel that is opaque everywhere changes nothing
        array = array[:, :, :-1]
    colour = array[:, :, :-1] if has_alpha else array  # (H, W, 1 or 3)
    if colour.shape[2] == 1:
        notes.append("Converted from grayscale to RGB.")

    if array.dtype == np.uint8 and not has_alpha:  # the common case: nothing to compute
        return np.ascontiguousarray(np.broadcast_to(colour, colour.shape[:2] + (3,)))

    colour = _to_unit_float(colour, notes)  # (H, W, 1 or 3) float32 in [0, 1]
    if has_alpha:
        alpha = _to_unit_float(array[:, :, -1:], notes)  # (H, W, 1)
        if alpha.min() < 1.0:
            background = np.asarray(BACKGROUND_RGB, dtype=np.float32)  # (3,)
            colour = colour * alpha + background * (1.0 - alpha)  # (H, W, 3)
            notes.append(f"Transparent areas were composited on {BACKGROUND_NAME}.")
    colour = np.broadcast_to(colour, colour.shape[:2] + (3,))
    return np.rint(colour * 255.0).astype(np.uint8)


def _to_unit_float(values: np.ndarray, notes: list[str]) -> np.ndarray:
    """Any integer or float pixel values -> float32 in [0, 1], by the range their type implies."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    if values.dtype == np.uint16:
        return values.astype(np.float32) / 65535.0
    values = values.astype(np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return values  # floating-point data already in [0, 1]
    is_integer_data = bool(np.all(values == np.round(values)))
    if is_integer_data and low >= 0.0 and high <= 255.0:
        return values / 255.0
    if is_integer_data and low >= 0.0 and high <= 65535.0:
        notes.append("Converted from 16-bit to 8-bit.")
        return values / 65535.0
    notes.append(f"Stretched pixel values from {low:g}..{high:g} to the full 8-bit range.")
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


# --- resizing and float conversion ---------------------------------------------------------------


def _fit_long_side(
    pixels: np.ndarray, source_size: tuple[int, int], max_side: int | None, notes: list[str]
) -> np.ndarray:
    """Shrink (H, W, 3) so its long side is max_side; the target comes from the source size."""
    source_width, source_height = source_size
    if max_side is None or max(source_width, source_height) <= max_side:
        return pixels  # JPEG drafting only happens when shrinking, so this is full size
    scale = max_side / max(source_width, source_height)
    width = max(1, min(max_side, round(source_width * scale)))
    height = max(1, min(max_side, round(source_height * scale)))
    notes.append(
        f"Downscaled from {source_width}x{source_height} to {width}x{height} "
        f"to fit {max_side} pixels."
    )
    return resize_image(pixels, (width, height))


def resize_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, C) to size=(width, height): area averaging to shrink, cubic to enlarge."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"resize_image expects uint8 pixels, not {pixels.dtype}.")
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        raise ValueError(f"Cannot resize to {width}x{height}.")
    if (width, height) == (pixels.shape[1], pixels.shape[0]):
        return pixels.copy()
    shrinking = width <= pixels.shape[1] and height <= pixels.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    resized = cv2.resize(np.ascontiguousarray(pixels), (width, height), interpolation=interpolation)
    if pixels.ndim == 3 and resized.ndim == 2:  # OpenCV drops a single channel axis
        resized = resized[:, :, None]
    return resized


def image_to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W, 3) in [0, 1]."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"image_to_float expects uint8 pixels, not {pixels.dtype}.")
    return pixels.astype(np.float32) / np.float32(255.0)


# --- saving --------------------------------------------------------------------------------------


def save_image(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write uint8 (H, W, 3) RGB (or (H, W) gray, (H, W, 4) RGBA) atomically.

    The picture is written to a temporary file in the same folder and then moved over `path`,
    so a reader never sees a half-written file. The format follows the file extension.
    """
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (
        pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))
    ):
        raise ValueError(
            f"save_image expects uint8 (H, W, 3), (H, W, 4) or (H, W) pixels, "
            f"not {pixels.dtype} {pixels.shape}."
        )
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"Cannot save '{path}': unknown image file extension '{path.suffix}'.")
    image = Image.fromarray(np.ascontiguousarray(pixels))
    options = {"quality": 95} if image_format == "JPEG" else {}
    if image_format == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")  # JPEG has no alpha channel

    from app.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda file: image.save(file, format=image_format, **options), suffix=path.suffix)
