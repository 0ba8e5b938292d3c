"""The habits artists expect: a window that fits 1280x720, keys that work from the start, Ctrl+Y,
a question before unsaved edits are thrown away, a clean progress bar, familiar folders, the
working size said and chosen, a live preview while generating, and Variation."""

import os

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QScrollArea

from app.ui.brush import stamp_disc
from app.ui.exporting import LAST_EXPORT_FOLDER_KEY
from app.ui.main_window import DOCK_MIN_HEIGHT
from app.ui.preferences import Preferences, read_preferences
from ui_helpers import use_tiny_model, whole_photo_brush, write_photo


@pytest.fixture
def photo_open(studio, tmp_path):
    assert studio.open_path(write_photo(tmp_path / "photo.png"))
    return studio


def paint(studio):
    """One brush stroke: an unsaved edit."""
    height, width = studio.document.preview_image.shape[:2]
    stroke = np.zeros((height, width), np.float32)
    stamp_disc(stroke, width // 2, height // 2, 10, 1.0)
    studio.apply_stroke(stroke, "freeze")


# --- the screen -------------------------------------------------------------------------------------


def test_the_window_is_usable_at_1280x720(qtbot, studio):
    hint = studio.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    studio.resize(1280, 720)
    qtbot.waitUntil(lambda: studio.height() == 720 and studio.width() == 1280, timeout=5000)
    for dock in (studio.generate_dock, studio.brush_dock, studio.bands_dock, studio.xt_dock):
        assert dock.isVisible() and dock.height() >= DOCK_MIN_HEIGHT, dock.windowTitle()
        assert isinstance(dock.widget(), QScrollArea)  # a panel taller than its dock scrolls
    assert studio.centralWidget().height() >= 200


# --- keys ---------------------------------------------------------------------------------------------


def test_focus_starts_in_the_viewport_and_space_plays_and_pauses(qtbot, studio, tmp_path):
    studio.activateWindow()
    assert studio.focusWidget() is studio.viewport  # before any photo: not the Seed box
    assert studio.open_path(write_photo(tmp_path / "photo.png"))
    assert studio.focusWidget() is studio.viewport
    playing = studio.viewport.is_playing()
    QTest.keyClick(studio.viewport, Qt.Key_Space)
    assert studio.viewport.is_playing() != playing


def test_ctrl_e_works_with_focus_in_the_seed_box(qtbot, photo_open):
    studio = photo_open
    seed = studio.generate_panel.seed_spin
    seed.setFocus()
    assert studio.export_action.shortcutContext() == Qt.ApplicationShortcut
    playing = studio.viewport.is_playing()
    QTest.keyClick(seed, Qt.Key_Space)  # a spin box's line edit would take Space as text
    assert studio.viewport.is_playing() != playing and seed.value() == 0
    QTest.keyClick(seed, Qt.Key_E, Qt.ControlModifier)
    assert studio.export_dialog is not None and studio.export_dialog.isVisible()
    studio.export_dialog.reject()


def test_ctrl_y_redoes(qtbot, photo_open):
    studio = photo_open
    paint(studio)
    studio.undo_stack.undo()
    assert studio.document.freeze_mask is None
    QTest.keyClick(studio.viewport, Qt.Key_Y, Qt.ControlModifier)
    assert studio.document.freeze_mask is not None
    shortcuts = [sequence.toString() for sequence in studio.redo_action.shortcuts()]
    assert "Ctrl+Y" in shortcuts and "Ctrl+Shift+Z" in shortcuts


# --- unsaved edits ------------------------------------------------------------------------------------


def test_opening_another_photo_asks_before_throwing_away_edits(qtbot, photo_open, tmp_path, unsaved_changes_answers):
    studio = photo_open
    other = write_photo(tmp_path / "other.png", 64, 96)
    assert studio.open_path(other)  # nothing edited yet: no question
    assert unsaved_changes_answers == []

    paint(studio)
    unsaved_changes_answers.reply = QMessageBox.Cancel
    assert not studio.open_path(write_photo(tmp_path / "third.png"))
    assert studio.document.name == "other" and studio.document.freeze_mask is not None  # kept

    unsaved_changes_answers.reply = QMessageBox.Save
    project = str(tmp_path / "kept.aeolus")
    studio.projects.project_path = project
    assert studio.open_path(write_photo(tmp_path / "third.png"))
    assert os.path.isfile(project) and studio.document.name == "third"

    paint(studio)
    unsaved_changes_answers.reply = QMessageBox.Discard
    assert studio.open_example("willow")
    assert unsaved_changes_answers == ["other", "other", "third"]


def test_a_saved_project_has_nothing_to_ask_about(qtbot, photo_open, tmp_path, unsaved_changes_answers):
    studio = photo_open
    paint(studio)
    assert studio.save_project_as(str(tmp_path / "saved.aeolus"))
    assert studio.open_path(write_photo(tmp_path / "next.png"))
    assert unsaved_changes_answers == []


# --- the progress bar ---------------------------------------------------------------------------------


def test_the_progress_bar_is_empty_after_a_cancel_and_a_new_photo(qtbot, photo_open, tmp_path):
    studio = photo_open
    bar = studio.generate_panel.progress_bar
    studio.start_generation()
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=30_000):
        pass
    assert bar.value() == bar.maximum() and bar.value() > 0
    assert studio.open_path(write_photo(tmp_path / "next.png"))
    assert bar.value() == 0

    use_tiny_model(studio, 200)
    studio.start_generation()
    worker = studio.generation_worker
    qtbot.waitUntil(lambda: bar.value() >= 2, timeout=30_000)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000):
        studio.cancel_generation()
    assert bar.value() == 0


