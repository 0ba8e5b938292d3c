"""Projects in the studio: save and reopen, autosave and restore, bad files, preferences."""

import os
import time

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.core.procedural import BrushSettings
from app.ui.brush import stamp_disc
from app.ui.main_window import CLEAN_EXIT_KEY, MainWindow
from app.ui.studio import start_studio
from app.ui.preferences import Preferences, read_preferences
from ui_helpers import whole_photo_brush, write_photo


def edited_studio(studio, tmp_path):
    """A photo with a motion, moved sliders, a freeze stroke and brush settings."""
    studio.open_path(write_photo(tmp_path / "meadow.png"))
    document = studio.document
    height, width = document.preview_image.shape[:2]
    studio.replace_motion(whole_photo_brush(height, width))
    studio.bands_panel.set_band_gain(2, 0.3)
    studio.bands_panel.set_magnitude(1.4)
    stroke = np.zeros((height, width), np.float32)
    stamp_disc(stroke, 50, 40, 12, 0.5)
    studio.apply_stroke(stroke, "freeze")
    studio.brush_panel.set_brush_settings(BrushSettings(amplitude_px=7.0, direction_deg=30.0, coherence_px=40.0))
    return document


def assert_same_document(first, second):
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.motion.spectrum, second.motion.spectrum)
    np.testing.assert_array_equal(first.freeze_mask, second.freeze_mask)
    np.testing.assert_array_equal(first.gains, second.gains)
    assert (first.magnitude, first.slowdown) == (second.magnitude, second.slowdown)
    np.testing.assert_array_equal(first.edited_motion().spectrum, second.edited_motion().spectrum)


def test_a_project_saved_and_reopened_in_another_window_is_the_same(qtbot, studio, settings, tmp_path):
    document = edited_studio(studio, tmp_path)
    path = str(tmp_path / "meadow")
    assert studio.save_project_as(path)
    assert studio.project_path == path + ".aeolus" and os.path.isfile(studio.project_path)
    other = MainWindow(settings=settings, model_path=tmp_path / "none.safetensors")
    qtbot.addWidget(other)
    assert other.open_path(path + ".aeolus")
    assert_same_document(document, other.document)
    assert other.brush_panel.brush_settings().amplitude_px == 7.0
    assert other.bands_panel.band_sliders[2].value() == 30
    assert other.recent_files()[0].endswith("meadow.aeolus")
    assert other.undo_stack.count() == 0


def test_save_project_writes_to_the_open_project(studio, tmp_path):
    edited_studio(studio, tmp_path)
    path = str(tmp_path / "p.aeolus")
    studio.save_project_as(path)
    before = os.path.getmtime(path)
    time.sleep(0.01)
    studio.bands_panel.set_band_gain(3, 0.5)
    assert studio.save_project()
    assert os.path.getmtime(path) >= before


def test_a_corrupt_project_is_one_sentence_and_the_studio_stays_up(studio, tmp_path, captured_dialogs):
    studio.open_path(write_photo(tmp_path / "good.png"))
    bad = tmp_path / "bad.aeolus"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert not studio.open_path(str(bad))
    kind, title, text = captured_dialogs[-1]
    assert kind == "warning" and "bad.aeolus" in text and "\n" not in text
    assert studio.document.name == "good"  # what was open stays open


def test_a_project_can_be_dropped_on_the_window(studio, tmp_path):
    edited_studio(studio, tmp_path)
    path = str(tmp_path / "dropped.aeolus")
    studio.save_project_as(path)
    studio.open_path(write_photo(tmp_path / "other.png"))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    studio.dropEvent(event)
    assert studio.project_path == path
    assert studio.document.freeze_mask is not None


def test_an_autosave_newer_than_the_last_clean_exit_is_offered_and_restored(qtbot, studio, settings, tmp_path,
                                                                             monkeypatch):
    document = edited_studio(studio, tmp_path)
    assert studio.autosave()  # what the timer does; then the studio "crashes" (no clean exit recorded)
    settings.setValue(CLEAN_EXIT_KEY, time.time() - 60)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args) or QMessageBox.Yes)
    window = start_studio(None, settings=settings)
    qtbot.addWidget(window)
    assert len(asked) == 1
    assert_same_document(document, window.document)
    assert window.project_path is None  # Save asks where; the autosave is not the project


