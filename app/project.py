"""Aeolus project files (.aeolus): everything needed to reopen a cinemagraph where it was left.

A project file is a zip holding:

    project.json     format version, name, slider state, brush settings, other settings
    photo.png        the full-size photo (uint8 RGB, lossless)
    motion.npz       the base motion (spectrum, num_frames, fps), when there is one
    brush_mask.npy   the motion-brush mask (float32 (h, w) in [0, 1]), when there is one
    freeze_mask.npy  the freeze mask (float32 (h, w) in [0, 1]), when there is one
    flow_mask.npy    the flow layer's fluid mask (float32 (h, w) in [0, 1]), when it has one

The flow layer's hints (arrows, anchors, speed, loop; app/core/flow_field.py) are in project.json
under "flow" (format 2). Format 1 files (no flow layer) are still read.

save_project writes atomically (app.atomic); load_project raises ProjectError with one sentence for
anything it cannot read. No Qt here.
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
from app.core.spectral import Motion

FORMAT_VERSION = 2  # 2: the flow layer
PROJECT_SUFFIX = ".aeolus"
MANIFEST = "project.json"
PHOTO = "photo.png"
MOTION = "motion.npz"
BRUSH_MASK = "brush_mask.npy"
FREEZE_MASK = "freeze_mask.npy"
FLOW_MASK = "flow_mask.npy"


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
                # the photo is PNG already and a spectrum barely compresses: store those, deflate the rest
                stored = name in (PHOTO, MOTION)
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)

    return atomic_write(str(path), write, suffix=PROJECT_SUFFIX)


# --- reading -----------------------------------------------------------------------------------


def _read_part(archive: zipfile.ZipFile, part: str, name: str) -> bytes:
    try:
        return archive.read(part)
    except KeyError:
        raise ProjectError(f"Project '{name}' is missing its {part}.") from None


def _read_mask(archive, part: str, name: str) -> np.ndarray:
    try:
        mask = np.load(io.BytesIO(_read_part(archive, part, name)), allow_pickle=False)
    except ProjectError:
        raise
    except (ValueError, OSError, EOFError) as error:
        raise ProjectError(f"Project '{name}' has an unreadable {part} ({error}).") from None
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.floating):
        raise ProjectError(f"Project '{name}' has a {part} of shape {mask.shape} and type {mask.dtype}; "
                           "expected a float (H, W) mask.")
    return mask.astype(np.float32, copy=False)


def _read_motion(archive, name: str) -> Motion:
    try:
        with np.load(io.BytesIO(_read_part(archive, MOTION, name)), allow_pickle=False) as data:
            return Motion(data["spectrum"], int(data["num_frames"]), float(data["fps"]))
    except ProjectError:
        raise
    except (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ProjectError(f"Project '{name}' has an unreadable motion ({error}).") from None


def _read_photo(archive, name: str) -> np.ndarray:
    import cv2

    data = np.frombuffer(_read_part(archive, PHOTO, name), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
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


def _brush_settings(values: dict, name: str) -> BrushSettings:
    known = {item.name for item in fields(BrushSettings)}
    try:
        return BrushSettings(**{key: value for key, value in values.items() if key in known})
    except TypeError as error:
        raise ProjectError(f"Project '{name}' has invalid brush settings ({error}).") from None


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
                raise ProjectError(f"This project was made by a newer Aeolus (format {version}); "
                                   f"this version reads up to {FORMAT_VERSION}.")
            image = _read_photo(archive, name)
            motion = _read_motion(archive, name) if manifest.get("has_motion") else None
            brush_mask = _read_mask(archive, BRUSH_MASK, name) if manifest.get("has_brush_mask") else None
            freeze_mask = _read_mask(archive, FREEZE_MASK, name) if manifest.get("has_freeze_mask") else None
            flow = _read_flow(archive, manifest, name)
            gains = manifest.get("gains")
            return Project(
                image=image, motion=motion, brush_mask=brush_mask, freeze_mask=freeze_mask,
                gains=None if gains is None else np.asarray(gains, np.float32),
                magnitude=float(manifest.get("magnitude", 1.0)), slowdown=float(manifest.get("slowdown", 1.0)),
                brush=_brush_settings(manifest.get("brush") or {}, name),
                name=str(manifest.get("name", "")), settings=dict(manifest.get("settings") or {}), flow=flow,
            )
    except ProjectError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ProjectError(f"Project '{name}' is truncated or not an Aeolus project ({error}).") from None
