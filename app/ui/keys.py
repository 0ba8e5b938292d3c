"""Small habits of the studio window, Qt-side: keys that reach the window's shortcuts from a spin
box, and the folder Export and Save dialogs start in the first time."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QStandardPaths
from PySide6.QtGui import QKeySequence

# Keys that reach the window's actions even from a spin box (a spin box's line edit would take
# Ctrl+E as "end of line" and Space as text).
SPIN_BOX_PASSES = ("Ctrl+E", "Ctrl+G", "Ctrl+O", "Ctrl+S", "Ctrl+Shift+S", "Ctrl+Y", "Ctrl+Q", "Space")


class SpinBoxShortcuts(QObject):
    """Event filter for spin boxes: the keys in SPIN_BOX_PASSES go to the window's shortcuts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.passes = {QKeySequence(text)[0].toCombined() for text in SPIN_BOX_PASSES}

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.ShortcutOverride:
            combined = event.keyCombination().toCombined()
            if combined in self.passes:
                event.ignore()  # not overridden: the shortcut fires
                return True
        return False


def default_export_folder() -> str:
    """The user's Videos folder, else Pictures, else home."""
    for location in (QStandardPaths.MoviesLocation, QStandardPaths.PicturesLocation, QStandardPaths.HomeLocation):
        folder = QStandardPaths.writableLocation(location)
        if folder and os.path.isdir(folder):
            return folder
    return str(Path.home())
