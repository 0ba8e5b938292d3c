"""Shaping the motion band by band: one gain slider per frequency, plus magnitude and speed.

BandsPanel shows, for a Motion with K bands over a T-frame loop at fps:

- the mean amplitude spectrum (mean |S_k| per band, a pyqtgraph bar graph): the base motion as
  grey outlines, the edited one (base * gain * magnitude) as filled bars;
- one vertical slider per band k >= 1, labelled with its frequency k * fps / T in Hz, gain 0-300 %;
  band 0 (the mean offset, not a motion) is shown disabled;
- Magnitude (0-500 %, magnify) and Speed (10-200 %: slowdown = 100 / speed) sliders;
- Reset, which puts everything back to 100 %.

Every move emits `edited`; gains(), magnitude() and slowdown() read the current values.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout, QWidget,
)

from app.core.spectral import Motion, band_frequencies, mean_amplitude

GAIN_MAX_PERCENT = 300
MAGNITUDE_MAX_PERCENT = 500
SPEED_MIN_PERCENT, SPEED_MAX_PERCENT = 10, 200


def _frequency_label(hz: float) -> str:
    return f"{hz:.2g}" if hz < 10 else f"{hz:.0f}"


def _speed_text(percent: int) -> str:
    slowdown = 100.0 / percent
    if slowdown > 1:
        return f"{percent}% ({slowdown:.2g}x slow motion)"
    return f"{percent}%"


class BandsPanel(QWidget):
    """Per-band gain sliders in Hz, the amplitude spectrum beside them, magnitude and speed."""

    edited = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.base_amplitude = np.zeros(0)
        self.frequencies = np.zeros(0)
        self.band_sliders: list[QSlider] = []
        self.band_labels: list[QLabel] = []
        self.hz_label: QLabel | None = None

        self.spectrum_plot = pg.PlotWidget(parent=self)
        self.spectrum_plot.setBackground("#202020")
        self.spectrum_plot.setMenuEnabled(False)
        self.spectrum_plot.setMouseEnabled(x=False, y=False)
        self.spectrum_plot.hideButtons()
        self.spectrum_plot.setLabel("bottom", "frequency", units="Hz")
        self.spectrum_plot.setLabel("left", "mean |S|")
        self.spectrum_plot.setMinimumHeight(110)
        self.base_bars = pg.BarGraphItem(x=[], height=[], width=0.1, brush=None, pen=pg.mkPen("#888888"))
        self.edited_bars = pg.BarGraphItem(x=[], height=[], width=0.1, brush=pg.mkBrush(90, 170, 255, 180),
                                           pen=None)
        self.spectrum_plot.addItem(self.edited_bars)
        self.spectrum_plot.addItem(self.base_bars)

        self.sliders_row = QGridLayout()
        self.sliders_row.setHorizontalSpacing(2)
        self.sliders_row.setVerticalSpacing(0)
        sliders_box = QWidget(self)
        sliders_box.setLayout(self.sliders_row)

        self.magnitude_slider, self.magnitude_value = self._global_slider(0, MAGNITUDE_MAX_PERCENT, 100)
        self.speed_slider, self.speed_value = self._global_slider(SPEED_MIN_PERCENT, SPEED_MAX_PERCENT, 100)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Every band, the magnitude and the speed back to 100% (R)")
        self.reset_button.clicked.connect(self.reset)

        globals_grid = QGridLayout()
        globals_grid.addWidget(QLabel("Magnitude"), 0, 0)
        globals_grid.addWidget(self.magnitude_slider, 0, 1)
        globals_grid.addWidget(self.magnitude_value, 0, 2)
        globals_grid.addWidget(QLabel("Speed"), 1, 0)
        globals_grid.addWidget(self.speed_slider, 1, 1)
        globals_grid.addWidget(self.speed_value, 1, 2)
        globals_grid.addWidget(self.reset_button, 0, 3, 2, 1)
        globals_grid.setColumnStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.spectrum_plot, 1)
        layout.addWidget(sliders_box)
        layout.addLayout(globals_grid)
        self._update_global_labels()

    def _global_slider(self, minimum: int, maximum: int, value: int):
        slider = QSlider(Qt.Horizontal, self)
        slider.setRange(minimum, maximum)
        slider.setValue(value)
        slider.setPageStep(10)
        slider.valueChanged.connect(self._on_slider)
        label = QLabel(self)
        label.setMinimumWidth(150)
        return slider, label

    # --- the motion --------------------------------------------------------------------------

    def set_motion(self, motion: Motion, gains=None, magnitude: float = 1.0, slowdown: float = 1.0) -> None:
        """Show the bands of a (base) motion and these values (no edited signal); sliders are
        rebuilt when the band count changes."""
        self.base_amplitude = mean_amplitude(motion).astype(np.float64)  # (K,)
        self.frequencies = band_frequencies(motion.num_bands, motion.num_frames, motion.fps)  # (K,) Hz
        if len(self.band_sliders) != motion.num_bands:
            self._build_band_sliders(motion.num_bands)
        for label, hz in zip(self.band_labels, self.frequencies):
            label.setText(_frequency_label(hz))
        gains = np.ones(motion.num_bands) if gains is None else np.asarray(gains)
        self._set_values(gains, magnitude, slowdown, emit=False)
        self._update_plot()

    def show_preview(self, motion: Motion) -> None:
        """Show a passing motion's band amplitudes (a live preview while generating); sliders stay
        unless the band count differs."""
        if len(self.band_sliders) != motion.num_bands:
            self.set_motion(motion)
            return
        self.base_amplitude = mean_amplitude(motion).astype(np.float64)  # (K,)
        self._update_plot()

    def _build_band_sliders(self, num_bands: int) -> None:
        for widget in self.band_sliders + self.band_labels + ([self.hz_label] if self.hz_label else []):
            self.sliders_row.removeWidget(widget)
            widget.deleteLater()
        self.band_sliders, self.band_labels = [], []
        for band in range(num_bands):
            slider = QSlider(Qt.Vertical, self)
            slider.setRange(0, GAIN_MAX_PERCENT)
            slider.setValue(100)
            slider.setPageStep(10)
            slider.setMinimumHeight(70)
            slider.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
            slider.setEnabled(band > 0)  # the DC band is a constant offset, not a sway
            slider.setToolTip("Band 0 is the mean offset; it does not sway" if band == 0 else f"Band {band}")
            slider.valueChanged.connect(self._on_slider)
            label = QLabel(self)
            label.setAlignment(Qt.AlignCenter)
            label.setStyleSheet("font-size: 8pt;")
            self.sliders_row.addWidget(slider, 0, band, Qt.AlignHCenter)
            self.sliders_row.addWidget(label, 1, band, Qt.AlignHCenter)
            self.band_sliders.append(slider)
            self.band_labels.append(label)
        self.hz_label = QLabel("Hz", self)
        self.hz_label.setStyleSheet("font-size: 8pt;")
        self.sliders_row.addWidget(self.hz_label, 1, num_bands)

    # --- values ------------------------------------------------------------------------------

    def gains(self) -> np.ndarray:
        """(K,) float32 band gains; band 0 is always 1."""
        gains = np.array([slider.value() / 100.0 for slider in self.band_sliders], np.float32)
        if len(gains):
            gains[0] = 1.0
        return gains

    def magnitude(self) -> float:
        return self.magnitude_slider.value() / 100.0

    def slowdown(self) -> float:
        return 100.0 / self.speed_slider.value()

    def set_band_gain(self, band: int, gain: float) -> None:
        """Move one band's slider (emits edited)."""
        self.band_sliders[band].setValue(int(round(gain * 100)))

    def set_magnitude(self, magnitude: float) -> None:
        self.magnitude_slider.setValue(int(round(magnitude * 100)))

    def set_speed_percent(self, percent: int) -> None:
        self.speed_slider.setValue(int(percent))

    def show_values(self, gains, magnitude: float, slowdown: float) -> None:
        """Move the sliders to these values without emitting edited (undo, redo, a loaded project)."""
        if len(gains) == len(self.band_sliders):
            self._set_values(gains, magnitude, slowdown, emit=False)

    def reset(self) -> None:
        """Every slider back to 100 %; emits edited once."""
        self._set_values(np.ones(len(self.band_sliders)), 1.0, 1.0, emit=True)

    def _set_values(self, gains, magnitude: float, slowdown: float, emit: bool) -> None:
        sliders = self.band_sliders + [self.magnitude_slider, self.speed_slider]
        for slider in sliders:
            slider.blockSignals(True)
        for slider, gain in zip(self.band_sliders, gains):
            slider.setValue(int(round(float(gain) * 100)))
        self.magnitude_slider.setValue(int(round(magnitude * 100)))
        self.speed_slider.setValue(int(round(100.0 / slowdown)))
        for slider in sliders:
            slider.blockSignals(False)
        self._update_global_labels()
        self._update_plot()
        if emit:
            self.edited.emit()

    def _on_slider(self, _value=None) -> None:
        self._update_global_labels()
        self._update_plot()
        self.edited.emit()

    def _update_global_labels(self) -> None:
        self.magnitude_value.setText(f"{self.magnitude_slider.value()}%")
        self.speed_value.setText(_speed_text(self.speed_slider.value()))
        for band, slider in enumerate(self.band_sliders):
            if band > 0:
                slider.setToolTip(f"{self.frequencies[band]:.2f} Hz: {slider.value()}%"
                                  if band < len(self.frequencies) else "")

    def _update_plot(self) -> None:
        if len(self.base_amplitude) == 0:
            return
        bands = np.arange(1, len(self.base_amplitude))  # the DC band is left out
        x = self.frequencies[bands]
        width = 0.7 * (self.frequencies[1] - self.frequencies[0]) if len(self.frequencies) > 1 else 0.1
        edited = self.base_amplitude[bands] * self.gains()[bands] * self.magnitude()
        self.base_bars.setOpts(x=x, height=self.base_amplitude[bands], width=width)
        self.edited_bars.setOpts(x=x, height=edited, width=width)
