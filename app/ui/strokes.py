"""Stroke editing: the viewport's painting tools turned into undoable Document edits.

While the mouse is down the stroke is stamped into its own float32 (h, w) mask and drawn over the
scene; on release Document.apply_stroke makes it an edit (motion brush or freeze mask) and the
window's undo stack gets one step for it. The masks are drawn whenever the Brush panel's Show masks
is on.
"""

from __future__ import annotations

import numpy as np

from app.ui.brush import mask_overlay, stamp_segment
from app.ui.undo import StateCommand
from app.ui.workers import error_sentence


class StrokeController:
    """Connects the viewport's stroke signals and the Brush panel to the window's Document."""

    def __init__(self, window):
        self.window = window
        self.stroke_mask: np.ndarray | None = None  # float32 (h, w): the stroke being painted
        self.previous: tuple[float, float] | None = None
        window.brush_panel.changed.connect(self.on_brush_panel_changed)

    def connect_viewport(self, viewport) -> None:
        viewport.stroke_point.connect(self.on_stroke_point)
        viewport.stroke_finished.connect(self.on_stroke_finished)

    def on_brush_panel_changed(self) -> None:
        self.window.viewport.tool = self.window.brush_panel.tool()
        self.show_masks()

    def show_masks(self, extra: np.ndarray | None = None) -> None:
        """Draw the masks (and the stroke being painted) over the scene when Show masks is on."""
        document, panel = self.window.document, self.window.brush_panel
        if document.preview_image is None:
            return
        rgba = None
        if panel.show_masks() or extra is not None:
            brush, freeze = document.brush_mask, document.freeze_mask
            if extra is not None and not panel.erasing():
                if panel.tool() == "brush":
                    brush = extra if brush is None else np.maximum(brush, extra)
                else:
                    freeze = extra if freeze is None else np.maximum(freeze, extra)
            rgba = mask_overlay(brush, freeze, *document.preview_image.shape[:2])
        self.window.viewport.set_mask_overlay(rgba)

    def on_stroke_point(self, x: float, y: float) -> None:
        document, panel = self.window.document, self.window.brush_panel
        if document.preview_image is None:
            return
        if self.stroke_mask is None or self.stroke_mask.shape != document.preview_image.shape[:2]:
            self.stroke_mask = np.zeros(document.preview_image.shape[:2], np.float32)
            self.previous = (x, y)
        stamp_segment(self.stroke_mask, self.previous, (x, y), panel.radius(), panel.hardness())
        self.previous = (x, y)
        self.show_masks(extra=self.stroke_mask)

    def on_stroke_finished(self) -> None:
        stroke, self.stroke_mask = self.stroke_mask, None
        if stroke is not None:
            panel = self.window.brush_panel
            self.apply_stroke(stroke, panel.tool(), panel.erasing())

    def apply_stroke(self, stroke, tool: str, erase: bool = False) -> None:
        """Turn a painted (h, w) stroke into one undoable edit."""
        window = self.window
        document = window.document
        before = document.snapshot()
        settings = None
        if tool == "brush" and not erase:
            settings = window.brush_panel.brush_settings(int(np.random.default_rng().integers(0, 2**31 - 1)))
        try:
            text = document.apply_stroke(stroke, tool, erase, settings)
        except ValueError as error:
            window.show_error("Motion brush", error_sentence(error))
            self.show_masks()
            return
        if text is None:
            return
        window.undo_stack.push(StateCommand(document, before, document.snapshot(), text))
        window.statusBar().showMessage(f"{text}: undo with Ctrl+Z.", 3000)
