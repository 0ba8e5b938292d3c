"""The studio window's actions, menus and toolbar (built onto a MainWindow; slots live on the window
and its controllers), and its help texts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMessageBox, QToolBar

OVERLAY_LABELS = (("none", "No overlay"), ("magnitude", "Motion magnitude"), ("mask", "Motion mask"))
SHORTCUTS_HELP = """<table>
<tr><td><b>Ctrl+O</b></td><td>Open a photo</td></tr>
<tr><td><b>Ctrl+G</b></td><td>Generate a motion</td></tr>
<tr><td><b>Esc</b></td><td>Cancel generating</td></tr>
<tr><td><b>Ctrl+E</b></td><td>Export the loop</td></tr>
<tr><td><b>Ctrl+S</b></td><td>Save the project</td></tr>
<tr><td><b>Ctrl+Shift+S</b></td><td>Save the project as…</td></tr>
<tr><td><b>Ctrl+Z / Ctrl+Y or Ctrl+Shift+Z</b></td><td>Undo / redo</td></tr>
<tr><td><b>Space</b></td><td>Play / pause</td></tr>
<tr><td><b>Home</b></td><td>Back to the loop's start</td></tr>
<tr><td><b>M</b></td><td>Cycle overlays: none, magnitude, mask</td></tr>
<tr><td><b>R</b></td><td>Reset the band sliders</td></tr>
<tr><td><b>Drag</b></td><td>Pull the scene; release to let it swing (Poke tool); paint (Brush, Freeze)</td></tr>
<tr><td><b>Shift+click</b></td><td>Pick the X-t scanline</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>Quit</td></tr>
</table>"""
ABOUT_TEXT = ("<b>Aeolus</b>: a cinemagraph studio after <i>Generative Image Dynamics</i> "
              "(Li et al., CVPR 2024). Open a photo, generate how it sways, shape the motion "
              "band by band, poke it, and export a seamless loop.")


def _action(window, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    """An action on the window. Shortcuts with Ctrl or Alt work application-wide (also from a floating
    dock or with focus in any panel); single keys (Space, M, R, Home, Esc) work within the window."""
    action = QAction(text, window)
    if shortcut is not None:
        sequence = QKeySequence(shortcut)
        action.setShortcut(sequence)
        modifiers = sequence[0].keyboardModifiers() if sequence.count() else Qt.NoModifier
        command = bool(modifiers & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier))
        action.setShortcutContext(Qt.ApplicationShortcut if command else Qt.WindowShortcut)
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())  # slots take no checked flag
    window.addAction(action)
    return action


def build_actions(window) -> None:
    """The window's actions, as attributes of the window (open_action, ...)."""
    window.open_action = _action(window, "&Open Photo…", window.files.open_dialog, QKeySequence.Open, "Open a photo")
    window.open_motion_action = _action(window, "Open &Motion…", window.files.open_motion_dialog, "Ctrl+Shift+O",
                                        "Load a motion (.npz) for the open photo")
    window.save_motion_action = _action(window, "Save &Motion…", window.files.save_motion_dialog, "Ctrl+Alt+S",
                                        "Save the edited motion as .npz")
    window.open_project_action = _action(window, "Open &Project…", window.projects.open_project_dialog, "Ctrl+Alt+O",
                                         "Open an Aeolus project (.aeolus)")
    window.save_project_action = _action(window, "&Save Project", window.projects.save_project, QKeySequence.Save,
                                         "Save the photo, motion, masks and sliders as a project")
    window.save_project_as_action = _action(window, "Save Project &As…", window.projects.save_project_as,
                                            "Ctrl+Shift+S", "Save the project under a new name")
    window.preferences_action = _action(window, "Pre&ferences…", window.show_preferences, QKeySequence.Preferences)
    window.export_action = _action(window, "&Export…", window.open_export_dialog, "Ctrl+E", "Export the loop")
    window.quit_action = _action(window, "&Quit", window.close, "Ctrl+Q")
    window.generate_action = _action(window, "&Generate", window.generation.start, "Ctrl+G",
                                     "Generate a motion for the photo")
    window.cancel_action = _action(window, "&Cancel", window.generation.cancel, Qt.Key_Escape, "Stop generating")
    window.reset_action = _action(window, "&Reset Bands", window.bands_panel.reset, "R",
                                  "Every band, the magnitude and the speed back to 100%")
    window.play_action = _action(window, "&Play / Pause", window.toggle_playing, Qt.Key_Space)
    window.play_action.setCheckable(True)
    window.play_action.setChecked(True)
    window.rewind_action = _action(window, "Re&wind", window.rewind, Qt.Key_Home)
    window.cycle_overlay_action = _action(window, "Cycle &Overlay", window.cycle_overlay, "M")
    window.overlay_group = QActionGroup(window)
    window.overlay_actions = {}
    for mode, label in OVERLAY_LABELS:
        action = QAction(label, window, checkable=True)
        action.setChecked(mode == "none")
        action.triggered.connect(lambda _checked=False, mode=mode: window.set_overlay(mode))
        window.overlay_group.addAction(action)
        window.overlay_actions[mode] = action
    window.undo_action = window.undo_stack.createUndoAction(window, "&Undo")
    window.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
    window.redo_action = window.undo_stack.createRedoAction(window, "&Redo")
    window.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    for action in (window.undo_action, window.redo_action):
        action.setShortcutContext(Qt.WindowShortcut)
        window.addAction(action)
    window.shortcuts_action = _action(window, "&Keyboard Shortcuts", window.show_shortcuts, QKeySequence.HelpContents)
    window.about_action = _action(window, "&About Aeolus", window.show_about)


