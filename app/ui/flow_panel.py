"""The Flow panel: the Flow tool's modes and the flow layer's loop length and speed.

Modes (with "Draw flow" on, the viewport's mouse belongs to the Flow tool, app/ui/flow_tool.py):
    arrow   drag to draw an arrow; its length is how far the fluid travels in one second
    anchor  click to drop a point that stays still
    mask    drag to paint where the fluid is (erase: Erase mask)
In the arrow and anchor modes a drag that starts on a handle (an arrow's tail or tip, an anchor)
moves it; a right click on a handle deletes it. No Qt logic beyond widgets and signals here.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup, QCheckBox, QDoubleSpinBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QPushButton, QRadioButton,
    QSpinBox, QVBoxLayout, QWidget,
)

from app.core.flow_field import DEFAULT_FLOW_FRAMES

MODES = (("arrow", "Arrows"), ("anchor", "Anchors"), ("mask", "Paint fluid"), ("erase", "Erase fluid"))


class FlowPanel(QWidget):
    """Draw flow on/off, the mode, the mask brush radius, loop length, speed and Clear."""

    changed = Signal()  # the tool or mode changed
    loop_length_edited = Signal(int)
    speed_edited = Signal(float)
    clear_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.draw_button = QPushButton("Draw flow", self)
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Use the mouse to draw arrows, drop anchors and paint the fluid")
        self.draw_button.toggled.connect(lambda _on: self.changed.emit())
        layout.addWidget(self.draw_button)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons = {}
        modes = QGridLayout()
        for index, (mode, label) in enumerate(MODES):
            button = QRadioButton(label, self)
            self.mode_group.addButton(button, index)
            self.mode_buttons[mode] = button
            modes.addWidget(button, index // 2, index % 2)
        layout.addLayout(modes)
        self.mode_buttons["arrow"].setChecked(True)
        self.mode_group.idToggled.connect(lambda _id, on: on and self.changed.emit())

        form = QFormLayout()
        self.radius_spin = QSpinBox(self)
        self.radius_spin.setRange(2, 200)
        self.radius_spin.setValue(16)
        self.radius_spin.setSuffix(" px")
        form.addRow("Mask brush", self.radius_spin)
        self.loop_spin = QSpinBox(self)
        self.loop_spin.setRange(10, 600)
        self.loop_spin.setValue(DEFAULT_FLOW_FRAMES)
        self.loop_spin.setSuffix(" frames")
        self.loop_spin.setToolTip("Length of the flow's loop (a scene that also sways loops with the sway)")
        self.loop_spin.valueChanged.connect(self.loop_length_edited.emit)
        form.addRow("Loop", self.loop_spin)
        self.speed_spin = QDoubleSpinBox(self)
        self.speed_spin.setRange(0.0, 5.0)
        self.speed_spin.setSingleStep(0.1)
        self.speed_spin.setValue(1.0)
        self.speed_spin.setSuffix("x")
        self.speed_spin.valueChanged.connect(self.speed_edited.emit)
        form.addRow("Speed", self.speed_spin)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.show_check = QCheckBox("Show hints", self)
        self.show_check.setChecked(True)
        self.show_check.setToolTip("Draw the arrows, anchors and fluid over the scene")
        self.show_check.toggled.connect(lambda _on: self.changed.emit())
        row.addWidget(self.show_check)
        self.clear_button = QPushButton("Clear flow", self)
        self.clear_button.clicked.connect(self.clear_requested.emit)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        self.help_label = QLabel("Drag: an arrow (length = pixels per second). Click: an anchor. "
                                 "Drag a handle to move it, right-click to delete.", self)
        self.help_label.setWordWrap(True)
        layout.addWidget(self.help_label)
        layout.addStretch(1)

    def drawing(self) -> bool:
        return self.draw_button.isChecked()

    def set_drawing(self, on: bool) -> None:
        self.draw_button.setChecked(bool(on))

    def mode(self) -> str:
        return MODES[max(0, self.mode_group.checkedId())][0]

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def radius(self) -> float:
        return float(self.radius_spin.value())

    def show_hints(self) -> bool:
        return self.show_check.isChecked()

    def show_values(self, loop_length: int, speed: float, follows_sway: bool) -> None:
        """Show the layer's values without emitting edits; the loop length follows a sway when there is one."""
        for spin, value in ((self.loop_spin, int(loop_length)), (self.speed_spin, float(speed))):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.loop_spin.setEnabled(not follows_sway)
