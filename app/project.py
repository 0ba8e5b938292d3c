"""Aeolus project files (.aeolus): everything needed to reopen a cinemagraph where it was left.

A project file is a zip holding:

    project.json     format version, name, slider state, brush settings, view state, other settings
    photo.png        the full-size photo (uint8 RGB, lossless)
    motion.npz       the base motion (spectrum, num_frames, fps), when there is one, at its own grid
                     (the studio keeps a predicted or extracted motion at the size it came in)
    brush_mask.npy   the motion-brush mask (float32 (h, w) in [0, 1]), when there is one
    freeze_mask.npy  the freeze mask (float32 (h, w) in [0, 1]), when there is one
    flow_mask.npy    the flow layer's fluid mask (float32 (h, w) in [0, 1]), when it has one

The flow layer's hints (arrows, anchors, speed, loop; app/core/flow_field.py) are in project.json
under "flow" (format 2). Format 1 files (no flow layer) are still read. "view" holds the view
state (X-t scanline row, overlay, playing); readers that do not know it ignore it. Every member
but the PNG photo is deflated (masks are mostly zeros, a still motion all zeros): the 512x288
example with its motion is about 2.5 MB.

save_project writes atomically (app.atomic); load_project raises ProjectError with one sentence for
anything it cannot read, checking every part's size (and the photo's pixel count, from its header)
before reading it and every value after; member names are never used as file paths. No Qt here.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from app.atomic import atomic_write
from app.core.flow_field import FlowHintError, FlowHints, hints_from_dict, hints_to_dict
from app.core.procedural import BrushSettings
from app.core.spectral import MAX_BANDS, Motion, MotionFileError, read_motion_npz
from app.data.images import MAX_DECODED_PIXELS

FORMAT_VERSION = 2  # 2: the flow layer
PROJECT_SUFFIX = ".aeolus"
MANIFEST = "project.json"
PHOTO = "photo.png"
MOTION = "motion.npz"
BRUSH_MASK = "brush_mask.npy"
FREEZE_MASK = "freeze_mask.npy"
FLOW_MASK = "flow_mask.npy"
MAX_PART_BYTES = 1 << 30  # no part of a real project is larger than 1 GiB uncompressed
MAX_GAIN = 100.0  # band gains and magnitude
MIN_SLOWDOWN, MAX_SLOWDOWN = 0.01, 100.0


class ProjectError(ValueError):
    """A project file that cannot be read (one clear sentence)."""


@dataclass
class Project:
    """What a project file holds; arrays are compared exactly after a round trip."""

    image: np.ndarray                         # uint8 (H, W, 3), full size
    motion: Motion | None = None              # base motion on the preview grid
    brush_mask: np.ndarray | None = None      # float32 (h, w) in [0, 1]
    freeze_mask: np.ndarray | None = None     # float32 (h, w) in [0, 1]
    gains: np.ndarray | None = None           # float32 (K,) band gains
    magnitude: float = 1.0
    slowdown: float = 1.0
    brush: BrushSettings = field(default_factory=BrushSettings)
    name: str = ""
    settings: dict = field(default_factory=dict)  # anything else JSON-serializable
    flow: FlowHints | None = None             # the flow layer's hints (preview-grid pixels)
    view: dict = field(default_factory=dict)  # view state: xt_row (int), overlay (str), playing (bool)


# --- writing -----------------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    import cv2

    image = np.ascontiguousarray(image, dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", image[..., ::-1])  # RGB -> BGR for OpenCV
    if not ok:
        raise ValueError("Could not encode the photo as PNG.")
    return encoded.tobytes()


def _motion_bytes(motion: Motion) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, spectrum=motion.spectrum, num_frames=np.int64(motion.num_frames), fps=np.float64(motion.fps))
    return buffer.getvalue()


def _manifest(project: Project) -> dict:
    return {
        "format": FORMAT_VERSION,
        "name": project.name,
        "gains": None if project.gains is None else [float(g) for g in np.asarray(project.gains, np.float32)],
        "magnitude": float(project.magnitude),
        "slowdown": float(project.slowdown),
        "brush": asdict(project.brush),
        "settings": project.settings,
        "has_motion": project.motion is not None,
        "has_brush_mask": project.brush_mask is not None,
        "has_freeze_mask": project.freeze_mask is not None,
        "flow": None if project.flow is None else hints_to_dict(project.flow),
        "has_flow_mask": project.flow is not None and project.flow.mask is not None,
        "view": _view(project.view, "a project"),
    }


def save_project(path: str, project: Project) -> str:
    """Write the project to `path` atomically (a zip; see the module docstring)."""
    image = np.asarray(project.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"A project photo must be uint8 (H, W, 3); got {image.dtype} {image.shape}.")
    parts = {MANIFEST: json.dumps(_manifest(project), indent=2).encode("utf-8"), PHOTO: _png_bytes(image)}
    if project.motion is not None:
        parts[MOTION] = _motion_bytes(project.motion)
    if project.brush_mask is not None:
        parts[BRUSH_MASK] = _npy_bytes(np.asarray(project.brush_mask, np.float32))
    if project.freeze_mask is not None:
        parts[FREEZE_MASK] = _npy_bytes(np.asarray(project.freeze_mask, np.float32))
    if project.flow is not None and project.flow.mask is not None:
        parts[FLOW_MASK] = _npy_bytes(project.flow.mask)

    def write(file):
        with zipfile.ZipFile(file, "w") as archive:
            for name, data in parts.items():
                # the photo is PNG already: store it, deflate the rest
                stored = name == PHOTO
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)

    return atomic_write(str(path), write, suffix=PROJECT_SUFFIX)


# --- reading -----------------------------------------------------------------------------------


def _read_part(archive: zipfile.ZipFile, part: str, name: str, limit: int = MAX_PART_BYTES) -> bytes:
    """A member's bytes (never used as a file path), after checking its declared size."""
    try:
        info = archive.getinfo(part)
    except KeyError:
        raise ProjectError(f"Project '{name}' is missing its {part}.") from None
    if info.file_size > limit:
        raise ProjectError(f"Project '{name}' has a {part} of {info.file_size:,} bytes; the limit is {limit:,}.")
    return archive.read(info)


