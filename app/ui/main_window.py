"""The studio window: open a photo, generate its motion, shape it, play and poke it, export a loop.

Layout: the viewport in the middle (OpenGL where the platform has it, a CPU fallback otherwise),
the Generate and Brush panels on the right (brush.py: poke, motion brush or freeze tool), the band
sliders with their amplitude spectrum and the X-t slice at the bottom. One Document (document.py) holds the photo, the base motion and the edits; the
panels edit it and redraw when it says it changed.

    File      Open… (Ctrl+O), Open Project… (Ctrl+Alt+O), Open Recent, Examples, Save Project
              (Ctrl+S), Save Project As… (Ctrl+Shift+S), Open Motion…, Save Motion… (Ctrl+Alt+S),
              Export… (Ctrl+E), Preferences…, Quit (Ctrl+Q); image files, .aeolus projects and .npz
              motions can be dropped on the window.
    Edit      Undo (Ctrl+Z), Redo (Ctrl+Shift+Z): sliders, new motions, brush and freeze strokes

Projects are autosaved every AUTOSAVE_INTERVAL_MS and on quit to autosave_folder(); a clean exit
records its time in the settings, and start_studio offers to restore an autosave newer than that.
    Motion    Generate (Ctrl+G), Cancel (Esc), Reset bands (R)
    View      Play/Pause (Space), Rewind (Home), overlays (M cycles: none, magnitude, mask), panels

A user's mistake (a bad file) is a dialog with one sentence and the studio stays up; unexpected
errors reach a sys.excepthook that shows a dialog instead of a traceback (run_app installs it).
run_app(image_path) is what `python -m app [IMAGE]` calls.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication, QComboBox, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QToolBar,
)

from app.ui.bands import BandsPanel
from app.ui.brush import BrushPanel
from app.ui.document import Document
from app.ui.undo import StateCommand
from app.ui.generate_panel import GeneratePanel, default_model_path, generate_motion
from app.ui.viewport import CpuViewport, create_viewport
from app.ui.workers import Worker, error_sentence
from app.ui.xt_view import XtView

APP_NAME = "Aeolus"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MOTION_SUFFIX = ".npz"
PROJECT_SUFFIX = ".aeolus"
AUTOSAVE_INTERVAL_MS = 3 * 60 * 1000
AUTOSAVE_NAME = "autosave.aeolus"
CLEAN_EXIT_KEY = "last_clean_exit"
MAX_RECENT_FILES = 8
RECENT_FILES_KEY = "recent_files"
ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "aeolus.svg"
OVERLAY_LABELS = (("none", "No overlay"), ("magnitude", "Motion magnitude"), ("mask", "Motion mask"))
SHORTCUTS_HELP = """<table>
<tr><td><b>Ctrl+O</b></td><td>Open a photo</td></tr>
<tr><td><b>Ctrl+G</b></td><td>Generate a motion</td></tr>
<tr><td><b>Esc</b></td><td>Cancel generating</td></tr>
<tr><td><b>Ctrl+E</b></td><td>Export the loop</td></tr>
<tr><td><b>Ctrl+S</b></td><td>Save the project</td></tr>
<tr><td><b>Ctrl+Shift+S</b></td><td>Save the project as…</td></tr>
<tr><td><b>Ctrl+Z / Ctrl+Shift+Z</b></td><td>Undo / redo</td></tr>
<tr><td><b>Space</b></td><td>Play / pause</td></tr>
<tr><td><b>Home</b></td><td>Back to the loop's start</td></tr>
<tr><td><b>M</b></td><td>Cycle overlays: none, magnitude, mask</td></tr>
<tr><td><b>R</b></td><td>Reset the band sliders</td></tr>
<tr><td><b>Drag</b></td><td>Pull the scene; release to let it swing (Poke tool); paint (Brush, Freeze)</td></tr>
<tr><td><b>Shift+click</b></td><td>Pick the X-t scanline</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>Quit</td></tr>
</table>"""


def is_image_file(path: str) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_project_file(path: str) -> bool:
    return str(path).lower().endswith(PROJECT_SUFFIX)


def autosave_folder() -> Path:
    """Where autosaves go: the platform's application data folder (AppDataLocation)."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "autosave"


