"""The studio's one open document: a photo, its base motion and the artist's edits.

Document owns the state every panel looks at, and says when it changes:

    photo_changed    a new photo (with a new base motion)
    motion_changed   a new base motion for the same photo (generated or loaded)
    edits_changed    band gains, magnitude or speed moved
    flow_changed     the flow layer's hints changed (app/ui/flow_tool.py edits them)

The photo is kept at full size for exports; everything interactive works on a preview copy whose
long side is at most PREVIEW_MAX_SIDE, and the base motion always lives on that preview grid
(export resizes it to the output size, displacements scaling with the grid). With no motion yet,
the base motion is zero: the photo stands still and every panel still has bands to show.

The motion shown and exported is edited_motion() = magnify(scale_bands(frozen, gains), magnitude),
where frozen = display_motion() is the base motion times the freeze mask's factor (brush.py); the
speed is a playback slowdown, not part of the Motion. brush_mask (where the motion brush painted)
and freeze_mask live on the preview grid too (None until painted). flow_hints (a FlowHints in
preview-grid pixels, or None) describe the flow layer; flow_field() is its FlowField, cached.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.core.spectral import (
    DEFAULT_NUM_BANDS, Motion, magnify, mask_motion, resize_motion, scale_bands, zero_motion,
)

PREVIEW_MAX_SIDE = 640


def preview_size(height: int, width: int, max_side: int = PREVIEW_MAX_SIDE) -> tuple[int, int]:
    """(height, width) of the preview grid: the photo scaled down so its long side <= max_side."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_photo(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3) resized to height x width (app.data.images.resize_image: area to shrink)."""
    from app.data.images import resize_image

    if image.shape[:2] == (height, width):
        return image
    return resize_image(image, (width, height))


