"""Projects and autosave: the open document saved as an .aeolus project (app/project.py) and back.

The project lives at project_path once saved or opened (None before). The document is autosaved
every AUTOSAVE_INTERVAL_MS and on quit to autosave_dir/AUTOSAVE_NAME; a clean exit records its time
in the settings (CLEAN_EXIT_KEY), and offer_autosave_restore() offers an autosave newer than that.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.ui.file_actions import PROJECT_SUFFIX, WaitCursor, is_project_file
from app.ui.workers import error_sentence

AUTOSAVE_INTERVAL_MS = 3 * 60 * 1000
AUTOSAVE_NAME = "autosave.aeolus"
CLEAN_EXIT_KEY = "last_clean_exit"


class ProjectController:
    """Save, open and autosave projects for one window."""

    def __init__(self, window, autosave_dir: Path):
        self.window = window
        self.autosave_dir = Path(autosave_dir)
        self.project_path: str | None = None
        self.timer = QTimer(window)
        self.timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def current_project(self):
        """The open document as a Project."""
        from app.project import Project

        document = self.window.document
        return Project(image=document.image, motion=document.motion_to_save(), brush_mask=document.brush_mask,
                       freeze_mask=document.freeze_mask, gains=document.gains.copy(), magnitude=document.magnitude,
                       slowdown=document.slowdown, brush=self.window.brush_panel.brush_settings(),
                       name=document.name, settings={"photo_path": document.path or ""}, flow=document.flow_hints,
                       view=self.window.view_state())

    def write_project(self, path: str) -> bool:
        """Save the open document as a project at path; False (after a dialog) when it fails."""
        from app.project import save_project

        if not self.window.require_photo():
            return False
        try:
            save_project(path, self.current_project())
        except (ValueError, OSError) as error:
            self.window.show_error("Could not save project", error_sentence(error))
            return False
        self.window.undo_stack.setClean()  # nothing unsaved until the next edit
        return True

    def save_project(self) -> bool:
        """Save to the open project's file, or ask for one."""
        if self.project_path is None:
            return self.save_project_as()
        if not self.write_project(self.project_path):
            return False
        self.window.statusBar().showMessage(f"Saved the project to {self.project_path}.", 5000)
        return True

    def save_project_as(self, path: str | None = None) -> bool:
        """Save under a new name (asked for when path is None); the project then lives there."""
        window = self.window
        if not window.require_photo():
            return False
        if path is None:
            default = os.path.join(window.export_folder(), f"{window.document.name or 'project'}{PROJECT_SUFFIX}")
            path, _ = QFileDialog.getSaveFileName(window, "Save project", default, f"Projects (*{PROJECT_SUFFIX})")
            if not path:
                return False
        if not is_project_file(path):
            path += PROJECT_SUFFIX
        if not self.write_project(path):
            return False
        window.remember_export_folder(path)
        self._remember(path)
        window.statusBar().showMessage(f"Saved the project to {path}.", 5000)
        return True

    def _remember(self, path: str) -> None:
        self.project_path = str(path)
        self.window.files.add_recent(str(path))
        self.window.set_title(Path(path).stem)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", self.window.files.last_folder(),
                                              f"Projects (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(path)

    def open_project(self, path: str, remember: bool = True) -> bool:
        """Open a project file; a bad file shows a one-sentence dialog and returns False."""
        from app.project import ProjectError, load_project

        if not self.window.confirm_discard():
            return False
        try:
            with WaitCursor():
                project = load_project(str(path))
        except ProjectError as error:
            self.window.show_error("Could not open project", str(error))
            return False
        self.window.cancel_generation()
        self.apply_project(project)
        if remember:
            self._remember(path)
        self.window.statusBar().showMessage(f"Opened the project {Path(path).name}.", 8000)
        return True

    def apply_project(self, project) -> None:
        """Make a loaded Project the open document (masks that do not fit the preview grid are dropped)."""
        window = self.window
        document = window.document
        photo_path = project.settings.get("photo_path") or None
        document.set_photo(project.image, project.name or "project", photo_path, project.motion)
        grid = document.preview_image.shape[:2]
        fits = lambda mask: mask if mask is not None and mask.shape == grid else None  # noqa: E731
        if project.brush_mask is not None or project.freeze_mask is not None:
            document.set_masks(fits(project.brush_mask), fits(project.freeze_mask))
        if project.gains is not None and project.gains.shape == document.gains.shape:
            document.set_edits(project.gains, project.magnitude, project.slowdown)
        if project.flow is not None and (project.flow.height, project.flow.width) == grid:
            document.set_flow_hints(project.flow)
        window.brush_panel.set_brush_settings(project.brush)
        window.set_view_state(project.view)
        window.undo_stack.clear()

    # autosave

    def autosave_path(self) -> Path:
        return self.autosave_dir / AUTOSAVE_NAME

    def autosave(self) -> bool:
        """Save the open document to the autosave folder (quietly; nothing open, nothing saved)."""
        from app.project import save_project

        if not self.window.document.has_photo:
            return False
        try:
            self.autosave_dir.mkdir(parents=True, exist_ok=True)
            save_project(str(self.autosave_path()), self.current_project())
        except (ValueError, OSError) as error:
            self.window.statusBar().showMessage(f"Autosave failed: {error_sentence(error)}", 8000)
            return False
        return True

    def has_unsaved_autosave(self) -> bool:
        """True when an autosave is newer than the last clean exit (the studio did not close cleanly)."""
        path = self.autosave_path()
        if not path.is_file():
            return False
        try:
            clean_exit = float(self.window.settings.value(CLEAN_EXIT_KEY, 0.0) or 0.0)
        except (TypeError, ValueError):
            clean_exit = 0.0
        return path.stat().st_mtime > clean_exit

    def offer_autosave_restore(self) -> bool:
        """Ask to restore an autosave newer than the last clean exit; True when one was restored."""
        if not self.has_unsaved_autosave():
            return False
        answer = QMessageBox.question(self.window, self.window.app_name, "Aeolus did not close cleanly last time. "
                                      "Restore the autosaved project?", QMessageBox.Yes | QMessageBox.No,
                                      QMessageBox.Yes)
        if answer != QMessageBox.Yes:
            return False
        return self.open_project(str(self.autosave_path()), remember=False)

    def close(self) -> None:
        """On quit: a last autosave, and the clean exit's time in the settings."""
        self.timer.stop()
        self.autosave()
        self.window.settings.setValue(CLEAN_EXIT_KEY, time.time())
        self.window.settings.sync()
