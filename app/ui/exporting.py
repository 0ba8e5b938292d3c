"""Exporting: the window's Export dialog and the folder Export and Save dialogs start in.

The dialog (app/ui/export_dialog.py) renders in its own worker; this controller opens it with the
document's photo, motion (or flow) and the export preferences, marks the window busy while it runs,
and remembers the folder of the last file written (QSettings LAST_EXPORT_FOLDER_KEY).
"""

from __future__ import annotations

import os

from app.ui.keys import default_export_folder

LAST_EXPORT_FOLDER_KEY = "last_export_folder"


class ExportController:
    """Owns the export dialog of one window."""

    def __init__(self, window):
        self.window = window
        self.dialog = None

    def export_folder(self) -> str:
        """Where Export and Save dialogs start: the last folder exported or saved to, else Videos/Pictures."""
        folder = str(self.window.settings.value(LAST_EXPORT_FOLDER_KEY, "") or "")
        return folder if folder and os.path.isdir(folder) else default_export_folder()

    def remember_export_folder(self, path: str) -> None:
        self.window.settings.setValue(LAST_EXPORT_FOLDER_KEY, os.path.dirname(os.path.abspath(path)))

    def open_dialog(self):
        """Show the export dialog (non-blocking); returns it."""
        from app.ui.export_dialog import ExportDialog

        window = self.window
        if not window.require_photo():
            return None
        document = window.document
        suffix = window.preferences.export_format
        default_path = os.path.join(self.export_folder(), f"{document.name or 'loop'}-loop.{suffix}")
        flow = document.flow_field()
        motion = document.banded_motion() if document.has_motion or flow is None else None  # None: only flows
        dialog = ExportDialog(document.image, motion, default_path, magnification=document.magnitude,
                              slowdown=document.slowdown, parent=window, flow=flow, device=window.compute_device())
        format_index = dialog.format_combo.findData(window.preferences.export_format)
        if format_index >= 0:
            dialog.format_combo.setCurrentIndex(format_index)
        dialog.export_started.connect(lambda: window.set_job_running(True))
        for ended in (dialog.export_finished, dialog.export_failed, dialog.export_cancelled):
            ended.connect(lambda *_: window.set_job_running(False))
        dialog.export_finished.connect(self._on_exported)
        dialog.export_cancelled.connect(
            lambda: window.statusBar().showMessage("Export cancelled; nothing was written.", 8000))
        self.dialog = dialog
        dialog.open()
        return dialog

    def worker(self):
        """The running export's worker, or None."""
        return getattr(self.dialog, "worker", None)

    def _on_exported(self, path: str) -> None:
        from app.render.export import ExportError, read_frame_count

        self.remember_export_folder(path)
        try:
            count = f" ({read_frame_count(path)} frames)"
        except (ExportError, OSError, ValueError):
            count = ""
        self.window.statusBar().showMessage(f"Wrote {path}{count}.", 10000)