class Document(QObject):
    """Photo + base motion + edits (gains, magnitude, slowdown); see the module docstring."""

    photo_changed = Signal()
    motion_changed = Signal()
    edits_changed = Signal()
    flow_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.working_side = PREVIEW_MAX_SIDE  # long side of the preview (working) copy of the next photo
        self.image: np.ndarray | None = None  # uint8 (H, W, 3), full size
        self.preview_image: np.ndarray | None = None  # uint8 (h, w, 3), long side <= PREVIEW_MAX_SIDE
        self.motion: Motion | None = None  # base motion on the preview grid
        self.name = ""
        self.path: str | None = None
        self.gains = np.ones(DEFAULT_NUM_BANDS, np.float32)  # (K,) per-band gain
        self.magnitude = 1.0
        self.slowdown = 1.0
        self.photo_serial = 0  # counts set_photo calls: a job started for one photo must not land on the next
        self.brush_mask: np.ndarray | None = None  # float32 (h, w) in [0, 1]: where the brush painted
        self.freeze_mask: np.ndarray | None = None  # float32 (h, w) in [0, 1]: what must stay still
        self.flow_hints = None  # FlowHints on the preview grid, or None: no flow layer
        self._flow = None  # (hints, FlowField) cache
        self._edited: Motion | None = None
        self._display: Motion | None = None

    # --- what is open ------------------------------------------------------------------------

    @property
    def has_photo(self) -> bool:
        return self.image is not None

    @property
    def has_motion(self) -> bool:
        """True when the base motion moves anything."""
        return self.motion is not None and bool(np.any(self.motion.spectrum))

    def set_photo(self, image: np.ndarray, name: str, path: str | None = None, motion: Motion | None = None) -> None:
        """Open a photo (and optionally its motion, any grid size); edits go back to neutral."""
        image = np.ascontiguousarray(image)
        height, width = preview_size(*image.shape[:2], self.working_side)
        self.image = image
        self.preview_image = np.ascontiguousarray(resize_photo(image, height, width))
        self.name = name
        self.path = path
        self.photo_serial += 1
        self.motion = self._on_preview_grid(motion) if motion is not None else zero_motion(height, width)
        self._remember_source(motion)
        self.brush_mask = None
        self.freeze_mask = None
        self.flow_hints = None
        self._reset_edits()
        self.photo_changed.emit()

    def set_motion(self, motion: Motion) -> None:
        """Replace the base motion (resized to the preview grid); band gains reset when K changes."""
        if self.preview_image is None:
            raise ValueError("Open a photo before giving it a motion.")
        source = motion
        motion = self._on_preview_grid(motion)
        if motion.num_bands != len(self.gains):
            self.gains = np.ones(motion.num_bands, np.float32)
        self.motion = motion
        self._remember_source(source)
        self._edited = None
        self._display = None
        self.motion_changed.emit()

    def _remember_source(self, source: Motion | None) -> None:
        """Keep the motion as it came (its own grid) beside the preview-grid copy made from it."""
        self._source_motion = source
        self._motion_from_source = self.motion

    def motion_to_save(self) -> Motion | None:
        """The base motion as a project stores it: at its own grid while it is the motion that came
        (a predicted or extracted motion is often 16x smaller than the preview grid), None while
        it is the still motion of a photo without one, else the edited base on the preview grid."""
        if self.motion is not None and self.motion is getattr(self, "_motion_from_source", None):
            return self._source_motion
        return self.motion

    def _on_preview_grid(self, motion: Motion) -> Motion:
        height, width = self.preview_image.shape[:2]
        return resize_motion(motion, height, width)

    # --- edits -------------------------------------------------------------------------------

    def _reset_edits(self) -> None:
        self.gains = np.ones(self.motion.num_bands, np.float32)
        self.magnitude = 1.0
        self.slowdown = 1.0
        self._edited = None
        self._display = None

    def set_edits(self, gains, magnitude: float, slowdown: float) -> None:
        """Set band gains (K,), magnitude and slowdown at once; emits edits_changed when any moved."""
        gains = np.asarray(gains, np.float32).reshape(-1)
        if self.motion is not None and gains.shape != (self.motion.num_bands,):
            raise ValueError(f"Expected {self.motion.num_bands} band gains; got {gains.shape[0]}.")
        if not (magnitude >= 0 and slowdown > 0):
            raise ValueError(f"Magnitude must be >= 0 and slowdown > 0; got {magnitude} and {slowdown}.")
        unchanged = (np.array_equal(gains, self.gains) and float(magnitude) == self.magnitude
                     and float(slowdown) == self.slowdown)
        if unchanged:
            return
        self.gains = gains.copy()
        self.magnitude = float(magnitude)
        self.slowdown = float(slowdown)
        self._edited = None
        self.edits_changed.emit()

    def effective_gains(self) -> np.ndarray:
        """(K,) float32 gains * magnitude: the band factors' scale that turns base into edited motion."""
        return (self.gains * np.float32(self.magnitude)).astype(np.float32)

    def display_motion(self) -> Motion | None:
        """The base motion with the freeze mask applied (what the viewport plays); cached."""
        if self.motion is None:
            return None
        if self._display is None:
            from app.ui.brush import freeze_factor

            frozen = self.freeze_mask is not None and bool(np.any(self.freeze_mask))
            self._display = mask_motion(self.motion, freeze_factor(self.freeze_mask)) if frozen else self.motion
        return self._display

    def set_masks(self, brush_mask: np.ndarray | None, freeze_mask: np.ndarray | None) -> None:
        """Replace both masks (preview grid); emits motion_changed (the displayed motion changes)."""
        self.brush_mask = brush_mask
        self.freeze_mask = freeze_mask
        self._edited = None
        self._display = None
        self.motion_changed.emit()

    def apply_stroke(self, stroke: np.ndarray, tool: str, erase: bool = False, brush_settings=None) -> str | None:
        """Turn a painted (h, w) stroke into an edit of the motion or the masks (see app/ui/brush.py).

        tool "brush" adds brush_motion(stroke, brush_settings) to the base motion (erase: scales it by
        1 - stroke); "freeze" grows the freeze mask (erase: shrinks it). Returns the edit's name, or None
        when there is nothing to paint on; the brush's ValueError leaves the document unchanged."""
        if self.motion is None or not np.any(stroke):
            return None
        stroke = np.asarray(stroke, np.float32)
        base, brush_mask, freeze_mask = self.motion, self.brush_mask, self.freeze_mask
        if tool == "brush" and erase:
            base = mask_motion(base, 1.0 - stroke)
            brush_mask = None if brush_mask is None else brush_mask * (1.0 - stroke)
            text = "Erase Motion"
        elif tool == "brush":
            from app.core.procedural import brush_motion

            painted = brush_motion(stroke, brush_settings, base.num_bands, base.num_frames, base.fps)
            base = Motion(base.spectrum + painted.spectrum, base.num_frames, base.fps)
            brush_mask = stroke if brush_mask is None else np.maximum(brush_mask, stroke)
            text = "Motion Brush"
        elif erase:
            freeze_mask = None if freeze_mask is None else freeze_mask * (1.0 - stroke)
            text = "Erase Freeze"
        else:
            freeze_mask = stroke if freeze_mask is None else np.maximum(freeze_mask, stroke)
            text = "Freeze"
        self.motion = base
        self.set_masks(brush_mask, freeze_mask)
        return text

    def banded_motion(self) -> Motion | None:
        """scale_bands(frozen base, gains), without the magnitude (export applies that as its own setting)."""
        if self.motion is None:
            return None
        return scale_bands(self.display_motion(), self.gains)

    def edited_motion(self) -> Motion | None:
        """magnify(scale_bands(base, gains), magnitude) on the preview grid; cached until the next edit."""
        if self.motion is None:
            return None
        if self._edited is None:
            self._edited = magnify(scale_bands(self.display_motion(), self.gains), self.magnitude)
        return self._edited

    # --- the flow layer ---------------------------------------------------------------------------

    def set_flow_hints(self, hints) -> None:
        """Replace the flow layer's hints (a FlowHints on the preview grid, or None); emits flow_changed."""
        if hints is self.flow_hints:
            return
        self.flow_hints = hints
        self.flow_changed.emit()

    def flow_field(self):
        """The FlowField of the hints on the preview grid; None without usable hints. Cached per hints."""
        from app.core.flow_field import FlowHintError, flow_from_hints

        hints = self.flow_hints
        if hints is None or self.preview_image is None:
            return None
        if self._flow is None or self._flow[0] is not hints:
            try:
                field = flow_from_hints(hints, *self.preview_image.shape[:2])
            except FlowHintError:
                field = None
            self._flow = (hints, field)
        return self._flow[1]

    # --- undo snapshots --------------------------------------------------------------------------

    def snapshot(self) -> "DocumentState":
        """The undoable state (base motion and edits); arrays are copied, motions are immutable."""
        return DocumentState(self.motion, self.gains.copy(), self.magnitude, self.slowdown,
                             self.brush_mask, self.freeze_mask, self.flow_hints)

    def restore(self, state: "DocumentState") -> None:
        """Put back a snapshot; emits motion_changed when the motion differs, else edits_changed."""
        motion_differs = (state.motion is not self.motion or state.brush_mask is not self.brush_mask
                          or state.freeze_mask is not self.freeze_mask)
        self.motion = state.motion
        self.brush_mask = state.brush_mask
        self.freeze_mask = state.freeze_mask
        self._display = None
        self.gains = state.gains.copy()
        self.magnitude = state.magnitude
        self.slowdown = state.slowdown
        self._edited = None
        if state.flow_hints is not self.flow_hints:
            self.set_flow_hints(state.flow_hints)
        if motion_differs:
            self.motion_changed.emit()
        else:
            self.edits_changed.emit()


class DocumentState:
    """One undoable state of a Document: base motion, band gains, magnitude, slowdown and masks
    (masks are never changed in place: an edit makes a new array, so keeping the reference is enough)."""

    def __init__(self, motion: Motion | None, gains: np.ndarray, magnitude: float, slowdown: float,
                 brush_mask: np.ndarray | None = None, freeze_mask: np.ndarray | None = None, flow_hints=None):
        self.motion = motion
        self.flow_hints = flow_hints  # immutable FlowHints: an edit makes new ones
        self.brush_mask = brush_mask
        self.freeze_mask = freeze_mask
        self.gains = gains
        self.magnitude = magnitude
        self.slowdown = slowdown

    def same_as(self, other: "DocumentState") -> bool:
        return (self.motion is other.motion and np.array_equal(self.gains, other.gains)
                and self.magnitude == other.magnitude and self.slowdown == other.slowdown
                and self.brush_mask is other.brush_mask and self.freeze_mask is other.freeze_mask
                and self.flow_hints is other.flow_hints)
