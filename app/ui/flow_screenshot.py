"""A screenshot of the Flow tool for the docs: the water example flowing, its arrows drawn over it.

    QT_QPA_PLATFORM=xcb xvfb-run -a python -m app.ui.flow_screenshot docs/flow-tool.png

Works offscreen too (the CPU viewport). Opens the bundled flow example, turns Draw flow on, lets
it play for a moment and grabs the window (QWidget.grab()).
"""

from __future__ import annotations

import sys

from app.ui.screenshot import grab_studio


def save_flow_screenshot(path: str, play_seconds: float = 2.0) -> str:
    def prepare(window):
        if not window.flow.open_example():
            raise ValueError("Could not open the flow example.")
        window.flow_dock.raise_()
        window.flow_panel.set_drawing(True)

    return grab_studio(path, prepare, play_seconds)


if __name__ == "__main__":
    print(save_flow_screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/flow-tool.png"))