# The menus and the toolbar as tables of the window's attributes: an action's name, "-" a separator,
# ">name:Title" a submenu kept as window.<name>, "overlays" the overlay choices, "docks" the panels.
MENUS = (
    ("&File", ("open_action", "open_project_action", ">recent_menu:Open &Recent", ">examples_menu:E&xamples", "-",
               "save_project_action", "save_project_as_action", "-", "open_motion_action", "save_motion_action",
               "export_action", "-", "preferences_action", "quit_action")),
    ("&Edit", ("undo_action", "redo_action")),
    ("&Motion", ("generate_action", "cancel_action", "reset_action")),
    ("&View", ("play_action", "rewind_action", "-", "overlays", "cycle_overlay_action", "-", "docks")),
    ("&Help", ("shortcuts_action", "about_action")),
)
TOOLBAR = ("open_action", "generate_action", "export_action", "-", "play_action", "rewind_action", "-")
DOCKS = ("generate_dock", "brush_dock", "flow_dock", "bands_dock", "xt_dock")


def _fill(window, container, entries) -> None:
    for entry in entries:
        if entry == "-":
            container.addSeparator()
        elif entry.startswith(">"):
            name, title = entry[1:].split(":", 1)
            setattr(window, name, container.addMenu(title))
        elif entry == "overlays":
            for action in window.overlay_actions.values():
                container.addAction(action)
        elif entry == "docks":
            for dock in (getattr(window, name) for name in DOCKS if hasattr(window, name)):
                container.addAction(dock.toggleViewAction())
        else:
            container.addAction(getattr(window, entry))


def build_menus_and_toolbar(window) -> None:
    """The menu bar and the toolbar from the window's actions (MENUS, TOOLBAR)."""
    for title, entries in MENUS:
        _fill(window, window.menuBar().addMenu(title), entries)
    window.files.attach_menus(window.recent_menu, window.examples_menu)

    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main toolbar")
    toolbar.setMovable(False)
    _fill(window, toolbar, TOOLBAR)
    toolbar.addWidget(QLabel(" Overlay ", window))
    window.overlay_combo = QComboBox(window)
    for mode, label in OVERLAY_LABELS:
        window.overlay_combo.addItem(label, mode)
    window.overlay_combo.currentIndexChanged.connect(
        lambda index: window.set_overlay(window.overlay_combo.itemData(index)))
    toolbar.addWidget(window.overlay_combo)
    window.addToolBar(Qt.TopToolBarArea, toolbar)


def show_shortcuts(window) -> None:
    QMessageBox.information(window, "Keyboard shortcuts", SHORTCUTS_HELP)


def show_about(window) -> None:
    QMessageBox.about(window, f"About {window.app_name}", ABOUT_TEXT)
