"""The studio's CPU use: how much of one core the process takes while the example plays, while it is
paused, and while the window is minimized or hidden, with the frames per second it draws.

    QT_QPA_PLATFORM=xcb xvfb-run -a python -m app.ui.bench_studio [--seconds 5] [--json]
    QT_QPA_PLATFORM=offscreen python -m app.ui.bench_studio        # the CPU viewport

Each state runs the real event loop for --seconds; CPU use is the process's CPU time (all threads)
over the wall time, in % of one core. Targets: paused, minimized and hidden under 5 %; playing at the
display rate (about 60 frames per second), not as fast as the machine allows.
"""

from __future__ import annotations

import argparse
import sys
import time

from PySide6.QtCore import QEventLoop, QSettings, QTemporaryDir, QTimer
from PySide6.QtWidgets import QApplication

from app.eval.rows import print_rows


def run_for(app: QApplication, seconds: float) -> None:
    """Run the event loop for `seconds` (a nested QEventLoop, as a modal dialog would)."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def measure(app: QApplication, window, seconds: float) -> dict:
    """CPU % of one core and frames drawn per second over `seconds` of the event loop."""
    frames = []
    viewport = window.viewport
    original = viewport._frame_due

    def counted():
        frames.append(time.perf_counter())
        original()

    viewport._frame_due = counted
    wall, cpu = time.perf_counter(), time.process_time()
    run_for(app, seconds)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    viewport._frame_due = original
    return {"cpu_percent": round(100.0 * cpu / wall, 1), "fps": round(len(frames) / wall, 1)}


def main(argv=None) -> int:
    from app.pipeline import DEFAULT_EXAMPLE
    from app.ui.main_window import MainWindow
    from app.ui.studio import leave_a_core_for_the_interface

    parser = argparse.ArgumentParser(prog="python -m app.ui.bench_studio", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    leave_a_core_for_the_interface()
    folder = QTemporaryDir()
    window = MainWindow(settings=QSettings(folder.filePath("settings.ini"), QSettings.IniFormat),
                        autosave_dir=folder.filePath("autosave"))
    window.resize(1320, 880)
    window.show()
    if not window.open_example(DEFAULT_EXAMPLE):
        return 1
    run_for(app, 1.0)  # settle: first frames, GL set-up
    rows = []

    def row(state: str, **extra) -> None:
        rows.append({"name": "studio", "state": state, "renderer": window.viewport.renderer_name,
                     **measure(app, window, args.seconds), **extra})

    window.viewport.set_playing(True)
    row("playing")
    window.viewport.set_playing(False)
    row("paused")
    window.viewport.set_playing(True)
    window.showMinimized()
    row("minimized, playing")
    window.showNormal()
    window.hide()
    row("hidden, playing")
    window.show()
    run_for(app, 0.5)
    row("shown again, playing")
    window.close()
    print_rows(rows, args.json, lambda result: f"{result['state']:22s} {result['cpu_percent']:6.1f} % of a core  "
                                               f"{result['fps']:6.1f} frames/s  ({result['renderer']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
