"""Undo/redo in the studio: slider edits and new motions undo to the exact previous state."""

import numpy as np

from ui_helpers import whole_photo_brush, write_photo


def open_with_motion(studio, tmp_path, seed=1):
    studio.open_path(write_photo(tmp_path / "meadow.png"))
    height, width = studio.document.preview_image.shape[:2]
    studio.replace_motion(whole_photo_brush(height, width, seed=seed))
    return studio.document


def test_a_band_edit_undoes_and_redoes_exactly(studio, tmp_path):
    document = open_with_motion(studio, tmp_path)
    gains_before = document.gains.copy()
    studio.bands_panel.set_band_gain(3, 0.4)
    assert document.gains[3] == np.float32(0.4)
    studio.undo_action.trigger()
    np.testing.assert_array_equal(document.gains, gains_before)
    np.testing.assert_array_equal(studio.bands_panel.gains(), gains_before)  # the slider moved back
    studio.redo_action.trigger()
    assert document.gains[3] == np.float32(0.4)
    assert studio.bands_panel.band_sliders[3].value() == 40


def test_magnitude_and_speed_undo_one_step_each(studio, tmp_path):
    document = open_with_motion(studio, tmp_path)
    studio.undo_stack.clear()
    studio.bands_panel.set_magnitude(1.5)
    studio.bands_panel.set_speed_percent(50)
    assert (document.magnitude, document.slowdown) == (1.5, 2.0)
    assert studio.undo_stack.count() == 2
    studio.undo_stack.undo()
    assert (document.magnitude, document.slowdown) == (1.5, 1.0)
    studio.undo_stack.undo()
    assert (document.magnitude, document.slowdown) == (1.0, 1.0)
    assert studio.bands_panel.magnitude() == 1.0


def test_dragging_one_slider_is_one_undo_step(studio, tmp_path):
    document = open_with_motion(studio, tmp_path)
    studio.undo_stack.clear()
    for percent in (90, 80, 70, 60):
        studio.bands_panel.set_band_gain(2, percent / 100)
    assert studio.undo_stack.count() == 1
    studio.undo_stack.undo()
    assert document.gains[2] == 1.0


def test_a_new_motion_undoes_to_the_old_one(studio, tmp_path):
    document = open_with_motion(studio, tmp_path, seed=1)
    old = document.motion
    studio.bands_panel.set_band_gain(1, 0.5)
    height, width = document.preview_image.shape[:2]
    studio.replace_motion(whole_photo_brush(height, width, seed=2))
    new = document.motion
    assert not np.array_equal(new.spectrum, old.spectrum)
    studio.undo_action.trigger()
    assert document.motion is old
    np.testing.assert_array_equal(document.motion.spectrum, old.spectrum)
    assert document.gains[1] == np.float32(0.5)
    studio.redo_action.trigger()
    assert document.motion is new


def test_opening_a_photo_clears_the_history(studio, tmp_path):
    open_with_motion(studio, tmp_path)
    assert studio.undo_stack.count() > 0
    studio.open_path(write_photo(tmp_path / "other.png"))
    assert studio.undo_stack.count() == 0
    assert not studio.undo_action.isEnabled()
