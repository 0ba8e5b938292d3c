"""Starting the studio: the window, an autosave to restore, the photo to open, and a dialog for
unexpected errors. run_app(image_path) is what `python -m app [IMAGE]` calls."""

from __future__ import annotations

import os
import sys
import traceback

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from app.ui.main_window import APP_NAME, MainWindow
from app.ui.workers import error_sentence


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