class MainWindow(QMainWindow):
    """The studio; see the module docstring."""

    def __init__(self, settings: QSettings | None = None, motion_model=None, model_path=None, viewport=None,
                 autosave_dir=None):
        """settings: where recent files are kept (default: the user's Aeolus settings).
        motion_model: a MotionModel to generate with; else the file at model_path (default
        models/motion_model.safetensors) is loaded on first use when it exists; else Generate
        paints the motion brush. viewport: a viewport widget instead of create_viewport()'s choice.
        autosave_dir: where autosaves go (default autosave_folder())."""
        from app.ui.preferences import read_preferences

        super().__init__()
        self.settings = settings if settings is not None else QSettings(APP_NAME, APP_NAME)
        self.preferences = read_preferences(self.settings)
        self.motion_model = motion_model
        self.model_path = Path(model_path) if model_path is not None else self._preferred_model_path()
        self.autosave_dir = Path(autosave_dir) if autosave_dir is not None else autosave_folder()
        self.project_path: str | None = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.generation_worker: Worker | None = None
        self.export_dialog = None
        self.document = Document(self)
        self.undo_stack = QUndoStack(self)
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1320, 880)
        if ICON_PATH.is_file():
            self.setWindowIcon(QIcon(str(ICON_PATH)))

        self.viewport = None
        self._install_viewport(viewport if viewport is not None else create_viewport(self))
        self._build_panels()
        self._build_status_bar()
        self._build_actions()
        self._build_menus_and_toolbar()
        self._connect_document()
        self._update_model_name()
        self._update_enabled()
        self.statusBar().showMessage("Open a photo (Ctrl+O), drop one here, or pick one from Examples.")

    # --- building ------------------------------------------------------------------------------

    def _install_viewport(self, viewport) -> None:
        old = self.viewport
        self.viewport = viewport
        viewport.fps_measured.connect(self._on_fps)
        viewport.scanline_picked.connect(self._on_scanline_picked)
        viewport.poke_settled.connect(lambda: self.statusBar().showMessage("The scene has settled.", 3000))
        viewport.failed.connect(self._fall_back_to_cpu_viewport)
        viewport.stroke_point.connect(self._on_stroke_point)
        viewport.stroke_finished.connect(self._on_stroke_finished)
        viewport.tool = getattr(old, "tool", "poke")
        self.setCentralWidget(viewport)
        if old is not None:
            old.timer.stop()
            old.deleteLater()

    def _build_panels(self) -> None:
        self.generate_panel = GeneratePanel(self)
        self.generate_panel.generate_requested.connect(self.start_generation)
        self.generate_panel.cancel_requested.connect(self.cancel_generation)
        self.bands_panel = BandsPanel(self)
        self.bands_panel.edited.connect(self._on_bands_edited)
        self.xt_view = XtView(self)
        self.brush_panel = BrushPanel(self)
        self.brush_panel.changed.connect(self._on_brush_panel_changed)
        self.stroke_mask = None  # float32 (h, w): the stroke being painted

        self.generate_dock = self._dock("Generate", self.generate_panel, Qt.RightDockWidgetArea)
        self.bands_dock = self._dock("Bands", self.bands_panel, Qt.BottomDockWidgetArea)
        self.xt_dock = self._dock("X-t slice", self.xt_view, Qt.BottomDockWidgetArea)
        self.brush_dock = self._dock("Brush", self.brush_panel, Qt.RightDockWidgetArea)
        self.splitDockWidget(self.bands_dock, self.xt_dock, Qt.Horizontal)
        self.resizeDocks([self.bands_dock, self.xt_dock], [760, 560], Qt.Horizontal)
        self.resizeDocks([self.bands_dock], [330], Qt.Vertical)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                         | QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.fps_label = QLabel("", self)
        self.device_label = QLabel("", self)
        self.statusBar().addPermanentWidget(self.fps_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self._update_device_label()

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.WindowShortcut)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open Photo…", self.open_dialog, QKeySequence.Open, "Open a photo")
        self.open_motion_action = self._action("Open &Motion…", self.open_motion_dialog, "Ctrl+Shift+O",
                                               "Load a motion (.npz) for the open photo")
        self.save_motion_action = self._action("Save &Motion…", self.save_motion_dialog, "Ctrl+Alt+S",
                                               "Save the edited motion as .npz")
        self.open_project_action = self._action("Open &Project…", self.open_project_dialog, "Ctrl+Alt+O",
                                                "Open an Aeolus project (.aeolus)")
        self.save_project_action = self._action("&Save Project", self.save_project, QKeySequence.Save,
                                                "Save the photo, motion, masks and sliders as a project")
        self.save_project_as_action = self._action("Save Project &As…", self.save_project_as, "Ctrl+Shift+S",
                                                   "Save the project under a new name")
        self.preferences_action = self._action("Pre&ferences…", self.show_preferences, QKeySequence.Preferences)
        self.export_action = self._action("&Export…", self.open_export_dialog, "Ctrl+E", "Export the loop")
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        self.generate_action = self._action("&Generate", self.start_generation, "Ctrl+G",
                                            "Generate a motion for the photo")
        self.cancel_action = self._action("&Cancel", self.cancel_generation, Qt.Key_Escape, "Stop generating")
        self.reset_action = self._action("&Reset Bands", self.bands_panel.reset, "R",
                                         "Every band, the magnitude and the speed back to 100%")
        self.play_action = self._action("&Play / Pause", self.toggle_playing, Qt.Key_Space)
        self.play_action.setCheckable(True)
        self.play_action.setChecked(True)
        self.rewind_action = self._action("Re&wind", self.rewind, Qt.Key_Home)
        self.cycle_overlay_action = self._action("Cycle &Overlay", self.cycle_overlay, "M")
        self.overlay_group = QActionGroup(self)
        self.overlay_actions = {}
        for mode, label in OVERLAY_LABELS:
            action = QAction(label, self, checkable=True)
            action.setChecked(mode == "none")
            action.triggered.connect(lambda _checked=False, mode=mode: self.set_overlay(mode))
            self.overlay_group.addAction(action)
            self.overlay_actions[mode] = action
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.WindowShortcut)
            self.addAction(action)
        self.shortcuts_action = self._action("&Keyboard Shortcuts", self.show_shortcuts, QKeySequence.HelpContents)
        self.about_action = self._action("&About Aeolus", self.show_about)

    def _build_menus_and_toolbar(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.open_project_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.examples_menu = file_menu.addMenu("E&xamples")
        self._fill_examples_menu()
        file_menu.addSeparator()
        file_menu.addAction(self.save_project_action)
        file_menu.addAction(self.save_project_as_action)
        file_menu.addSeparator()
        file_menu.addAction(self.open_motion_action)
        file_menu.addAction(self.save_motion_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.preferences_action)
        file_menu.addAction(self.quit_action)
        self._refresh_recent_menu()

        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)

        motion_menu = self.menuBar().addMenu("&Motion")
        motion_menu.addAction(self.generate_action)
        motion_menu.addAction(self.cancel_action)
        motion_menu.addAction(self.reset_action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.play_action)
        view_menu.addAction(self.rewind_action)
        view_menu.addSeparator()
        for action in self.overlay_actions.values():
            view_menu.addAction(action)
        view_menu.addAction(self.cycle_overlay_action)
        view_menu.addSeparator()
        for dock in (self.generate_dock, self.brush_dock, self.bands_dock, self.xt_dock):
            view_menu.addAction(dock.toggleViewAction())

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)

        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("main toolbar")
        toolbar.setMovable(False)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.generate_action)
        toolbar.addAction(self.export_action)
        toolbar.addSeparator()
        toolbar.addAction(self.play_action)
        toolbar.addAction(self.rewind_action)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Overlay ", self))
        self.overlay_combo = QComboBox(self)
        for mode, label in OVERLAY_LABELS:
            self.overlay_combo.addItem(label, mode)
        self.overlay_combo.currentIndexChanged.connect(
            lambda index: self.set_overlay(self.overlay_combo.itemData(index)))
        toolbar.addWidget(self.overlay_combo)
        self.addToolBar(Qt.TopToolBarArea, toolbar)

    def _fill_examples_menu(self) -> None:
        from app.pipeline import bundled_examples

        self.examples_menu.clear()
        names = bundled_examples()
        for name in names:
            action = self.examples_menu.addAction(name.capitalize())
            action.triggered.connect(lambda _checked=False, name=name: self.open_example(name))
        self.examples_menu.setEnabled(bool(names))

    def _connect_document(self) -> None:
        self.document.photo_changed.connect(self._on_photo_changed)
        self.document.motion_changed.connect(self._on_motion_changed)
        self.document.edits_changed.connect(self._on_edits_changed)

    # --- opening files ---------------------------------------------------------------------------

    def show_error(self, title: str, message: str) -> None:
        """A one-sentence error in a dialog; the studio carries on."""
        self.statusBar().showMessage(message, 8000)
        QMessageBox.warning(self, title, message)

    def open_dialog(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", self._last_folder(),
                                              f"Images ({patterns});;Projects (*{PROJECT_SUFFIX});;"
                                              "Motions (*.npz);;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a photo, a project (.aeolus), or a motion (.npz) for the open photo; False (after a
        dialog) when it fails."""
        if is_project_file(path):
            return self.open_project(path)
        if str(path).lower().endswith(MOTION_SUFFIX):
            return self.open_motion_file(path)
        return self.open_photo(path)

    def open_photo(self, path: str) -> bool:
        """Load a photo (motion starts still); a bad file shows a dialog and returns False."""
        from app.data.images import ImageLoadError
        from app.pipeline import load_photo

        self.cancel_generation()
        try:
            with _WaitCursor():
                image = load_photo(str(path))
        except (ImageLoadError, ValueError, OSError) as error:
            self.show_error("Could not open photo", error_sentence(error))
            return False
        self.document.set_photo(image, Path(path).stem, str(path))
        self.project_path = None
        self._add_recent(str(path))
        self.statusBar().showMessage(f"Opened {Path(path).name} ({image.shape[1]}x{image.shape[0]}). "
                                     "Generate a motion with Ctrl+G.", 8000)
        return True

    def open_example(self, name: str) -> bool:
        """Open a bundled example: its photo with its motion."""
        from app.core.spectral import load_motion
        from app.pipeline import example_paths, load_photo

        self.cancel_generation()
        photo_path, motion_path = example_paths(name)
        try:
            with _WaitCursor():
                image = load_photo(str(photo_path))
                motion = load_motion(str(motion_path))
        except (ValueError, OSError) as error:
            self.show_error("Could not open example", error_sentence(error))
            return False
        self.document.set_photo(image, name, str(photo_path), motion)
        self.project_path = None
        self.statusBar().showMessage(f"Example '{name}': drag the scene to poke it, Shift+click to pick the "
                                     "X-t scanline.", 8000)
        return True

    def open_motion_dialog(self) -> None:
        if not self._require_photo():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open motion", self._last_folder(), "Motions (*.npz)")
        if path:
            self.open_motion_file(path)

    def open_motion_file(self, path: str) -> bool:
        """Give the open photo a motion from a .npz file (resized to it)."""
        from app.core.spectral import MotionFileError, load_motion

        if not self._require_photo():
            return False
        try:
            motion = load_motion(str(path))
        except (MotionFileError, ValueError, OSError) as error:
            self.show_error("Could not open motion", error_sentence(error))
            return False
        self.cancel_generation()
        self.replace_motion(motion, "Open Motion")
        self.statusBar().showMessage(f"Loaded the motion {Path(path).name}.", 5000)
        return True

    def save_motion_dialog(self) -> None:
        from app.core.spectral import save_motion

        if not self._require_photo():
            return
        default = os.path.join(self._last_folder(), f"{self.document.name or 'motion'}.npz")
        path, _ = QFileDialog.getSaveFileName(self, "Save motion", default, "Motions (*.npz)")
        if not path:
            return
        try:
            save_motion(path, self.document.edited_motion())
        except (ValueError, OSError) as error:
            self.show_error("Could not save motion", error_sentence(error))
            return
        self.statusBar().showMessage(f"Saved the motion to {path}.", 5000)

    def _require_photo(self) -> bool:
        if self.document.has_photo:
            return True
        self.show_error(APP_NAME, "Open a photo first (Ctrl+O).")
        return False

    def _last_folder(self) -> str:
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # recent files

    def recent_files(self) -> list[str]:
        value = self.settings.value(RECENT_FILES_KEY, [])
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(item) for item in value]

    def _add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [path] + [item for item in self.recent_files() if item != path]
        self.settings.setValue(RECENT_FILES_KEY, files[:MAX_RECENT_FILES])
        self.settings.sync()
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, path=path: self.open_path(path))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self._clear_recent)
        self.recent_menu.setEnabled(bool(files))

    def _clear_recent(self) -> None:
        self.settings.setValue(RECENT_FILES_KEY, [])
        self._refresh_recent_menu()

    # drag and drop

    def dragEnterEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if any(is_image_file(path) or is_project_file(path) or path.lower().endswith(MOTION_SUFFIX)
               for path in paths):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        photos = [path for path in paths if is_image_file(path)]
        motions = [path for path in paths if path.lower().endswith(MOTION_SUFFIX)]
        projects = [path for path in paths if is_project_file(path)]
        event.acceptProposedAction()
        if projects:
            self.open_project(projects[0])
            return
        if photos:
            self.open_photo(photos[0])
        if motions:
            self.open_motion_file(motions[0])

    # --- projects, autosave and preferences -------------------------------------------------------

    def current_project(self):
        """The open document as a Project (app/project.py)."""
        from app.project import Project

        document = self.document
        return Project(image=document.image, motion=document.motion, brush_mask=document.brush_mask,
                       freeze_mask=document.freeze_mask, gains=document.gains.copy(), magnitude=document.magnitude,
                       slowdown=document.slowdown, brush=self.brush_panel.brush_settings(), name=document.name,
                       settings={"photo_path": document.path or ""})

    def write_project(self, path: str) -> bool:
        """Save the open document as a project at path; False (after a dialog) when it fails."""
        from app.project import save_project

        if not self._require_photo():
            return False
        try:
            save_project(path, self.current_project())
        except (ValueError, OSError) as error:
            self.show_error("Could not save project", error_sentence(error))
            return False
        return True

    def save_project(self) -> bool:
        """Save to the open project's file, or ask for one."""
        if self.project_path is None:
            return self.save_project_as()
        if not self.write_project(self.project_path):
            return False
        self.statusBar().showMessage(f"Saved the project to {self.project_path}.", 5000)
        return True

    def save_project_as(self, path: str | None = None) -> bool:
        """Save under a new name (asked for when path is None); the project then lives there."""
        if not self._require_photo():
            return False
        if path is None:
            default = os.path.join(self._last_folder(), f"{self.document.name or 'project'}{PROJECT_SUFFIX}")
            path, _ = QFileDialog.getSaveFileName(self, "Save project", default, f"Projects (*{PROJECT_SUFFIX})")
            if not path:
                return False
        if not is_project_file(path):
            path += PROJECT_SUFFIX
        if not self.write_project(path):
            return False
        self.project_path = path
        self._add_recent(path)
        self.setWindowTitle(f"{Path(path).stem} — {APP_NAME}")
        self.statusBar().showMessage(f"Saved the project to {path}.", 5000)
        return True

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_folder(),
                                              f"Projects (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(path)

    def open_project(self, path: str, remember: bool = True) -> bool:
        """Open a project file; a bad file shows a one-sentence dialog and returns False."""
        from app.project import ProjectError, load_project

        try:
            with _WaitCursor():
                project = load_project(str(path))
        except ProjectError as error:
            self.show_error("Could not open project", str(error))
            return False
        self.cancel_generation()
        self.apply_project(project)
        if remember:
            self.project_path = str(path)
            self._add_recent(str(path))
            self.setWindowTitle(f"{Path(path).stem} — {APP_NAME}")
        self.statusBar().showMessage(f"Opened the project {Path(path).name}.", 8000)
        return True

    def apply_project(self, project) -> None:
        """Make a loaded Project the open document (masks that do not fit the preview grid are dropped)."""
        document = self.document
        photo_path = project.settings.get("photo_path") or None
        document.set_photo(project.image, project.name or "project", photo_path, project.motion)
        grid = document.preview_image.shape[:2]
        fits = lambda mask: mask if mask is not None and mask.shape == grid else None  # noqa: E731
        if project.brush_mask is not None or project.freeze_mask is not None:
            document.set_masks(fits(project.brush_mask), fits(project.freeze_mask))
        if project.gains is not None and project.gains.shape == document.gains.shape:
            document.set_edits(project.gains, project.magnitude, project.slowdown)
        self.brush_panel.set_brush_settings(project.brush)
        self.undo_stack.clear()

    def autosave_path(self) -> Path:
        return self.autosave_dir / AUTOSAVE_NAME

    def autosave(self) -> bool:
        """Save the open document to the autosave folder (quietly; nothing open, nothing saved)."""
        from app.project import save_project

        if not self.document.has_photo:
            return False
        try:
            self.autosave_dir.mkdir(parents=True, exist_ok=True)
            save_project(str(self.autosave_path()), self.current_project())
        except (ValueError, OSError) as error:
            self.statusBar().showMessage(f"Autosave failed: {error_sentence(error)}", 8000)
            return False
        return True

    def has_unsaved_autosave(self) -> bool:
        """True when an autosave is newer than the last clean exit (the studio did not close cleanly)."""
        path = self.autosave_path()
        if not path.is_file():
            return False
        try:
            clean_exit = float(self.settings.value(CLEAN_EXIT_KEY, 0.0) or 0.0)
        except (TypeError, ValueError):
            clean_exit = 0.0
        return path.stat().st_mtime > clean_exit

    def offer_autosave_restore(self) -> bool:
        """Ask to restore an autosave newer than the last clean exit; True when one was restored."""
        if not self.has_unsaved_autosave():
            return False
        answer = QMessageBox.question(self, APP_NAME, "Aeolus did not close cleanly last time. "
                                      "Restore the autosaved project?", QMessageBox.Yes | QMessageBox.No,
                                      QMessageBox.Yes)
        if answer != QMessageBox.Yes:
            return False
        return self.open_project(str(self.autosave_path()), remember=False)

    def _preferred_model_path(self) -> Path:
        from app.ui.generate_panel import MOTION_MODEL_NAME

        folder = self.preferences.model_folder
        return Path(folder) / MOTION_MODEL_NAME if folder else default_model_path()

    def compute_device(self) -> str:
        """'cuda' or 'cpu' from the device preference."""
        from app.ui.preferences import resolve_device

        return resolve_device(self.preferences.device)

    def show_preferences(self):
        """The Preferences dialog (modal); applies and stores the values when accepted."""
        from app.ui.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.preferences, self)
        if dialog.exec():
            self.set_preferences(dialog.values())
        return dialog

    def set_preferences(self, preferences) -> None:
        """Store preferences in the settings and apply them (model folder, device, export format)."""
        from app.ui.preferences import write_preferences

        old_model_path = self.model_path
        self.preferences = preferences
        write_preferences(self.settings, preferences)
        self.model_path = self._preferred_model_path()
        if self.model_path != old_model_path:
            self.motion_model = None  # load the new folder's model on the next Generate
        self._update_model_name()

    # --- the document changed ----------------------------------------------------------------------

    def _on_photo_changed(self) -> None:
        document = self.document
        self.setWindowTitle(f"{document.name} — {APP_NAME}")
        self.undo_stack.clear()  # edits of the previous photo do not apply to this one
        self.xt_view.set_photo(document.preview_image)
        self._on_motion_changed()
        self._update_enabled()

    def _on_motion_changed(self) -> None:
        document = self.document
        self.viewport.set_scene(document.preview_image, document.display_motion())
        self.bands_panel.set_motion(document.display_motion(), document.gains, document.magnitude, document.slowdown)
        self._show_masks()
        self._on_edits_changed()

    def _on_bands_edited(self) -> None:
        """A slider moved: apply it as one undoable step (drags of one control merge)."""
        document = self.document
        if document.motion is None:
            return
        before = document.snapshot()
        gains, magnitude, slowdown = self.bands_panel.gains(), self.bands_panel.magnitude(), self.bands_panel.slowdown()
        document.set_edits(gains, magnitude, slowdown)
        after = document.snapshot()
        if after.same_as(before):
            return
        self.undo_stack.push(StateCommand(document, before, after, *_edit_label(before, after)))

    def replace_motion(self, motion, text: str = "Generate") -> None:
        """Give the document a new base motion as one undoable step (undo brings the old one back)."""
        document = self.document
        before = document.snapshot()
        document.set_motion(motion)
        self.undo_stack.push(StateCommand(document, before, document.snapshot(), text))

    def _on_edits_changed(self) -> None:
        document = self.document
        self.bands_panel.show_values(document.gains, document.magnitude, document.slowdown)
        self.viewport.set_gains(document.effective_gains())
        self.viewport.set_slowdown(document.slowdown)
        self.xt_view.set_motion(document.display_motion(), document.effective_gains(), document.slowdown)

    # --- painting: motion brush and freeze mask ---------------------------------------------------

    def _on_brush_panel_changed(self) -> None:
        self.viewport.tool = self.brush_panel.tool()
        self._show_masks()

    def _show_masks(self, extra=None) -> None:
        """Draw the masks (and the stroke being painted) over the scene when Show masks is on."""
        from app.ui.brush import mask_overlay

        document = self.document
        if document.preview_image is None:
            return
        rgba = None
        if self.brush_panel.show_masks() or extra is not None:
            brush, freeze = document.brush_mask, document.freeze_mask
            if extra is not None and not self.brush_panel.erasing():
                import numpy as np

                if self.brush_panel.tool() == "brush":
                    brush = extra if brush is None else np.maximum(brush, extra)
                else:
                    freeze = extra if freeze is None else np.maximum(freeze, extra)
            rgba = mask_overlay(brush, freeze, *document.preview_image.shape[:2])
        self.viewport.set_mask_overlay(rgba)

    def _on_stroke_point(self, x: float, y: float) -> None:
        import numpy as np

        from app.ui.brush import stamp_segment

        if self.document.preview_image is None:
            return
        if self.stroke_mask is None:
            self.stroke_mask = np.zeros(self.document.preview_image.shape[:2], np.float32)
            self._stroke_previous = (x, y)
        radius, hardness = self.brush_panel.radius(), self.brush_panel.hardness()
        stamp_segment(self.stroke_mask, self._stroke_previous, (x, y), radius, hardness)
        self._stroke_previous = (x, y)
        self._show_masks(extra=self.stroke_mask)

    def _on_stroke_finished(self) -> None:
        stroke, self.stroke_mask = self.stroke_mask, None
        if stroke is not None:
            self.apply_stroke(stroke, self.brush_panel.tool(), self.brush_panel.erasing())

    def apply_stroke(self, stroke, tool: str, erase: bool = False) -> None:
        """Turn a painted (h, w) stroke into one undoable edit (see app/ui/brush.py)."""
        import numpy as np

        from app.core.procedural import brush_motion
        from app.core.spectral import Motion, mask_motion

        document = self.document
        if document.motion is None or not np.any(stroke):
            return
        stroke = np.asarray(stroke, np.float32)
        before = document.snapshot()
        base, brush_mask, freeze_mask = document.motion, document.brush_mask, document.freeze_mask
        if tool == "brush" and erase:
            base = mask_motion(base, 1.0 - stroke)
            brush_mask = None if brush_mask is None else brush_mask * (1.0 - stroke)
            text = "Erase Motion"
        elif tool == "brush":
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
            try:
                painted = brush_motion(stroke, self.brush_panel.brush_settings(seed), base.num_bands,
                                       base.num_frames, base.fps)
            except ValueError as error:
                self.show_error("Motion brush", error_sentence(error))
                self._show_masks()
                return
            base = Motion(base.spectrum + painted.spectrum, base.num_frames, base.fps)
            brush_mask = stroke if brush_mask is None else np.maximum(brush_mask, stroke)
            text = "Motion Brush"
        elif erase:
            freeze_mask = None if freeze_mask is None else freeze_mask * (1.0 - stroke)
            text = "Erase Freeze"
        else:
            freeze_mask = stroke if freeze_mask is None else np.maximum(freeze_mask, stroke)
            text = "Freeze"
        document.motion = base
        document.set_masks(brush_mask, freeze_mask)
        self.undo_stack.push(StateCommand(document, before, document.snapshot(), text))
        self.statusBar().showMessage(f"{text}: undo with Ctrl+Z.", 3000)

    def _on_scanline_picked(self, row: int) -> None:
        self.xt_view.set_row(row)
        self.statusBar().showMessage(f"X-t scanline at row {row}.", 3000)

    def _on_fps(self, fps: float) -> None:
        self.fps_label.setText(f"{fps:.0f} fps")
        self._update_device_label()

    def _update_device_label(self) -> None:
        from app.ui.export_dialog import export_device

        self.device_label.setText(f"Preview: {self.viewport.renderer_name} · Generate and export: {export_device()}")

    def _update_enabled(self) -> None:
        has_photo = self.document.has_photo
        for action in (self.export_action, self.save_motion_action, self.open_motion_action, self.generate_action,
                       self.save_project_action, self.save_project_as_action):
            action.setEnabled(has_photo)
        self.generate_panel.generate_button.setEnabled(has_photo and not self.is_generating())

    def _fall_back_to_cpu_viewport(self, message: str) -> None:
        """The GL viewport could not draw: swap in the CPU one and carry on."""
        if isinstance(self.viewport, CpuViewport):
            return
        self._install_viewport(CpuViewport(self))
        if self.document.has_photo:
            self._on_motion_changed()
        self._update_device_label()
        self.statusBar().showMessage(f"{message} Previews now render on the CPU.", 10000)

    # --- generating -------------------------------------------------------------------------------

    def _update_model_name(self) -> None:
        if self.motion_model is not None:
            self.generate_panel.set_model_name("loaded")
        elif Path(self.model_path).is_file():
            self.generate_panel.set_model_name(Path(self.model_path).name)
        else:
            self.generate_panel.set_model_name(None)

    def set_motion_model(self, model) -> None:
        """Generate with this MotionModel from now on (None: the shipped file, else the brush)."""
        self.motion_model = model
        self._update_model_name()

    def is_generating(self) -> bool:
        return self.generation_worker is not None and self.generation_worker.is_running()

    def start_generation(self) -> None:
        """Generate a motion for the open photo in a worker; the current motion stays until it is done."""
        if not self._require_photo() or self.is_generating():
            return
        image = self.document.preview_image
        photo_serial = self.document.photo_serial
        settings = self.generate_panel.settings()
        model, model_path = self.motion_model, Path(self.model_path)
        device = self.compute_device()

        def job(report):
            loaded = model
            if loaded is None and model_path.is_file():
                from app.diffusion.weights import load_motion_model

                loaded = load_motion_model(model_path, device)
            return generate_motion(image, settings, loaded, report), loaded

        self.generation_worker = Worker(job, name="generate")
        self.generation_worker.progress.connect(self.generate_panel.set_progress)
        self.generation_worker.preview.connect(lambda motion: self._on_generation_preview(motion, photo_serial))
        self.generation_worker.finished.connect(lambda result: self._on_generated(result, photo_serial))
        self.generation_worker.failed.connect(self._on_generation_failed)
        self.generation_worker.cancelled.connect(self._on_generation_cancelled)
        self.generate_panel.set_running(True)
        uses = "the motion model" if (model is not None or model_path.is_file()) else "the motion brush"
        self.statusBar().showMessage(f"Generating with {uses} on the {device.upper()}… (Esc cancels)")
        self.generation_worker.start()

    def cancel_generation(self) -> None:
        if self.is_generating():
            self.generation_worker.cancel()
            self.statusBar().showMessage("Cancelling…")

    def _on_generated(self, result, photo_serial: int) -> None:
        motion, model = result
        if model is not None:
            self.motion_model = model
        self.generate_panel.set_running(False)
        self._update_enabled()
        if photo_serial != self.document.photo_serial:
            return  # made for a photo that is no longer open
        self.replace_motion(motion, "Generate")
        self.statusBar().showMessage("Generated a new motion: shape it with the band sliders.", 8000)

    def _on_generation_preview(self, motion, photo_serial: int) -> None:
        """Play the partially denoised motion while sampling goes on (the document is unchanged)."""
        if photo_serial == self.document.photo_serial and self.is_generating():
            self.viewport.set_scene(self.document.preview_image, motion)

    def _restore_scene(self) -> None:
        """Show the document's motion again after a preview that did not become it."""
        if self.document.motion is not None:
            self._on_motion_changed()

    def _on_generation_failed(self, message: str) -> None:
        self._restore_scene()
        self.generate_panel.set_running(False)
        self._update_enabled()
        self.show_error("Generation failed", message)

    def _on_generation_cancelled(self) -> None:
        self._restore_scene()
        self.generate_panel.set_running(False)
        self._update_enabled()
        self.statusBar().showMessage("Generation cancelled; the motion is unchanged.", 8000)

    # --- playback and overlays --------------------------------------------------------------------

    def toggle_playing(self) -> None:
        playing = self.viewport.toggle_playing()
        self.play_action.setChecked(playing)
        self.statusBar().showMessage("Playing." if playing else "Paused: drag the scene to poke it.", 3000)

    def rewind(self) -> None:
        self.viewport.playback.phase = 0.0
        self.viewport.redraw()

    def set_overlay(self, mode: str) -> None:
        self.viewport.set_overlay(mode)
        self.overlay_actions[mode].setChecked(True)
        index = self.overlay_combo.findData(mode)
        if self.overlay_combo.currentIndex() != index:
            self.overlay_combo.setCurrentIndex(index)

    def cycle_overlay(self) -> None:
        modes = [mode for mode, _ in OVERLAY_LABELS]
        self.set_overlay(modes[(modes.index(self.viewport.overlay_mode) + 1) % len(modes)])

    # --- export -------------------------------------------------------------------------------------

    def open_export_dialog(self):
        """Show the export dialog (non-blocking); returns it."""
        from app.ui.export_dialog import ExportDialog

        if not self._require_photo():
            return None
        document = self.document
        suffix = self.preferences.export_format
        default_path = os.path.join(self._last_folder(), f"{document.name or 'loop'}-loop.{suffix}")
        dialog = ExportDialog(document.image, document.banded_motion(), default_path,
                              magnification=document.magnitude, slowdown=document.slowdown, parent=self)
        format_index = dialog.format_combo.findData(self.preferences.export_format)
        if format_index >= 0:
            dialog.format_combo.setCurrentIndex(format_index)
        dialog.export_finished.connect(self._on_exported)
        dialog.export_cancelled.connect(
            lambda: self.statusBar().showMessage("Export cancelled; nothing was written.", 8000))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _on_exported(self, path: str) -> None:
        from app.render.export import ExportError, read_frame_count

        try:
            count = f" ({read_frame_count(path)} frames)"
        except (ExportError, OSError, ValueError):
            count = ""
        self.statusBar().showMessage(f"Wrote {path}{count}.", 10000)

    # --- help and closing -----------------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HELP)

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<b>{APP_NAME}</b>: a cinemagraph studio after <i>Generative Image Dynamics</i> "
                          "(Li et al., CVPR 2024). Open a photo, generate how it sways, shape the motion "
                          "band by band, poke it, and export a seamless loop.")

    def closeEvent(self, event) -> None:
        self.autosave_timer.stop()
        self.autosave()
        self.settings.setValue(CLEAN_EXIT_KEY, time.time())
        self.settings.sync()
        for worker in (self.generation_worker, getattr(self.export_dialog, "worker", None)):
            if worker is not None and worker.is_running():
                worker.cancel()
                worker.wait(5000)
        self.viewport.timer.stop()
        super().closeEvent(event)


