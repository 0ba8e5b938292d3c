"""The X-t view: one scanline of the animation stacked over time, a space-time slice.

xt_slice(image, motion, row, slowdown) is the fast path that draws it: only the chosen row is
needed, so the motion is cropped to that row, its field at every frame time is evaluated at once
(the sum displacement_at computes, as one einsum over all times), and the row is backward-warped, frame(x) = image(x - F_x, row - F_y), by bilinear interpolation
(cv2.remap over a (n, W) map). A loop of n = round(T * slowdown) frames gives a (n, W, 3) slice;
periodic motion shows as wavy vertical streaks, a seamless loop as a slice whose top and bottom
rows match.

XtView shows the photo with the scanline (drag it, click the photo, or use the spin box) above the
slice, and recomputes the slice whenever set_motion or set_row changes what it shows (cached
until the motion, gains, row or slowdown change).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from app.core.spectral import Motion, band_factors, crop_motion, scale_bands
from app.ui.playback import fields_from_factors


def xt_slice(image: np.ndarray, motion: Motion, row: int, slowdown: float = 1.0, gains=None) -> np.ndarray:
    """uint8 (n, W, 3) space-time slice of `row`, n = round(T * slowdown) frames of the loop.

    gains: optional (K,) band gains applied to the row (scale_bands), so a base motion and the
    artist's gains give the edited slice without editing the whole motion.
    """
    import cv2

    height, width = image.shape[:2]
    if (motion.height, motion.width) != (height, width):
        raise ValueError(f"The motion is {motion.width}x{motion.height} but the photo is {width}x{height}.")
    row = int(np.clip(row, 0, height - 1))
    num_frames = max(1, int(round(motion.num_frames * slowdown)))
    row_motion = crop_motion(motion, row, 0, 1, width)  # (K, 2, 1, W)
    if gains is not None:
        row_motion = scale_bands(row_motion, gains)
    times = np.arange(num_frames) * motion.num_frames / num_frames
    factors = np.stack([band_factors(motion.num_bands, motion.num_frames, t) for t in times])  # (n, K)
    fields = fields_from_factors(factors, row_motion.spectrum.reshape(motion.num_bands, -1))  # (n, 2W)
    fields = fields.reshape(num_frames, 2, width)  # displacement_at(row_motion, t)[:, 0] for each t
    columns = np.arange(width, dtype=np.float32)[None, :]
    map_x = (columns - fields[:, 0]).astype(np.float32)  # (n, W)
    map_y = (row - fields[:, 1]).astype(np.float32)  # (n, W)
    return cv2.remap(np.ascontiguousarray(image), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


class XtView(QWidget):
    """Photo with a draggable scanline over the X-t slice of the current animation."""

    row_changed = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: np.ndarray | None = None
        self.motion: Motion | None = None
        self.gains: np.ndarray | None = None
        self.slowdown = 1.0
        self.slice: np.ndarray | None = None
        self._cache_key = None

        self.row_spin = QSpinBox(self)
        self.row_spin.setRange(0, 0)
        self.row_spin.setToolTip("Scanline (image row); Shift+click the viewport or click the photo here")
        self.row_spin.valueChanged.connect(self.set_row)
        self.info_label = QLabel(self)

        self.graphics = pg.GraphicsLayoutWidget(parent=self)
        self.graphics.setBackground("#202020")
        self.photo_box = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.photo_box.setMouseEnabled(x=False, y=False)
        self.photo_item = pg.ImageItem(axisOrder="row-major")
        self.photo_box.addItem(self.photo_item)
        self.scanline = pg.InfiniteLine(pos=0, angle=0, movable=True, pen=pg.mkPen("#ffcc00", width=2))
        self.scanline.sigPositionChangeFinished.connect(self._on_line_moved)
        self.photo_box.addItem(self.scanline)
        self.slice_box = self.graphics.addViewBox(row=1, col=0, invertY=True, enableMenu=False)
        self.slice_box.setMouseEnabled(x=False, y=False)
        self.slice_item = pg.ImageItem(axisOrder="row-major")
        self.slice_box.addItem(self.slice_item)
        self.graphics.ci.layout.setRowStretchFactor(0, 1)
        self.graphics.ci.layout.setRowStretchFactor(1, 1)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Scanline y", self))
        controls.addWidget(self.row_spin)
        controls.addWidget(self.info_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.graphics, 1)

    def row(self) -> int:
        return self.row_spin.value()

    def set_photo(self, image: np.ndarray) -> None:
        """A new photo: the scanline goes to the middle row."""
        self.image = image
        height = image.shape[0]
        self.photo_item.setImage(image, autoLevels=False, levels=(0, 255))
        self.photo_box.autoRange(padding=0)
        self.row_spin.blockSignals(True)
        self.row_spin.setRange(0, height - 1)
        self.row_spin.setValue(height // 2)
        self.row_spin.blockSignals(False)
        self.scanline.setValue(height // 2 + 0.5)
        self._cache_key = None

    def set_motion(self, motion: Motion, gains=None, slowdown: float = 1.0) -> None:
        """The animation to slice: a motion on the photo's grid and its band gains; redraws now."""
        self.motion = motion
        self.gains = None if gains is None else np.asarray(gains, np.float32).copy()
        self.slowdown = float(slowdown)
        self._cache_key = None
        self.refresh()

    def set_row(self, row: int) -> None:
        row = int(row)
        if self.row_spin.value() != row:
            self.row_spin.setValue(row)  # comes back here through valueChanged
            return
        self.scanline.setValue(row + 0.5)
        self.refresh()
        self.row_changed.emit(row)

    def refresh(self) -> None:
        """Recompute the slice unless it is already drawn for this motion, row and slowdown."""
        if self.image is None or self.motion is None:
            return
        key = (self.row(), self.slowdown)
        if key == self._cache_key:
            return
        self.slice = xt_slice(self.image, self.motion, self.row(), self.slowdown, self.gains)
        self._cache_key = key
        self.slice_item.setImage(self.slice, autoLevels=False, levels=(0, 255))
        self.slice_box.autoRange(padding=0)
        self.info_label.setText(f"{self.slice.shape[0]} frames x {self.slice.shape[1]} px")

    def _on_line_moved(self) -> None:
        self.set_row(int(np.clip(np.floor(self.scanline.value()), 0, self.row_spin.maximum())))

    def _on_click(self, event) -> None:
        if self.image is None or event.button() != Qt.LeftButton:
            return
        point = self.photo_box.mapSceneToView(event.scenePos())
        height, width = self.image.shape[:2]
        if self.photo_box.sceneBoundingRect().contains(event.scenePos()) and 0 <= point.y() < height:
            self.set_row(int(point.y()))
