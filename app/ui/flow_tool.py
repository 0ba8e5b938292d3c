"""The Flow tool: arrows, anchors and the fluid mask drawn on the photo, as undoable Document edits.

FlowController connects the viewport's flow_* mouse signals and the Flow panel (flow_panel.py) to
the Document's flow_hints (app/core/flow_field.py's FlowHints, in preview-grid pixels). Every
finished gesture (an arrow drawn, a handle moved or deleted, an anchor dropped, a mask stroke, a
loop length or speed change) replaces the hints and pushes one undo step. Whenever the hints, the
photo or the sway change, the dense field is rebuilt (Document.flow_field, ~0.1 s) and handed to
the viewport, which plays it live; the arrows, anchors and the fluid are drawn over the scene
(flow_overlay). Hints that cannot make a flow (e.g. an arrow outside the painted fluid) keep the
scene still and say why in the status bar.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from app.core.flow_field import FlowHintError, FlowHints, anchor_radius, check_hints
from app.ui.brush import stamp_segment
from app.ui.undo import StateCommand

HANDLE_PX = 8.0  # a press this close (preview pixels) to a handle grabs it
MIN_ARROW_PX = 2.0  # shorter drags are not arrows
ARROW_COLOUR = (255, 214, 0, 255)
ANCHOR_COLOUR = (255, 64, 96, 255)
FLUID_COLOUR = (40, 140, 255)
FLUID_ALPHA = 0.28


def flow_overlay(hints: FlowHints | None, height: int, width: int, pending=None, show_fluid: bool = True):
    """uint8 (height, width, 4): the fluid tinted, arrows and anchors drawn; None when there is nothing.

    pending: an arrow (x, y, dx, dy) being drawn, or a float (h, w) stroke being painted.
    """
    import cv2

    if hints is None and pending is None:
        return None
    rgba = np.zeros((height, width, 4), np.uint8)
    mask = None if hints is None else hints.mask
    if isinstance(pending, np.ndarray):
        mask = pending if mask is None else np.maximum(mask, pending)
    if show_fluid and mask is not None:
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        rgba[..., :3] = FLUID_COLOUR
        rgba[..., 3] = np.clip(mask * FLUID_ALPHA * 255, 0, 255).astype(np.uint8)
    arrows = [] if hints is None else [tuple(arrow) for arrow in hints.arrows]
    if pending is not None and not isinstance(pending, np.ndarray):
        arrows.append(tuple(pending))
    thickness = max(1, int(round(max(height, width) / 320)))
    for x, y, dx, dy in arrows:
        start = (int(round(x)), int(round(y)))
        end = (int(round(x + dx)), int(round(y + dy)))
        cv2.arrowedLine(rgba, start, end, ARROW_COLOUR, thickness + 1, cv2.LINE_AA, tipLength=0.25)
        cv2.circle(rgba, start, thickness + 2, ARROW_COLOUR, -1, cv2.LINE_AA)
    if hints is not None:
        radius = int(round(anchor_radius(hints.width, hints.height) * width / hints.width))
        for x, y in hints.anchors:
            centre = (int(round(x)), int(round(y)))
            cv2.circle(rgba, centre, max(radius, 3), ANCHOR_COLOUR, thickness + 1, cv2.LINE_AA)
            cv2.drawMarker(rgba, centre, ANCHOR_COLOUR, cv2.MARKER_CROSS, max(radius, 3), thickness, cv2.LINE_AA)
    return rgba


def nearest_handle(hints: FlowHints | None, x: float, y: float, reach: float = HANDLE_PX):
    """("tail" | "tip" | "anchor", index) of the handle nearest (x, y) within reach, else None."""
    if hints is None:
        return None
    candidates = []
    for index, (ax, ay, dx, dy) in enumerate(hints.arrows):
        candidates.append((math.hypot(ax + dx - x, ay + dy - y), ("tip", index)))
        candidates.append((math.hypot(ax - x, ay - y), ("tail", index)))
    for index, (ax, ay) in enumerate(hints.anchors):
        candidates.append((math.hypot(ax - x, ay - y), ("anchor", index)))
    close = [item for item in candidates if item[0] <= reach]
    return min(close, key=lambda item: item[0])[1] if close else None


def move_handle(hints: FlowHints, handle, x: float, y: float) -> FlowHints:
    """The hints with a handle moved to (x, y): a tail moves the whole arrow, a tip changes its vector."""
    kind, index = handle
    if kind == "anchor":
        anchors = hints.anchors.copy()
        anchors[index] = (x, y)
        return replace(hints, anchors=anchors)
    arrows = hints.arrows.copy()
    ax, ay, dx, dy = arrows[index]
    arrows[index] = (x, y, dx, dy) if kind == "tail" else (ax, ay, x - ax, y - ay)
    return replace(hints, arrows=arrows)


def delete_handle(hints: FlowHints, handle) -> FlowHints:
    kind, index = handle
    if kind == "anchor":
        return replace(hints, anchors=np.delete(hints.anchors, index, axis=0))
    return replace(hints, arrows=np.delete(hints.arrows, index, axis=0))


class FlowController:
    """Connects the viewport's flow signals and the Flow panel to the window's Document."""

    def __init__(self, window):
        self.window = window
        self.gesture = None  # ("arrow", x, y) | ("move", handle) | ("paint", stroke) while the mouse is down
        self.pending = None  # what the gesture shows: arrow (x, y, dx, dy), moved hints, or a stroke
        self.previous = None
        self.magnitude_shown = None
        panel = window.flow_panel
        panel.changed.connect(self.on_panel_changed)
        panel.loop_length_edited.connect(lambda frames: self.edit(lambda h: replace(h, num_frames=int(frames)),
                                                                  "Flow Loop", "flow loop"))
        panel.speed_edited.connect(lambda speed: self.edit(lambda h: replace(h, speed=float(speed)),
                                                           "Flow Speed", "flow speed"))
        panel.clear_requested.connect(self.clear)
        window.brush_panel.changed.connect(lambda: panel.set_drawing(False))  # a brush tool takes the mouse
        document = window.document
        for signal in (document.photo_changed, document.motion_changed, document.flow_changed):
            signal.connect(self.show_flow)
        document.edits_changed.connect(self._on_edits_changed)

    def connect_viewport(self, viewport) -> None:
        viewport.flow_pressed.connect(self.on_pressed)
        viewport.flow_dragged.connect(self.on_dragged)
        viewport.flow_released.connect(self.on_released)

    # --- hints -------------------------------------------------------------------------------------

    def hints(self) -> FlowHints | None:
        """The document's hints, or fresh empty ones for its preview grid (None without a photo)."""
        document = self.window.document
        if document.preview_image is None:
            return None
        if document.flow_hints is not None:
            return document.flow_hints
        height, width = document.preview_image.shape[:2]
        panel = self.window.flow_panel
        return FlowHints(width, height, num_frames=panel.loop_spin.value(), speed=panel.speed_spin.value())

    def commit(self, hints: FlowHints | None, text: str, merge_key: str | None = None) -> None:
        """Make hints the document's flow layer as one undoable step."""
        window = self.window
        document = window.document
        before = document.snapshot()
        document.set_flow_hints(hints)
        after = document.snapshot()
        if after.same_as(before):
            return
        window.undo_stack.push(StateCommand(document, before, after, text, merge_key))

    def edit(self, change, text: str, merge_key: str | None = None) -> None:
        hints = self.hints()
        if hints is not None:
            self.commit(change(hints), text, merge_key)

    def clear(self) -> None:
        if self.window.document.flow_hints is not None:
            self.commit(None, "Clear Flow")

    def open_example(self, name: str | None = None) -> bool:
        """Open a bundled flow example: its photo and its arrows, anchors and fluid mask."""
        from app.core.flow_field import FlowHintError, rescale_hints
        from app.data.images import ImageLoadError
        from app.pipeline import EXAMPLES_DIR, FLOW_EXAMPLE, flow_example

        window = self.window
        if not window.confirm_discard():
            return False
        name = name or FLOW_EXAMPLE
        try:
            image, hints = flow_example(name)
        except (ImageLoadError, FlowHintError, OSError) as error:
            window.show_error("Could not open example", str(error))
            return False
        window.cancel_generation()
        document = window.document
        document.set_photo(image, name, str(EXAMPLES_DIR / f"{name}.png"))
        window.projects.project_path = None
        height, width = document.preview_image.shape[:2]
        document.set_flow_hints(rescale_hints(hints, width, height))
        window.statusBar().showMessage(f"Example '{name}': it flows along its arrows; Draw flow edits them.", 8000)
        return True

    # --- the mouse -----------------------------------------------------------------------------------

    def _clamp(self, x: float, y: float):
        height, width = self.window.document.preview_image.shape[:2]
        return min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)

    def on_pressed(self, x: float, y: float, button: int) -> None:
        hints = self.hints()
        if hints is None:
            return
        x, y = self._clamp(x, y)
        mode = self.window.flow_panel.mode()
        handle = nearest_handle(hints, x, y) if mode in ("arrow", "anchor") else None
        if button == 2:
            if handle is not None:
                self.commit(delete_handle(hints, handle), "Delete Anchor" if handle[0] == "anchor" else "Delete Arrow")
            return
        if handle is not None:
            self.gesture = ("move", handle)
        elif mode == "arrow":
            self.gesture = ("arrow", x, y)
            self.pending = (x, y, 0.0, 0.0)
        elif mode == "anchor":
            anchors = np.concatenate([hints.anchors, [[x, y]]])
            self.commit(replace(hints, anchors=anchors), "Anchor")
        else:
            stroke = np.zeros(self.window.document.preview_image.shape[:2], np.float32)
            stamp_segment(stroke, (x, y), (x, y), self.window.flow_panel.radius(), 0.8)
            self.gesture, self.previous, self.pending = ("paint", stroke), (x, y), stroke
        self.show_overlay()

    def on_dragged(self, x: float, y: float) -> None:
        if self.gesture is None:
            return
        x, y = self._clamp(x, y)
        if self.gesture[0] == "arrow":
            _, start_x, start_y = self.gesture
            self.pending = (start_x, start_y, x - start_x, y - start_y)
        elif self.gesture[0] == "move":
            self.pending = move_handle(self.hints(), self.gesture[1], x, y)
        else:
            stamp_segment(self.gesture[1], self.previous, (x, y), self.window.flow_panel.radius(), 0.8)
            self.previous = (x, y)
        self.show_overlay()

    def on_released(self, x: float, y: float) -> None:
        gesture, pending = self.gesture, self.pending
        self.gesture = self.pending = self.previous = None
        if gesture is None:
            return
        hints = self.hints()
        if gesture[0] == "arrow":
            arrow = pending
            if math.hypot(arrow[2], arrow[3]) < MIN_ARROW_PX:
                self.window.statusBar().showMessage("Drag to give the arrow a direction and a speed.", 5000)
                self.show_overlay()
                return
            self.commit(replace(hints, arrows=np.concatenate([hints.arrows, [arrow]])), "Arrow")
        elif gesture[0] == "move":
            if pending is not None:
                self.commit(pending, "Move Anchor" if gesture[1][0] == "anchor" else "Move Arrow")
        else:
            stroke = gesture[1]
            if self.window.flow_panel.mode() == "erase":
                mask = None if hints.mask is None else hints.mask * (1.0 - stroke)
                text = "Erase Fluid"
            else:
                mask = stroke if hints.mask is None else np.maximum(hints.mask, stroke)
                text = "Paint Fluid"
            self.commit(replace(hints, mask=mask), text)
        self.show_overlay()

    # --- showing ----------------------------------------------------------------------------------------

    def on_panel_changed(self) -> None:
        window = self.window
        if window.flow_panel.drawing():
            window.viewport.tool = "flow"
        elif window.viewport.tool == "flow":
            window.viewport.tool = window.brush_panel.tool()
        self.show_overlay()

    def show_overlay(self) -> None:
        """Draw the hints (and the gesture in progress) over the scene."""
        window = self.window
        document = window.document
        if document.preview_image is None:
            return
        height, width = document.preview_image.shape[:2]
        shown = document.flow_hints
        pending = self.pending
        if isinstance(pending, FlowHints):
            shown, pending = pending, None
        visible = window.flow_panel.show_hints() or window.flow_panel.drawing()
        rgba = flow_overlay(shown, height, width, pending) if visible else None
        window.viewport.set_flow_overlay(rgba)

    def show_flow(self) -> None:
        """Hand the flow layer to the viewport (or none) and the panel; say why when the hints cannot flow."""
        window = self.window
        document = window.document
        if document.preview_image is None:
            return
        hints = document.flow_hints
        follows_sway = document.has_motion
        if hints is not None:
            window.flow_panel.show_values(document.motion.num_frames if follows_sway else hints.num_frames,
                                          hints.speed, follows_sway)
        else:
            window.flow_panel.show_values(window.flow_panel.loop_spin.value(), window.flow_panel.speed_spin.value(),
                                          follows_sway)
        field = document.flow_field()
        if hints is not None and field is None and len(hints.arrows):
            try:
                check_hints(hints)
            except FlowHintError as error:
                window.statusBar().showMessage(str(error), 8000)
        self.magnitude_shown = document.magnitude
        if field is None:
            window.viewport.set_flow(None)
        else:
            period = document.motion.num_frames if follows_sway else field.num_frames
            window.viewport.set_flow(field.velocity * np.float32(document.magnitude), period, field.fps, follows_sway)
        self.show_overlay()

    def _on_edits_changed(self) -> None:
        if self.window.document.flow_hints is not None and self.window.document.magnitude != self.magnitude_shown:
            self.show_flow()