def test_no_offer_after_a_clean_exit(qtbot, studio, settings, tmp_path, monkeypatch):
    edited_studio(studio, tmp_path)
    studio.close()  # autosaves, then records the clean exit
    assert studio.autosave_path().is_file()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args) or QMessageBox.Yes)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    assert not window.offer_autosave_restore()
    assert asked == []


def test_declining_the_restore_opens_nothing(qtbot, studio, settings, tmp_path, monkeypatch):
    edited_studio(studio, tmp_path)
    studio.autosave()
    settings.setValue(CLEAN_EXIT_KEY, 0.0)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.No)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    assert not window.offer_autosave_restore()
    assert not window.document.has_photo


def test_preferences_are_stored_and_applied(studio, settings, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    studio.set_preferences(Preferences(device="cpu", export_format="gif", model_folder=str(folder)))
    assert read_preferences(settings) == Preferences(device="cpu", export_format="gif", model_folder=str(folder))
    assert studio.model_path == folder / "motion_model.safetensors"
    assert studio.compute_device() == "cpu"
    studio.open_path(write_photo(tmp_path / "meadow.png"))
    dialog = studio.open_export_dialog()
    assert dialog.format_combo.currentData() == "gif" and dialog.path_edit.text().endswith(".gif")
    dialog.reject()


def test_the_preferences_dialog_reads_back_its_values(studio):
    from app.ui.preferences import PreferencesDialog

    dialog = PreferencesDialog(Preferences(device="cuda", export_format="webm", model_folder="/x"), studio)
    assert dialog.values() == Preferences(device="cuda", export_format="webm", model_folder="/x")
    dialog.format_combo.setCurrentIndex(0)
    assert dialog.values().export_format == "mp4"


def test_the_example_project_is_small_exact_and_keeps_the_view(qtbot, studio, settings, tmp_path):
    from app.core.spectral import load_motion
    from app.pipeline import example_paths
    from app.project import load_project

    assert studio.open_example("willow")
    studio.bands_panel.set_band_gain(1, 0.5)
    studio.xt_view.set_row(123)
    studio.set_overlay("magnitude")
    path = str(tmp_path / "willow.aeolus")
    assert studio.save_project_as(path)
    assert os.path.getsize(path) < 5_000_000  # was 38 MB with the motion on the 512x288 grid, stored
    saved = load_project(path)
    example = load_motion(str(example_paths("willow")[1]))
    np.testing.assert_array_equal(saved.motion.spectrum, example.spectrum)  # at its own 128x72 grid
    assert saved.view == {"xt_row": 123, "overlay": "magnitude", "playing": studio.viewport.is_playing()}

    other = MainWindow(settings=settings, model_path=tmp_path / "none.safetensors", viewport=type(studio.viewport)())
    qtbot.addWidget(other)
    assert other.open_path(path)
    np.testing.assert_array_equal(other.document.motion.spectrum, studio.document.motion.spectrum)
    np.testing.assert_array_equal(other.document.edited_motion().spectrum, studio.document.edited_motion().spectrum)
    assert other.xt_view.row() == 123 and other.viewport.overlay_mode == "magnitude"


def test_an_edited_motion_is_saved_as_edited(studio, tmp_path):
    from app.project import load_project

    assert studio.open_example("willow")
    document = studio.document
    stroke = np.zeros(document.preview_image.shape[:2], np.float32)
    stamp_disc(stroke, 100, 80, 20, 1.0)
    studio.apply_stroke(stroke, "brush")
    path = str(tmp_path / "painted.aeolus")
    assert studio.save_project_as(path)
    np.testing.assert_array_equal(load_project(path).motion.spectrum, document.motion.spectrum)
    studio.undo_stack.undo()  # back to the example's own motion: saved at its own grid again
    assert studio.save_project_as(path)
    assert load_project(path).motion.spectrum.shape[2:] == (72, 128)
