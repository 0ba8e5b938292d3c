"""Helpers shared by the studio's UI tests: small photos, motions and synthetic mouse input."""

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.core.procedural import BrushSettings, brush_motion
from app.ui.viewport import fit_rect


def textured_photo(height: int = 96, width: int = 160) -> np.ndarray:
    """A smooth, colourful uint8 (H, W, 3) photo in which every shift shows."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [128 + 100 * np.sin(columns / 5.0 + rows / 9.0), 128 + 100 * np.cos(rows / 4.0 - columns / 11.0),
                128 + 100 * np.sin((columns - rows) / 7.0)]
    return np.stack(channels, axis=-1).round().clip(0, 255).astype(np.uint8)


def write_photo(path, height: int = 96, width: int = 160) -> str:
    Image.fromarray(textured_photo(height, width)).save(path)
    return str(path)


def whole_photo_brush(height: int, width: int, amplitude_px: float = 3.0, seed: int = 1):
    """The motion brush over a whole height x width photo."""
    return brush_motion(np.ones((height, width), np.float32),
                        BrushSettings(amplitude_px=amplitude_px, coherence_px=12.0, seed=seed))


def image_point_to_widget(viewport, x: float, y: float) -> QPointF:
    """Where image pixel (x, y) is drawn in the viewport."""
    height, width = viewport.image.shape[:2]
    rect = fit_rect(viewport.width(), viewport.height(), width, height)
    return QPointF(rect.x() + (x + 0.5) / width * rect.width(), rect.y() + (y + 0.5) / height * rect.height())


def send_mouse(widget, kind, position: QPointF, button=Qt.LeftButton, modifiers=Qt.NoModifier) -> None:
    """Deliver one mouse event straight to the widget (press, move with the button held, release)."""
    held = Qt.NoButton if kind == QMouseEvent.Type.MouseButtonRelease else button
    pressed_button = Qt.NoButton if kind == QMouseEvent.Type.MouseMove else button
    global_position = QPointF(widget.mapToGlobal(position.toPoint()))
    event = QMouseEvent(kind, position, global_position, pressed_button, held, modifiers)
    QApplication.sendEvent(widget, event)


def mean_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first.astype(np.int16) - second.astype(np.int16)).mean())


def use_tiny_model(studio, steps: int, loop: bool | None = None) -> None:
    """Generate with a tiny (untrained) 4-band motion model, `steps` sampler steps, loop guidance on
    or off (None: as the panel has it)."""
    from app.diffusion.weights import tiny_motion_model

    studio.set_motion_model(tiny_motion_model(num_bands=4))
    studio.generate_panel.steps_spin.setValue(steps)
    if loop is not None:
        studio.generate_panel.loop_check.setChecked(loop)
