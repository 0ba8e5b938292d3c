"""Mask painting for the motion brush and the freeze mask: the dab math and the Brush panel.

Both tools paint a soft (h, w) float32 mask in [0, 1] on the preview grid, one stroke at a time:
a stroke is stamped into its own mask (stamp_disc), and when the mouse is released the studio turns
it into an edit (Document.apply_stroke, through strokes.py):

    motion brush   base motion += brush_motion(stroke, settings)   (erase: base *= 1 - stroke)
    freeze         freeze mask = max(freeze, stroke)                (erase: freeze *= 1 - stroke)

The motion shown and exported is multiplied by freeze_factor(freeze mask) = 1 - feathered mask,
where feathering only grows the mask outwards (max(mask, blur(mask))), so fully painted pixels
stand exactly still.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QRadioButton, QSpinBox, QWidget,
)

from app.core.procedural import BrushSettings

FREEZE_FEATHER_PX = 4.0
TOOLS = (("poke", "Poke"), ("brush", "Motion brush"), ("freeze", "Freeze"))
BRUSH_MASK_COLOUR = (0, 220, 255, 110)   # cyan: where the brush painted motion
FREEZE_MASK_COLOUR = (255, 60, 60, 130)  # red: where the scene must stay still


def stamp_disc(mask: np.ndarray, x: float, y: float, radius: float, hardness: float) -> None:
    """Paint a soft disc into mask in place (max): 1 inside radius * hardness, falling to 0 at radius."""
    height, width = mask.shape
    radius = max(float(radius), 0.5)
    top, bottom = max(0, int(np.floor(y - radius))), min(height, int(np.ceil(y + radius)) + 1)
    left, right = max(0, int(np.floor(x - radius))), min(width, int(np.ceil(x + radius)) + 1)
    if top >= bottom or left >= right:
        return
    rows, columns = np.mgrid[top:bottom, left:right].astype(np.float32)
    distance = np.hypot(columns - x, rows - y)
    inner = radius * float(np.clip(hardness, 0.0, 1.0))
    falloff = max(radius - inner, 1e-3)
    dab = np.clip((radius - distance) / falloff, 0.0, 1.0).astype(np.float32)
    np.maximum(mask[top:bottom, left:right], dab, out=mask[top:bottom, left:right])


def stamp_segment(mask: np.ndarray, start, end, radius: float, hardness: float) -> None:
    """Discs along the segment start -> end, a quarter radius apart (no gaps in fast strokes)."""
    (x0, y0), (x1, y1) = start, end
    steps = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / max(radius / 4.0, 0.5))))
    for step in range(steps + 1):
        t = step / steps
        stamp_disc(mask, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, radius, hardness)


def feathered(mask: np.ndarray, sigma_px: float = FREEZE_FEATHER_PX) -> np.ndarray:
    """The mask grown outwards by a Gaussian edge: max(mask, blur(mask)); painted pixels keep their value."""
    import cv2

    mask = np.asarray(mask, np.float32)
    blurred = cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.maximum(mask, blurred), 0.0, 1.0)


def freeze_factor(freeze_mask: np.ndarray) -> np.ndarray:
    """(h, w) float32 multiplier for the motion: 0 where frozen, 1 far from the freeze mask."""
    return (1.0 - feathered(freeze_mask)).astype(np.float32)


def mask_overlay(brush_mask: np.ndarray | None, freeze_mask: np.ndarray | None, height: int, width: int):
    """uint8 (h, w, 4) picture of both masks (None when both are empty)."""
    rgba = np.zeros((height, width, 4), np.float32)
    for mask, colour in ((brush_mask, BRUSH_MASK_COLOUR), (freeze_mask, FREEZE_MASK_COLOUR)):
        if mask is None or not np.any(mask):
            continue
        level = np.asarray(mask, np.float32)[..., None]  # (h, w, 1)
        layer = np.array(colour, np.float32) * np.concatenate([np.ones_like(level).repeat(3, -1), level], -1)
        alpha = layer[..., 3:4] / 255.0
        rgba[..., :3] = rgba[..., :3] * (1 - alpha) + layer[..., :3] * alpha
        rgba[..., 3:4] = np.maximum(rgba[..., 3:4], layer[..., 3:4])
    if not np.any(rgba[..., 3]):
        return None
    return rgba.round().clip(0, 255).astype(np.uint8)


class BrushPanel(QWidget):
    """Tool choice (poke, motion brush, freeze), erase, size, hardness, the brush's motion settings
    and show/hide masks; emits changed when anything moves."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QFormLayout(self)
        tools_row = QHBoxLayout()
        self.tool_buttons = {}
        for tool, label in TOOLS:
            button = QRadioButton(label, self)
            button.setChecked(tool == "poke")
            button.toggled.connect(lambda _on: self.changed.emit())
            tools_row.addWidget(button)
            self.tool_buttons[tool] = button
        layout.addRow("Tool", tools_row)
        self.erase_check = QCheckBox("Erase", self)
        self.show_mask_check = QCheckBox("Show masks", self)
        self.show_mask_check.setChecked(True)
        layout.addRow(self.erase_check, self.show_mask_check)
        self.size_spin = self._spin(QSpinBox(self), 1, 400, 24, " px")
        layout.addRow("Size", self.size_spin)
        self.hardness_spin = self._spin(QDoubleSpinBox(self), 0.0, 1.0, 0.5, "", step=0.05)
        layout.addRow("Hardness", self.hardness_spin)
        self.amplitude_spin = self._spin(QDoubleSpinBox(self), 0.1, 50.0, 4.0, " px", step=0.5)
        layout.addRow("Amplitude", self.amplitude_spin)
        self.direction_spin = self._spin(QSpinBox(self), -180, 180, 0, "°")
        self.direction_spin.setWrapping(True)
        layout.addRow("Direction", self.direction_spin)
        self.frequency_spin = self._spin(QDoubleSpinBox(self), 0.0, 10.0, 0.8, " Hz", step=0.1)
        self.frequency_spin.setSpecialValueText("1/f falloff")
        layout.addRow("Frequency", self.frequency_spin)
        self.coherence_spin = self._spin(QDoubleSpinBox(self), 2.0, 200.0, 24.0, " px", step=2.0)
        layout.addRow("Coherence", self.coherence_spin)
        self.erase_check.toggled.connect(lambda _on: self.changed.emit())
        self.show_mask_check.toggled.connect(lambda _on: self.changed.emit())

    def _spin(self, spin, minimum, maximum, value, suffix: str, step=1):
        spin.setRange(minimum, maximum)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setAlignment(Qt.AlignRight)
        spin.valueChanged.connect(lambda _value: self.changed.emit())
        return spin

    def tool(self) -> str:
        return next(tool for tool, button in self.tool_buttons.items() if button.isChecked())

    def set_tool(self, tool: str) -> None:
        self.tool_buttons[tool].setChecked(True)

    def erasing(self) -> bool:
        return self.erase_check.isChecked()

    def radius(self) -> float:
        return self.size_spin.value() / 2.0

    def hardness(self) -> float:
        return float(self.hardness_spin.value())

    def show_masks(self) -> bool:
        return self.show_mask_check.isChecked()

    def brush_settings(self, seed: int = 0) -> BrushSettings:
        frequency = float(self.frequency_spin.value())
        return BrushSettings(amplitude_px=float(self.amplitude_spin.value()),
                             direction_deg=float(self.direction_spin.value()),
                             dominant_hz=frequency if frequency > 0 else None,
                             coherence_px=float(self.coherence_spin.value()), seed=seed)

    def set_brush_settings(self, settings: BrushSettings) -> None:
        """Show these settings (a loaded project)."""
        self.amplitude_spin.setValue(settings.amplitude_px)
        self.direction_spin.setValue(int(round(settings.direction_deg)))
        self.frequency_spin.setValue(settings.dominant_hz or 0.0)
        self.coherence_spin.setValue(settings.coherence_px)