def _edit_label(before, after) -> tuple[str, str]:
    """(undo text, merge key) for a slider edit: which control moved."""
    if before.magnitude != after.magnitude:
        return "Magnitude", "magnitude"
    if before.slowdown != after.slowdown:
        return "Speed", "speed"
    if before.gains.shape == after.gains.shape:
        changed = [int(band) for band in (before.gains != after.gains).nonzero()[0]]
        if len(changed) == 1:
            return f"Band {changed[0]}", f"band {changed[0]}"
    return "Bands", None


class _WaitCursor:
    """Busy cursor while a short synchronous job runs."""

    def __enter__(self):
        QApplication.setOverrideCursor(Qt.WaitCursor)
        return self

    def __exit__(self, *exc):
        QApplication.restoreOverrideCursor()
        return False


# --- the application ------------------------------------------------------------------------------


def install_excepthook(window: QMainWindow) -> None:
    """Unexpected errors become a one-sentence dialog (the traceback goes to stderr only)."""
    previous = sys.excepthook
    state = {"showing": False}

    def hook(kind, value, trace):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, trace)
            return
        traceback.print_exception(kind, value, trace, file=sys.stderr)
        if state["showing"]:
            return
        state["showing"] = True
        try:
            QMessageBox.critical(window, APP_NAME, error_sentence(value))
        finally:
            state["showing"] = False

    sys.excepthook = hook


def start_studio(image_path: str | None = None, settings: QSettings | None = None) -> MainWindow:
    """Show a studio window and, once it is up, open image_path (or the default example)."""
    from app.pipeline import DEFAULT_EXAMPLE, bundled_examples

    window = MainWindow(settings=settings)
    window.show()
    if window.offer_autosave_restore():
        return window
    if image_path:
        QTimer.singleShot(0, lambda: window.open_path(image_path))
    elif DEFAULT_EXAMPLE in bundled_examples():
        QTimer.singleShot(0, lambda: window.open_example(DEFAULT_EXAMPLE))
    return window


def leave_a_core_for_the_interface() -> None:
    """torch uses all cores but one: on a small machine a torch pool that fills every core makes
    the GUI thread (and torch itself, spinning at its barriers) stall."""
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - 1)))


def run_app(image_path: str | None = None) -> int:
    """Start the studio (opening image_path, or the default example) and run until it is closed."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    leave_a_core_for_the_interface()
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    window = start_studio(image_path)
    install_excepthook(window)
    return int(app.exec())
