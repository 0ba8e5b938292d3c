"""Fixtures for the studio's UI tests (offscreen Qt, set by tests/conftest.py)."""

import pytest
from PySide6.QtCore import QSettings

from app.ui.main_window import MainWindow
from app.ui.viewport import CpuViewport


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every UI test on one torch thread, as run_app does on a 2-core machine (tests/conftest.py)."""


@pytest.fixture(autouse=True)
def private_autosave_folder(tmp_path, monkeypatch):
    """Autosaves go to a temporary folder, never the user's application data."""
    import app.ui.main_window as main_window

    folder = tmp_path / "autosave"
    monkeypatch.setattr(main_window, "autosave_folder", lambda: folder)
    return folder


@pytest.fixture(autouse=True)
def unsaved_changes_answers(monkeypatch):
    """The Save / Discard / Cancel question answers Discard (what opening a photo did before it
    asked) and is recorded; a test that wants another answer sets answers.reply."""
    from PySide6.QtWidgets import QMessageBox

    class Answers(list):
        reply = QMessageBox.Discard

    answers = Answers()

    def ask(window):
        answers.append(window.document.name)
        return answers.reply

    monkeypatch.setattr(MainWindow, "ask_to_save_changes", ask)
    return answers


@pytest.fixture
def settings(tmp_path):
    """Studio settings in a temporary ini file (keeps the user's recent files untouched)."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def studio(qtbot, settings, tmp_path):
    """A shown main window that generates with the motion brush (no model file) until told otherwise.

    Its viewport is the CPU one on every platform (offscreen or a real display): the tests compare its
    preview-sized frames; the OpenGL viewport has its own tests (test_gl_viewport.py)."""
    window = MainWindow(settings=settings, model_path=tmp_path / "no-model.safetensors", viewport=CpuViewport())
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    # Keyboard shortcuts reach only the active window. Offscreen every shown window is; on a real
    # display (xcb, even Xvfb without a window manager) it has to be asked for.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    yield window
    window.close()


@pytest.fixture
def captured_dialogs(monkeypatch):
    """Replace QMessageBox's static dialogs with recorders: a list of (kind, title, text)."""
    from PySide6.QtWidgets import QMessageBox

    shown = []

    def recorder(kind):
        def show(parent, title, text, *args, **kwargs):
            shown.append((kind, title, text))
            return QMessageBox.Ok
        return show

    for kind in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, kind, recorder(kind))
    return shown
