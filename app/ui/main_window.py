"""The studio window: open a photo, generate its motion, shape it, play and poke it, export a loop.

Layout: the viewport in the middle (OpenGL where the platform has it, a CPU fallback otherwise),
the Generate and Brush panels on the right (brush.py: poke, motion brush or freeze tool), the band
sliders with their amplitude spectrum and the X-t slice at the bottom. One Document (document.py)
holds the photo, the base motion and the edits; the panels edit it and redraw when it says it changed.

The window builds the widgets, actions and menus and wires four controllers:

    files       file_actions.py  photos, examples, motions, recent files, drag and drop
    projects    projects.py      .aeolus projects and autosave
    generation  generation.py    the Generate job in a worker
    strokes     strokes.py       brush and freeze strokes -> Document.apply_stroke, one undo step each
    flow        flow_tool.py     the Flow tool: arrows, anchors, fluid mask -> Document.flow_hints

    File      Open… (Ctrl+O), Open Project… (Ctrl+Alt+O), Open Recent, Examples, Save Project
              (Ctrl+S), Save Project As… (Ctrl+Shift+S), Open Motion…, Save Motion… (Ctrl+Alt+S),
              Export… (Ctrl+E), Preferences…, Quit (Ctrl+Q); image files, .aeolus projects and .npz
              motions can be dropped on the window.
    Edit      Undo (Ctrl+Z), Redo (Ctrl+Shift+Z): sliders, new motions, brush and freeze strokes
    Motion    Generate (Ctrl+G), Cancel (Esc), Reset bands (R)
    View      Play/Pause (Space), Rewind (Home), overlays (M cycles: none, magnitude, mask), panels

A user's mistake (a bad file) is a dialog with one sentence and the studio stays up; unexpected
errors reach a sys.excepthook that shows a dialog instead of a traceback (studio.run_app installs it;
run_app(image_path) is what `python -m app [IMAGE]` calls).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtGui import QIcon, QUndoStack
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QDockWidget, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea,
)

from app.paths import ICONS_DIR
from app.ui.bands import BandsPanel
from app.ui.brush import BrushPanel
from app.ui.document import Document
from app.ui.flow_panel import FlowPanel
from app.ui.flow_tool import FlowController
from app.ui.file_actions import FileActions, is_image_file, is_project_file  # noqa: F401 (re-exported)
from app.ui.generate_panel import GeneratePanel, default_model_path
from app.ui.generation import GenerationController
from app.ui.exporting import ExportController
from app.ui.keys import SpinBoxShortcuts
from app.ui.menus import OVERLAY_LABELS, build_actions, build_menus_and_toolbar, show_about, show_shortcuts
from app.ui.projects import AUTOSAVE_INTERVAL_MS, AUTOSAVE_NAME, CLEAN_EXIT_KEY, ProjectController  # noqa: F401
from app.ui.strokes import StrokeController
from app.ui.undo import StateCommand
from app.ui.viewport import CpuViewport, create_viewport
from app.ui.xt_view import XtView

APP_NAME = "Aeolus"
ICON_PATH = ICONS_DIR / "aeolus.svg"
DOCK_MIN_HEIGHT = 60  # a dock can shrink to this and scroll its panel
SMALLEST_SCREEN = (1280, 720)  # the window's minimum size fits this (docks scroll)
START_SIZE = (1320, 880)  # the first window size, shrunk to the screen
def autosave_folder() -> Path:
    """Where autosaves go: the platform's application data folder (AppDataLocation)."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "autosave"