def _read_mask(archive, part: str, name: str) -> np.ndarray:
    try:
        mask = np.load(io.BytesIO(_read_part(archive, part, name)), allow_pickle=False)
    except ProjectError:
        raise
    except (ValueError, OSError, EOFError):
        raise ProjectError(f"Project '{name}' has an unreadable {part}.") from None
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.floating) or min(mask.shape) < 1:
        raise ProjectError(f"Project '{name}' has a {part} of shape {mask.shape} and type {mask.dtype}; "
                           "expected a float (H, W) mask.")
    mask = mask.astype(np.float32, copy=False)
    if not np.all(np.isfinite(mask)):
        raise ProjectError(f"Project '{name}' has a {part} with non-finite values.")
    return np.clip(mask, 0.0, 1.0)


def _read_motion(archive, name: str) -> Motion:
    data = _read_part(archive, MOTION, name)
    try:
        return read_motion_npz(io.BytesIO(data), MOTION)
    except MotionFileError as error:
        raise ProjectError(f"Project '{name}' has an unusable motion: {error}") from None


def _read_photo(archive, name: str) -> np.ndarray:
    """The photo, its size checked from the PNG header before decoding."""
    import cv2

    data = _read_part(archive, PHOTO, name)
    width, height = _png_size(data)
    if width < 1 or height < 1:
        raise ProjectError(f"Project '{name}' has an unreadable photo.")
    if width * height > MAX_DECODED_PIXELS:
        raise ProjectError(f"Project '{name}' has a photo of {width}x{height} pixels; the limit is "
                           f"{MAX_DECODED_PIXELS // 1_000_000} megapixels.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise ProjectError(f"Project '{name}' has an unreadable photo.")
    return np.ascontiguousarray(image[..., ::-1])  # BGR -> RGB


def _read_flow(archive, manifest: dict, name: str) -> FlowHints | None:
    """The flow layer's hints (format 2), or None."""
    values = manifest.get("flow")
    if values is None:
        return None
    if not isinstance(values, dict):
        raise ProjectError(f"Project '{name}' has an unreadable flow layer.")
    mask = _read_mask(archive, FLOW_MASK, name) if manifest.get("has_flow_mask") else None
    try:
        return hints_from_dict(values, mask)
    except FlowHintError as error:
        raise ProjectError(f"Project '{name}' has an unreadable flow layer ({error}).") from None


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; (0, 0) when it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _number(manifest: dict, key: str, default: float, low: float, high: float, name: str) -> float:
    """A finite number in [low, high] from the manifest."""
    value = manifest.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise ProjectError(f"Project '{name}' has an invalid {key} ({value!r}).")
    return float(value)


def _gains(manifest: dict, name: str) -> np.ndarray | None:
    gains = manifest.get("gains")
    if gains is None:
        return None
    if (not isinstance(gains, list) or not 1 <= len(gains) <= MAX_BANDS
            or not all(isinstance(g, (int, float)) and not isinstance(g, bool) and 0 <= g <= MAX_GAIN
                       for g in gains)):
        raise ProjectError(f"Project '{name}' has invalid band gains.")
    return np.asarray(gains, np.float32)


VIEW_KEYS = {"xt_row": int, "overlay": str, "playing": bool}


def _view(values, name: str) -> dict:
    """The known view-state keys with values of the right type; anything else is dropped."""
    if not isinstance(values, dict):
        return {}
    view = {}
    for key, kind in VIEW_KEYS.items():
        value = values.get(key)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            view[key] = value
    return view


def _brush_settings(values, name: str) -> BrushSettings:
    if not isinstance(values, dict):
        raise ProjectError(f"Project '{name}' has invalid brush settings.")
    known = {item.name for item in fields(BrushSettings)}
    try:
        settings = BrushSettings(**{key: value for key, value in values.items() if key in known})
        settings.validate()
    except (TypeError, ValueError) as error:
        raise ProjectError(f"Project '{name}' has invalid brush settings ({str(error).rstrip('.')}).") from None
    return settings


def load_project(path: str) -> Project:
    """Read a project file; any problem raises ProjectError with one sentence."""
    name = os.path.basename(str(path))
    if not os.path.isfile(path):
        raise ProjectError(f"Project '{name}' does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                manifest = json.loads(_read_part(archive, MANIFEST, name).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ProjectError(f"Project '{name}' has an unreadable {MANIFEST}.") from None
            if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
                raise ProjectError(f"Project '{name}' has no format version in its {MANIFEST}.")
            version = manifest["format"]
            if version > FORMAT_VERSION:
                raise ProjectError(f"Project '{name}' was made by a newer Aeolus (format {version}); "
                                   f"this version reads up to {FORMAT_VERSION}.")
            image = _read_photo(archive, name)
            motion = _read_motion(archive, name) if manifest.get("has_motion") else None
            brush_mask = _read_mask(archive, BRUSH_MASK, name) if manifest.get("has_brush_mask") else None
            freeze_mask = _read_mask(archive, FREEZE_MASK, name) if manifest.get("has_freeze_mask") else None
            flow = _read_flow(archive, manifest, name)
            settings = manifest.get("settings") or {}
            if not isinstance(settings, dict) or not isinstance(manifest.get("name", ""), str):
                raise ProjectError(f"Project '{name}' has an invalid {MANIFEST}.")
            return Project(
                image=image, motion=motion, brush_mask=brush_mask, freeze_mask=freeze_mask,
                gains=_gains(manifest, name),
                magnitude=_number(manifest, "magnitude", 1.0, 0.0, MAX_GAIN, name),
                slowdown=_number(manifest, "slowdown", 1.0, MIN_SLOWDOWN, MAX_SLOWDOWN, name),
                brush=_brush_settings(manifest.get("brush") or {}, name),
                name=str(manifest.get("name", "")), settings=dict(settings), flow=flow,
                view=_view(manifest.get("view"), name),
            )
    except ProjectError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError, TypeError, AttributeError, KeyError) as error:
        # zipfile raises RuntimeError (encrypted), NotImplementedError (compression method) and
        # ValueError for crafted archives: all mean the same to a person
        raise ProjectError(f"Project '{name}' is truncated or not an Aeolus project ({error}).") from None
    except MemoryError:
        raise ProjectError(f"Project '{name}' is too large to open.") from None
