"""A screenshot of the studio for the docs: the main window with the default example animating.

    QT_QPA_PLATFORM=offscreen python -m app.ui.screenshot docs/screenshot.png

Works offscreen (the CPU viewport) and under xvfb-run (the GL viewport). The window plays the
example for a moment with a scanline picked in the X-t view, then grabs itself (QWidget.grab()).
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QSettings, QTemporaryDir
from PySide6.QtWidgets import QApplication

SCREENSHOT_SIZE = (1320, 880)


def _process_events_for(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)


def grab_studio(path: str, prepare, play_seconds: float) -> str:
    """Show a new main window (private settings), call prepare(window), let it play, save a PNG of it."""
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings_dir = QTemporaryDir()  # keep the user's recent files out of it
    settings = QSettings(settings_dir.filePath("settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    try:
        prepare(window)
        _process_events_for(play_seconds)
        image = window.grab()
        if not image.save(str(path)):
            raise OSError(f"Could not write '{path}'.")
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return str(path)


def save_screenshot(path: str, example: str | None = None, play_seconds: float = 2.5) -> str:
    """Open `example` (default: the pipeline's default) in a new main window, let it play, save a PNG."""
    from app.pipeline import DEFAULT_EXAMPLE

    name = example or DEFAULT_EXAMPLE

    def prepare(window):
        if not window.open_example(name):
            raise ValueError(f"Could not open the example '{name}'.")
        window.xt_view.set_row(window.document.preview_image.shape[0] * 2 // 5)

    return grab_studio(path, prepare, play_seconds)


if __name__ == "__main__":
    print(save_screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png"))
