"""The studio window: opening photos (menu, drop, recent, examples), errors as dialogs, run_app."""

import sys

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.pipeline import bundled_examples
from app.ui.document import PREVIEW_MAX_SIDE
from app.ui.studio import install_excepthook, start_studio
from app.ui.viewport import CpuViewport
from ui_helpers import write_photo


def test_opening_a_photo_shows_it_still_and_remembers_it(studio, tmp_path):
    path = write_photo(tmp_path / "meadow.png")
    assert studio.open_path(path)
    document = studio.document
    assert document.image.shape == (96, 160, 3)
    assert not document.has_motion  # nothing moves until a motion is generated
    assert isinstance(studio.viewport, CpuViewport)  # the fixture's choice (conftest.py)
    assert studio.viewport.current_frame().shape == (96, 160, 3)
    assert "meadow" in studio.windowTitle()
    assert studio.recent_files()[0].endswith("meadow.png")
    assert any(action.text() == "meadow.png" for action in studio.recent_menu.actions())
    assert "CPU" in studio.device_label.text()


def test_large_photos_are_previewed_small_and_exported_full_size(studio, tmp_path):
    path = write_photo(tmp_path / "big.png", height=600, width=1000)
    assert studio.open_path(path)
    assert studio.document.image.shape == (600, 1000, 3)
    assert max(studio.document.preview_image.shape[:2]) == PREVIEW_MAX_SIDE
    assert studio.document.motion.width == PREVIEW_MAX_SIDE


def test_a_bad_file_shows_one_sentence_and_the_studio_stays_up(studio, tmp_path, captured_dialogs):
    good = write_photo(tmp_path / "good.png")
    studio.open_path(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    assert not studio.open_path(str(bad))
    assert len(captured_dialogs) == 1
    kind, title, text = captured_dialogs[0]
    assert kind == "warning"
    assert "broken.png" in text and "Traceback" not in text and text.count("\n") == 0
    assert studio.isVisible()
    assert studio.document.path == good  # the open photo is untouched


def test_a_missing_motion_file_shows_a_dialog(studio, tmp_path, captured_dialogs):
    studio.open_path(write_photo(tmp_path / "photo.png"))
    assert not studio.open_path(str(tmp_path / "nothing.npz"))
    assert "does not exist" in captured_dialogs[0][2]


def test_dropping_an_image_file_opens_it(studio, tmp_path):
    path = write_photo(tmp_path / "dropped.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    event = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    studio.dropEvent(event)
    assert studio.document.path == path


def test_examples_menu_opens_an_example_with_its_motion(studio):
    names = bundled_examples()
    texts = [action.text().lower() for action in studio.examples_menu.actions()]
    assert texts == names + ["fountain (flow)"]  # the motion examples, then the flow example
    studio.examples_menu.actions()[0].trigger()
    assert studio.document.name == names[0]
    assert studio.document.has_motion


def test_keyboard_shortcuts_are_wired(studio):
    shortcuts = {action.shortcut().toString() for action in studio.actions()}
    assert {"Ctrl+O", "Ctrl+E", "Ctrl+G", "Space", "Esc", "Ctrl+Q"} <= shortcuts


def test_space_toggles_playback(studio, tmp_path):
    studio.open_path(write_photo(tmp_path / "photo.png"))
    assert studio.viewport.is_playing()
    studio.play_action.trigger()
    assert not studio.viewport.is_playing()
    studio.play_action.trigger()
    assert studio.viewport.is_playing()


def test_unexpected_errors_become_a_dialog_not_a_traceback(studio, captured_dialogs, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(studio)
    try:
        raise RuntimeError("the GPU caught fire")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert captured_dialogs == [("critical", "Aeolus", "Something went wrong (RuntimeError: the GPU caught fire).")]


def test_starting_with_a_bad_photo_shows_a_dialog_and_the_studio_stays_up(qtbot, settings, tmp_path,
                                                                           captured_dialogs):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    window = start_studio(str(bad), settings=settings)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: len(captured_dialogs) == 1, timeout=5000)
    assert "bad.jpg" in captured_dialogs[0][2]
    assert window.isVisible() and not window.document.has_photo
    window.close()


def test_starting_without_a_photo_opens_the_default_example(qtbot, settings):
    from app.pipeline import DEFAULT_EXAMPLE

    window = start_studio(None, settings=settings)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.document.has_photo, timeout=10_000)
    assert window.document.name == DEFAULT_EXAMPLE and window.document.has_motion
    window.close()


def test_screenshot_of_the_animated_example(qapp, tmp_path):
    from PIL import Image

    from app.ui.screenshot import save_screenshot

    path = save_screenshot(str(tmp_path / "shot.png"), play_seconds=0.3)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 400 and pixels.shape[1] > 600
    assert pixels.std() > 10  # not a blank window
