"""A screenshot of the Flow tool for the docs: the water example flowing, its arrows drawn over it.

    QT_QPA_PLATFORM=xcb xvfb-run -a python -m app.ui.flow_screenshot docs/flow-tool.png

Works offscreen too (the CPU viewport). Opens the bundled flow example, turns Draw flow on, lets
it play for a moment and grabs the window (QWidget.grab()).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings, QTemporaryDir
from PySide6.QtWidgets import QApplication

from app.ui.screenshot import SCREENSHOT_SIZE, _process_events_for


def save_flow_screenshot(path: str, play_seconds: float = 2.0) -> str:
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings_dir = QTemporaryDir()
    settings = QSettings(settings_dir.filePath("settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    try:
        if not window.flow.open_example():
            raise ValueError("Could not open the flow example.")
        window.flow_dock.raise_()
        window.flow_panel.set_drawing(True)
        _process_events_for(play_seconds)
        image = window.grab()
        if not image.save(str(path)):
            raise OSError(f"Could not write '{path}'.")
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return str(path)


if __name__ == "__main__":
    print(save_flow_screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/flow-tool.png"))
