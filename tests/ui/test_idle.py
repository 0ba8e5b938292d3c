"""The studio draws nothing it cannot show: paused, hidden or minimized, the frame timer's ticks
render no frame (CPU use for each state is measured by `python -m app bench studio`)."""

import pytest
from PySide6.QtWidgets import QApplication

from ui_helpers import whole_photo_brush, write_photo


@pytest.fixture
def playing(studio, tmp_path, monkeypatch):
    assert studio.open_path(write_photo(tmp_path / "photo.png"))
    studio.replace_motion(whole_photo_brush(96, 160))
    studio.viewport.timer.stop()  # ticks come from the test only
    QApplication.processEvents()
    drawn = []
    monkeypatch.setattr(studio.viewport, "_frame_due", lambda: drawn.append(1))
    return studio, drawn


def tick(viewport, count=5):
    for _ in range(count):
        viewport._on_timer()


def test_playing_draws_a_frame_per_tick(playing):
    studio, drawn = playing
    tick(studio.viewport)
    assert len(drawn) == 5


@pytest.mark.parametrize("state", ["paused", "minimized", "hidden"])
def test_idle_states_draw_nothing(qtbot, playing, state):
    studio, drawn = playing
    if state == "paused":
        studio.viewport.set_playing(False)
    elif state == "minimized":
        studio.showMinimized()
        qtbot.waitUntil(studio.isMinimized, timeout=2000)
    else:
        studio.hide()
    tick(studio.viewport)
    assert drawn == []