def _forward(controller: str, name: str):
    """A window method that calls self.<controller>.<name> (the window's public interface)."""
    def method(self, *args, **kwargs):
        return getattr(getattr(self, controller), name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Calls {controller}.{name} (see app/ui/{controller}.py)."
    return method


def _forward_attribute(controller: str, name: str) -> property:
    """A window attribute that is self.<controller>.<name>."""
    return property(lambda self: getattr(getattr(self, controller), name),
                    lambda self, value: setattr(getattr(self, controller), name, value))


class MainWindow(QMainWindow):
    """The studio; see the module docstring."""

    app_name = APP_NAME

    def __init__(self, settings: QSettings | None = None, motion_model=None, model_path=None, viewport=None,
                 autosave_dir=None):
        """settings: where recent files and preferences are kept (default: the user's Aeolus settings).
        motion_model: a MotionModel to generate with; else the file at model_path (default: the
        preferred model folder's motion_model.safetensors) is loaded on first use when it exists; else
        Generate paints the motion brush. viewport: a viewport widget instead of create_viewport()'s
        choice. autosave_dir: where autosaves go (default autosave_folder())."""
        from app.ui.preferences import read_preferences

        super().__init__()
        self.settings = settings if settings is not None else QSettings(APP_NAME, APP_NAME)
        self.preferences = read_preferences(self.settings)
        self.document = Document(self)
        self.document.working_side = self.preferences.working_side
        self.undo_stack = QUndoStack(self)
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(*self._start_size())
        if ICON_PATH.is_file():
            self.setWindowIcon(QIcon(str(ICON_PATH)))

        self._build_panels()
        self.files = FileActions(self)
        self.projects = ProjectController(self, autosave_dir if autosave_dir is not None else autosave_folder())
        self.generation = GenerationController(self, motion_model,
                                               model_path if model_path is not None else self._preferred_model_path())
        self.strokes = StrokeController(self)
        self.flow = FlowController(self)
        self.exporting = ExportController(self)
        self.viewport = None
        self._install_viewport(viewport if viewport is not None else create_viewport(self))
        self._build_status_bar()
        self._update_working_size_label()
        build_actions(self)
        build_menus_and_toolbar(self)
        self.document.photo_changed.connect(self._on_photo_changed)
        self.document.motion_changed.connect(self.show_motion)
        self.document.edits_changed.connect(self._on_edits_changed)
        self.generation.update_model_name()
        self.update_enabled()
        self.spin_box_shortcuts = SpinBoxShortcuts(self)
        for spin_box in self.findChildren(QAbstractSpinBox):
            spin_box.installEventFilter(self.spin_box_shortcuts)
        self.viewport.setFocus(Qt.OtherFocusReason)  # Space, Home, M and R work from the start
        self.statusBar().showMessage("Open a photo (Ctrl+O), drop one here, or pick one from Examples.")

    def _start_size(self) -> tuple[int, int]:
        """START_SIZE, or the screen's available area when that is smaller."""
        screen = QApplication.primaryScreen()
        if screen is None:
            return START_SIZE
        available = screen.availableGeometry()
        return min(START_SIZE[0], available.width()), min(START_SIZE[1], available.height())

    # the window's interface, answered by its controllers
    open_path = _forward("files", "open_path")
    open_photo = _forward("files", "open_photo")
    open_example = _forward("files", "open_example")
    open_motion_file = _forward("files", "open_motion_file")
    recent_files = _forward("files", "recent_files")
    open_project = _forward("projects", "open_project")
    apply_project = _forward("projects", "apply_project")
    current_project = _forward("projects", "current_project")
    save_project = _forward("projects", "save_project")
    save_project_as = _forward("projects", "save_project_as")
    autosave = _forward("projects", "autosave")
    autosave_path = _forward("projects", "autosave_path")
    offer_autosave_restore = _forward("projects", "offer_autosave_restore")
    start_generation = _forward("generation", "start")
    cancel_generation = _forward("generation", "cancel")
    is_generating = _forward("generation", "is_running")
    set_motion_model = _forward("generation", "set_motion_model")
    apply_stroke = _forward("strokes", "apply_stroke")
    project_path = _forward_attribute("projects", "project_path")
    autosave_dir = _forward_attribute("projects", "autosave_dir")
    motion_model = _forward_attribute("generation", "motion_model")
    model_path = _forward_attribute("generation", "model_path")
    generation_worker = _forward_attribute("generation", "worker")
    open_export_dialog = _forward("exporting", "open_dialog")
    export_folder = _forward("exporting", "export_folder")
    remember_export_folder = _forward("exporting", "remember_export_folder")
    export_dialog = _forward_attribute("exporting", "dialog")

    # --- building ------------------------------------------------------------------------------

    def _install_viewport(self, viewport) -> None:
        old = self.viewport
        self.viewport = viewport
        viewport.fps_measured.connect(self._on_fps)
        viewport.scanline_picked.connect(self._on_scanline_picked)
        viewport.poke_settled.connect(lambda: self.statusBar().showMessage("The scene has settled.", 3000))
        viewport.failed.connect(self._fall_back_to_cpu_viewport)
        self.strokes.connect_viewport(viewport)
        self.flow.connect_viewport(viewport)
        viewport.device = self.compute_device()
        viewport.tool = getattr(old, "tool", "poke")
        viewport.setFocusPolicy(Qt.StrongFocus)
        self.setCentralWidget(viewport)
        if old is not None:
            old.timer.stop()
            old.deleteLater()

    def _build_panels(self) -> None:
        self.generate_panel = GeneratePanel(self)
        self.bands_panel = BandsPanel(self)
        self.bands_panel.edited.connect(self._on_bands_edited)
        self.xt_view = XtView(self)
        self.brush_panel = BrushPanel(self)
        self.generate_dock = self._dock("Generate", self.generate_panel, Qt.RightDockWidgetArea)
        self.bands_dock = self._dock("Bands", self.bands_panel, Qt.BottomDockWidgetArea)
        self.xt_dock = self._dock("X-t slice", self.xt_view, Qt.BottomDockWidgetArea)
        self.brush_dock = self._dock("Brush", self.brush_panel, Qt.RightDockWidgetArea)
        self.flow_panel = FlowPanel(self)
        self.flow_dock = self._dock("Flow", self.flow_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.brush_dock, self.flow_dock)
        self.brush_dock.raise_()
        self.splitDockWidget(self.bands_dock, self.xt_dock, Qt.Horizontal)
        self.resizeDocks([self.bands_dock, self.xt_dock], [760, 560], Qt.Horizontal)
        self.resizeDocks([self.bands_dock], [330], Qt.Vertical)
        # the right column as wide and the Generate panel as tall as they ask, when the screen has room
        scrollbar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        right_width = max(panel.sizeHint().width() for panel in (self.generate_panel, self.brush_panel, self.flow_panel))
        self.resizeDocks([self.generate_dock], [right_width + scrollbar + 8], Qt.Horizontal)
        self.resizeDocks([self.generate_dock], [self.generate_panel.sizeHint().height() + 8], Qt.Vertical)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        """A dock holding widget in a scroll area: on a short screen the panel scrolls instead of
        holding the window taller than the screen (the studio fits 1280x720)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        scroll = QScrollArea(dock)
        scroll.setObjectName(f"{title} scroll")
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setMinimumHeight(DOCK_MIN_HEIGHT)
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable
                         | QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.fps_label = QLabel("", self)
        self.device_label = QLabel("", self)
        self.working_size_label = QLabel("", self)
        self.working_size_label.setToolTip("Strokes, the live preview and generation use this working copy; "
                                           "exports use the full photo (Preferences: Working size)")
        self.statusBar().addPermanentWidget(self.working_size_label)
        self.statusBar().addPermanentWidget(self.fps_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self._update_device_label()

    # --- messages and small helpers ---------------------------------------------------------------

    def show_error(self, title: str, message: str) -> None:
        """A one-sentence error in a dialog; the studio carries on."""
        self.statusBar().showMessage(message, 8000)
        QMessageBox.warning(self, title, message)

    def require_photo(self) -> bool:
        """True when a photo is open; else a dialog says to open one."""
        if self.document.has_photo:
            return True
        self.show_error(APP_NAME, "Open a photo first (Ctrl+O).")
        return False

    def set_title(self, name: str) -> None:
        self.setWindowTitle(f"{name} — {APP_NAME}")

    def dragEnterEvent(self, event) -> None:
        if self.files.accepts([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        self.files.drop(paths)

    # --- preferences and device ---------------------------------------------------------------------

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

        self.preferences = preferences
        write_preferences(self.settings, preferences)
        self.document.working_side = preferences.working_side
        self._update_working_size_label()
        self.generation.set_model_path(self._preferred_model_path())
        if self.viewport.device != self.compute_device():
            self.viewport.device = self.compute_device()
            if self.document.has_photo:
                self.show_motion()
        self._update_device_label()

    # --- the document changed ----------------------------------------------------------------------

    def _update_working_size_label(self) -> None:
        document = self.document
        if not document.has_photo:
            self.working_size_label.setText(f"Working size: {document.working_side} px long side")
            return
        height, width = document.preview_image.shape[:2]
        full_height, full_width = document.image.shape[:2]
        scaled = "" if (height, width) == (full_height, full_width) else f" of {full_width}x{full_height}"
        self.working_size_label.setText(f"Working at {width}x{height}{scaled}")

    def set_job_running(self, running: bool) -> None:
        """A long job (Generate, Export) starts or ends: the preview plays slower meanwhile, leaving
        the cores to the job (see viewport.BUSY_FRAME_INTERVAL_MS)."""
        from app.ui.viewport import BUSY_FRAME_INTERVAL_MS, FRAME_INTERVAL_MS

        self.viewport.timer.setInterval(BUSY_FRAME_INTERVAL_MS if running else FRAME_INTERVAL_MS)

    def confirm_discard(self) -> bool:
        """Before another photo or project replaces this one: True to go on. Unsaved edits ask
        Save / Discard / Cancel; Save saves the project (and goes on only if that worked)."""
        if not self.document.has_photo or self.undo_stack.isClean():
            return True
        answer = self.ask_to_save_changes()
        if answer == QMessageBox.Save:
            return self.projects.save_project()
        return answer == QMessageBox.Discard

    def ask_to_save_changes(self):
        """The question itself: QMessageBox.Save, Discard or Cancel."""
        name = self.document.name or "this photo"
        return QMessageBox.question(self, APP_NAME, f"Save the changes to {name} before opening another?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)

    def _on_photo_changed(self) -> None:
        self.set_title(self.document.name)
        self.undo_stack.clear()  # edits of the previous photo do not apply to this one
        self.generate_panel.reset_progress()
        self._update_working_size_label()
        self.viewport.setFocus(Qt.OtherFocusReason)
        self.xt_view.set_photo(self.document.preview_image)
        self.show_motion()
        self.update_enabled()

    def show_motion(self) -> None:
        """Show the document's motion in the viewport, the bands and the X-t slice."""
        document = self.document
        self.viewport.set_scene(document.preview_image, document.display_motion())
        self.bands_panel.set_motion(document.display_motion(), document.gains, document.magnitude, document.slowdown)
        self.strokes.show_masks()
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

    def _on_scanline_picked(self, row: int) -> None:
        self.xt_view.set_row(row)
        self.statusBar().showMessage(f"X-t scanline at row {row}.", 3000)

    def _on_fps(self, fps: float) -> None:
        self.fps_label.setText(f"{fps:.0f} fps")
        self._update_device_label()

    def _update_device_label(self) -> None:
        self.device_label.setText(f"Preview: {self.viewport.renderer_name} · "
                                  f"Generate and export: {self.compute_device().upper()}")

    def update_enabled(self) -> None:
        has_photo = self.document.has_photo
        for action in (self.export_action, self.save_motion_action, self.open_motion_action, self.generate_action,
                       self.save_project_action, self.save_project_as_action):
            action.setEnabled(has_photo)
        self.generate_panel.generate_button.setEnabled(has_photo and not self.generation.is_running())

    def _fall_back_to_cpu_viewport(self, message: str) -> None:
        """The GL viewport could not draw: swap in the CPU one and carry on."""
        if isinstance(self.viewport, CpuViewport):
            return
        self._install_viewport(CpuViewport(self))
        if self.document.has_photo:
            self.show_motion()
            self.flow.show_flow()
        self._update_device_label()
        self.statusBar().showMessage(f"{message} Previews now render on the CPU.", 10000)

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

    def view_state(self) -> dict:
        """What a project keeps of the view: the X-t scanline row, the overlay, playing or paused."""
        return {"xt_row": int(self.xt_view.row()), "overlay": self.viewport.overlay_mode,
                "playing": bool(self.viewport.is_playing())}

    def set_view_state(self, view: dict) -> None:
        """Put back a project's view state; unknown or unfitting values are left as they are."""
        if isinstance(view.get("xt_row"), int):
            self.xt_view.set_row(view["xt_row"])
        if view.get("overlay") in dict(OVERLAY_LABELS):
            self.set_overlay(view["overlay"])
        if isinstance(view.get("playing"), bool) and view["playing"] != self.viewport.is_playing():
            self.toggle_playing()

    def cycle_overlay(self) -> None:
        modes = [mode for mode, _ in OVERLAY_LABELS]
        self.set_overlay(modes[(modes.index(self.viewport.overlay_mode) + 1) % len(modes)])

    # --- help and closing -----------------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        show_shortcuts(self)

    def show_about(self) -> None:
        show_about(self)

    def closeEvent(self, event) -> None:
        self.projects.close()
        for worker in (self.generation.worker, self.exporting.worker()):
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
