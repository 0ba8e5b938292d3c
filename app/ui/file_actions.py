"""File actions: opening photos, examples and motions, saving motions, recent files, drag and drop.

A bad file is a dialog with one sentence (window.show_error) and the studio carries on. Projects
(.aeolus) are opened through the window's ProjectController (projects.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from app.ui.workers import error_sentence

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MOTION_SUFFIX = ".npz"
PROJECT_SUFFIX = ".aeolus"
MAX_RECENT_FILES = 8
RECENT_FILES_KEY = "recent_files"


def is_image_file(path: str) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_project_file(path: str) -> bool:
    return str(path).lower().endswith(PROJECT_SUFFIX)


def is_motion_file(path: str) -> bool:
    return str(path).lower().endswith(MOTION_SUFFIX)


class WaitCursor:
    """Busy cursor while a short synchronous job runs."""

    def __enter__(self):
        QApplication.setOverrideCursor(Qt.WaitCursor)
        return self

    def __exit__(self, *exc):
        QApplication.restoreOverrideCursor()
        return False


class FileActions:
    """The File menu's photo and motion actions and the recent-files list of one window."""

    def __init__(self, window):
        self.window = window
        self.recent_menu = None  # set by attach_menus
        self.examples_menu = None

    def attach_menus(self, recent_menu, examples_menu) -> None:
        self.recent_menu, self.examples_menu = recent_menu, examples_menu
        self.fill_examples_menu()
        self.refresh_recent_menu()

    def fill_examples_menu(self) -> None:
        from app.pipeline import bundled_examples

        self.examples_menu.clear()
        names = bundled_examples()
        for name in names:
            action = self.examples_menu.addAction(name.capitalize())
            action.triggered.connect(lambda _checked=False, name=name: self.open_example(name))
        from app.pipeline import FLOW_EXAMPLE  # the water example flows (app/ui/flow_tool.py)

        action = self.examples_menu.addAction(f"{FLOW_EXAMPLE.capitalize()} (flow)")
        action.triggered.connect(lambda _checked=False: self.window.flow.open_example(FLOW_EXAMPLE))
        self.examples_menu.setEnabled(True)

    # opening

    def open_dialog(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self.window, "Open photo", self.last_folder(),
                                              f"Images ({patterns});;Projects (*{PROJECT_SUFFIX});;"
                                              "Motions (*.npz);;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a photo, a project (.aeolus), or a motion (.npz) for the open photo; False (after a
        dialog) when it fails."""
        if is_project_file(path):
            return self.window.projects.open_project(path)
        if is_motion_file(path):
            return self.open_motion_file(path)
        return self.open_photo(path)

    def open_photo(self, path: str) -> bool:
        """Load a photo (motion starts still); a bad file shows a dialog and returns False."""
        from app.data.images import ImageLoadError
        from app.pipeline import load_photo

        window = self.window
        if not window.confirm_discard():
            return False
        window.cancel_generation()
        try:
            with WaitCursor():
                image = load_photo(str(path))
        except (ImageLoadError, ValueError, OSError) as error:
            window.show_error("Could not open photo", error_sentence(error))
            return False
        window.document.set_photo(image, Path(path).stem, str(path))
        window.projects.project_path = None
        self.add_recent(str(path))
        window.statusBar().showMessage(f"Opened {Path(path).name} ({image.shape[1]}x{image.shape[0]}). "
                                       "Generate a motion with Ctrl+G.", 8000)
        return True

    def open_example(self, name: str) -> bool:
        """Open a bundled example: its photo with its motion."""
        from app.core.spectral import load_motion
        from app.pipeline import example_paths, load_photo

        window = self.window
        if not window.confirm_discard():
            return False
        window.cancel_generation()
        photo_path, motion_path = example_paths(name)
        try:
            with WaitCursor():
                image = load_photo(str(photo_path))
                motion = load_motion(str(motion_path))
        except (ValueError, OSError) as error:
            window.show_error("Could not open example", error_sentence(error))
            return False
        window.document.set_photo(image, name, str(photo_path), motion)
        window.projects.project_path = None
        window.statusBar().showMessage(f"Example '{name}': drag the scene to poke it, Shift+click to pick the "
                                       "X-t scanline.", 8000)
        return True

    def open_motion_dialog(self) -> None:
        if not self.window.require_photo():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open motion", self.last_folder(), "Motions (*.npz)")
        if path:
            self.open_motion_file(path)

    def open_motion_file(self, path: str) -> bool:
        """Give the open photo a motion from a .npz file (resized to it)."""
        from app.core.spectral import MotionFileError, load_motion

        window = self.window
        if not window.require_photo():
            return False
        try:
            motion = load_motion(str(path))
        except (MotionFileError, ValueError, OSError) as error:
            window.show_error("Could not open motion", error_sentence(error))
            return False
        window.cancel_generation()
        window.replace_motion(motion, "Open Motion")
        window.statusBar().showMessage(f"Loaded the motion {Path(path).name}.", 5000)
        return True

    def save_motion_dialog(self) -> None:
        from app.core.spectral import save_motion

        window = self.window
        if not window.require_photo():
            return
        default = os.path.join(self.last_folder(), f"{window.document.name or 'motion'}.npz")
        path, _ = QFileDialog.getSaveFileName(window, "Save motion", default, "Motions (*.npz)")
        if not path:
            return
        try:
            save_motion(path, window.document.edited_motion())
        except (ValueError, OSError) as error:
            window.show_error("Could not save motion", error_sentence(error))
            return
        window.statusBar().showMessage(f"Saved the motion to {path}.", 5000)

    # recent files

    def last_folder(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def recent_files(self) -> list[str]:
        value = self.window.settings.value(RECENT_FILES_KEY, [])
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(item) for item in value]

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [path] + [item for item in self.recent_files() if item != path]
        self.window.settings.setValue(RECENT_FILES_KEY, files[:MAX_RECENT_FILES])
        self.window.settings.sync()
        self.refresh_recent_menu()

    def refresh_recent_menu(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, path=path: self.open_path(path))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self.clear_recent)
        self.recent_menu.setEnabled(bool(files))

    def clear_recent(self) -> None:
        self.window.settings.setValue(RECENT_FILES_KEY, [])
        self.refresh_recent_menu()

    # drag and drop

    @staticmethod
    def accepts(paths: list[str]) -> bool:
        """True when a drop of these paths holds something the studio opens."""
        return any(is_image_file(path) or is_project_file(path) or is_motion_file(path) for path in paths)

    def drop(self, paths: list[str]) -> None:
        """A project wins; else the photo, then the motion for it."""
        projects = [path for path in paths if is_project_file(path)]
        if projects:
            self.window.projects.open_project(projects[0])
            return
        photos = [path for path in paths if is_image_file(path)]
        motions = [path for path in paths if is_motion_file(path)]
        if photos:
            self.open_photo(photos[0])
        if motions:
            self.open_motion_file(motions[0])
