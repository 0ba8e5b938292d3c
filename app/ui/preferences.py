"""Preferences (QSettings): compute device, default export format, model folder; and their dialog.

    preferences/device         "auto" | "cpu" | "cuda"  (auto: CUDA when torch sees a GPU)
    preferences/export_format  "mp4" | "gif" | "webm"   (the suffix the Export dialog starts with)
    preferences/model_folder   folder holding motion_model.safetensors ("" : the shipped models/)
    preferences/working_side   long side in pixels of the working copy strokes, previews and
                               generation use (480 | 640 | 960 | 1280); exports use the full photo
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QWidget,
)

DEVICES = ("auto", "cpu", "cuda")
EXPORT_FORMATS = ("mp4", "gif", "webm")
WORKING_SIDES = (480, 640, 960, 1280)
KEY_PREFIX = "preferences/"


@dataclass
class Preferences:
    """What the Preferences dialog edits."""

    device: str = "auto"
    export_format: str = "mp4"
    model_folder: str = ""
    working_side: int = 640


def read_preferences(settings) -> Preferences:
    """Preferences from QSettings; unknown values fall back to the defaults."""
    defaults = Preferences()
    device = str(settings.value(KEY_PREFIX + "device", defaults.device))
    export_format = str(settings.value(KEY_PREFIX + "export_format", defaults.export_format))
    try:
        working_side = int(settings.value(KEY_PREFIX + "working_side", defaults.working_side))
    except (TypeError, ValueError):
        working_side = defaults.working_side
    return Preferences(device=device if device in DEVICES else defaults.device,
                       export_format=export_format if export_format in EXPORT_FORMATS else defaults.export_format,
                       model_folder=str(settings.value(KEY_PREFIX + "model_folder", defaults.model_folder) or ""),
                       working_side=working_side if working_side in WORKING_SIDES else defaults.working_side)


def write_preferences(settings, preferences: Preferences) -> None:
    settings.setValue(KEY_PREFIX + "device", preferences.device)
    settings.setValue(KEY_PREFIX + "export_format", preferences.export_format)
    settings.setValue(KEY_PREFIX + "model_folder", preferences.model_folder)
    settings.setValue(KEY_PREFIX + "working_side", int(preferences.working_side))
    settings.sync()


def resolve_device(preference: str) -> str:
    """'cuda' or 'cpu' for a device preference (cuda without a GPU falls back to cpu); app/device.py."""
    from app.device import resolve_device as resolve

    return resolve(preference if preference in DEVICES else "auto")


class PreferencesDialog(QDialog):
    """Edit Preferences; values() reads them back after exec()."""

    def __init__(self, preferences: Preferences, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        layout = QFormLayout(self)
        self.device_combo = QComboBox(self)
        for device, label in zip(DEVICES, ("Automatic (CUDA when available)", "CPU", "CUDA")):
            self.device_combo.addItem(label, device)
        self.device_combo.setCurrentIndex(DEVICES.index(preferences.device))
        layout.addRow("Compute device", self.device_combo)
        self.format_combo = QComboBox(self)
        for export_format in EXPORT_FORMATS:
            self.format_combo.addItem(export_format.upper(), export_format)
        self.format_combo.setCurrentIndex(EXPORT_FORMATS.index(preferences.export_format))
        layout.addRow("Default export format", self.format_combo)
        folder_row = QWidget(self)
        row = QHBoxLayout(folder_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.model_folder_edit = QLineEdit(preferences.model_folder, folder_row)
        self.model_folder_edit.setPlaceholderText("The shipped models/ folder")
        browse = QPushButton("Browse…", folder_row)
        browse.clicked.connect(self._browse)
        row.addWidget(self.model_folder_edit)
        row.addWidget(browse)
        layout.addRow("Model folder", folder_row)
        self.working_combo = QComboBox(self)
        for side in WORKING_SIDES:
            self.working_combo.addItem(f"{side} px long side", side)
        self.working_combo.setCurrentIndex(max(0, self.working_combo.findData(preferences.working_side)))
        self.working_combo.setToolTip("Strokes, the live preview and generation work on a copy of the photo "
                                      "this size; exports use the full photo. Applies to the next photo opened.")
        layout.addRow("Working size", self.working_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.model_folder_edit.text() or str(Path.home()))
        if folder:
            self.model_folder_edit.setText(folder)

    def values(self) -> Preferences:
        return Preferences(device=self.device_combo.currentData(), export_format=self.format_combo.currentData(),
                           model_folder=self.model_folder_edit.text().strip(),
                           working_side=int(self.working_combo.currentData()))