def test_the_loading_phase_is_said_instead_of_zero_percent(photo_open):
    panel = photo_open.generate_panel
    panel.set_progress(0, 0)
    assert panel.progress_bar.maximum() == 0 and "Loading" in panel.progress_bar.format()
    panel.set_progress(1, 25)
    assert panel.progress_bar.format().startswith("Step")


# --- folders and the working size ---------------------------------------------------------------------


def test_export_and_save_dialogs_start_in_the_last_export_folder(qtbot, photo_open, tmp_path, settings):
    studio = photo_open
    first = studio.open_export_dialog()
    assert os.path.dirname(first.path_edit.text()) != str(tmp_path)  # not the photo's folder
    first.reject()
    exports = tmp_path / "exports"
    exports.mkdir()
    first.export_finished.emit(str(exports / "loop.mp4"))  # what a finished export says
    assert settings.value(LAST_EXPORT_FOLDER_KEY) == str(exports)
    second = studio.open_export_dialog()
    assert os.path.dirname(second.path_edit.text()) == str(exports)
    second.reject()


def test_the_working_size_is_said_and_chosen_in_preferences(qtbot, studio, tmp_path, settings):
    path = write_photo(tmp_path / "big.png", 600, 1000)
    assert studio.open_path(path)
    assert studio.working_size_label.text() == "Working at 640x384 of 1000x600"
    studio.set_preferences(Preferences(working_side=960))
    assert read_preferences(settings).working_side == 960
    assert studio.open_path(path)
    assert studio.document.preview_image.shape[:2] == (576, 960)
    assert studio.working_size_label.text() == "Working at 960x576 of 1000x600"


# --- generating ---------------------------------------------------------------------------------------


def test_the_live_preview_reaches_the_xt_slice_and_the_band_graph_early(qtbot, photo_open):
    studio = photo_open
    use_tiny_model(studio, 20, loop=False)
    seen = []

    def on_preview(motion):
        seen.append((studio.generate_panel.progress_bar.value(), studio.xt_view.motion is motion,
                     np.array(studio.bands_panel.base_amplitude)))

    studio.start_generation()
    studio.generation_worker.preview.connect(on_preview)
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=60_000):
        pass
    assert seen, "no preview"
    first_step, xt_follows, amplitude = seen[0]
    assert first_step <= 20 // 4  # within the first quarter of the 20 steps
    assert xt_follows and np.any(amplitude > 0)


def test_variation_picks_a_new_seed_and_generates(qtbot, photo_open):
    studio = photo_open
    panel = studio.generate_panel
    panel.seed_spin.setValue(7)
    before = studio.document.motion
    with qtbot.waitSignal(studio.document.motion_changed, timeout=30_000):
        panel.variation_button.click()
    assert panel.seed_spin.value() != 7
    assert studio.document.motion is not before
