"""Motion brush and freeze mask: strokes change the motion only where painted, and undo."""

import numpy as np
from PySide6.QtGui import QMouseEvent

from app.core.procedural import BrushSettings
from app.core.spectral import zero_motion
from app.ui.brush import feathered, freeze_factor, stamp_disc, stamp_segment
from ui_helpers import image_point_to_widget, send_mouse, whole_photo_brush, write_photo


def open_photo(studio, tmp_path, motion=True):
    studio.open_path(write_photo(tmp_path / "meadow.png"))
    height, width = studio.document.preview_image.shape[:2]
    if motion:
        studio.replace_motion(whole_photo_brush(height, width))
    return studio.document


def disc_stroke(document, x=40.0, y=30.0, radius=10.0, hardness=0.5):
    stroke = np.zeros(document.preview_image.shape[:2], np.float32)
    stamp_disc(stroke, x, y, radius, hardness)
    return stroke


def test_a_disc_is_full_inside_and_zero_outside():
    mask = np.zeros((40, 40), np.float32)
    stamp_disc(mask, 20, 20, 10, hardness=0.5)
    assert mask[20, 20] == 1.0 and mask[20, 24] == 1.0
    assert mask[20, 31] == 0.0 and mask[0, 0] == 0.0
    assert 0 < mask[20, 28] < 1


def test_a_segment_leaves_no_gaps():
    mask = np.zeros((20, 100), np.float32)
    stamp_segment(mask, (5, 10), (95, 10), radius=3, hardness=1.0)
    assert np.all(mask[10, 5:96] == 1.0)


def test_feathering_keeps_painted_pixels_and_grows_outwards():
    mask = np.zeros((40, 40), np.float32)
    mask[10:30, 10:30] = 1.0
    soft = feathered(mask)
    assert np.all(soft[mask == 1] == 1.0)
    assert 0 < soft[20, 8] < 1
    assert np.all(freeze_factor(mask)[mask == 1] == 0.0)


def test_a_brush_stroke_changes_the_motion_only_inside_the_stroke(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    before = document.motion.spectrum.copy()
    stroke = disc_stroke(document)
    studio.apply_stroke(stroke, "brush")
    after = document.motion.spectrum
    outside = stroke == 0
    np.testing.assert_array_equal(after[..., outside], before[..., outside])
    assert not np.array_equal(after[..., stroke == 1], before[..., stroke == 1])
    np.testing.assert_array_equal(document.brush_mask, stroke)


def test_the_brush_alone_moves_a_still_photo(studio, tmp_path):
    document = open_photo(studio, tmp_path, motion=False)
    assert not document.has_motion
    stroke = disc_stroke(document)
    studio.apply_stroke(stroke, "brush")
    assert document.has_motion
    assert np.all(document.motion.spectrum[..., stroke == 0] == 0)


def test_the_freeze_mask_zeroes_the_motion_under_it_and_undo_brings_it_back(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    base = document.motion
    stroke = disc_stroke(document, radius=14.0)
    studio.apply_stroke(stroke, "freeze")
    shown = document.edited_motion().spectrum
    assert np.all(shown[..., stroke == 1] == 0)
    far = np.ones_like(stroke, bool)
    far[:60, :70] = False  # well away from the feathered edge
    np.testing.assert_array_equal(shown[..., far], document.edited_motion().spectrum[..., far])
    np.testing.assert_array_equal(document.display_motion().spectrum[..., far], base.spectrum[..., far])
    assert document.motion is base  # freezing never touches the base motion
    studio.undo_action.trigger()
    assert document.freeze_mask is None
    np.testing.assert_array_equal(document.edited_motion().spectrum, base.spectrum)
    studio.redo_action.trigger()
    assert np.all(document.edited_motion().spectrum[..., stroke == 1] == 0)


def test_erasing_the_freeze_mask_lets_it_move_again(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    stroke = disc_stroke(document, radius=14.0, hardness=1.0)
    studio.apply_stroke(stroke, "freeze")
    studio.apply_stroke(stroke, "freeze", erase=True)
    assert not np.any(document.freeze_mask)
    np.testing.assert_array_equal(document.edited_motion().spectrum, document.motion.spectrum)


def test_a_brush_stroke_undoes_to_the_exact_previous_motion(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    before = document.motion
    studio.apply_stroke(disc_stroke(document), "brush")
    studio.undo_action.trigger()
    assert document.motion is before and document.brush_mask is None


def test_painting_with_the_mouse_applies_one_stroke(studio, tmp_path):
    document = open_photo(studio, tmp_path, motion=False)
    document.set_motion(zero_motion(*document.preview_image.shape[:2]))
    studio.brush_panel.set_tool("freeze")
    assert studio.viewport.tool == "freeze"
    viewport = studio.viewport
    send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, image_point_to_widget(viewport, 30, 30))
    send_mouse(viewport, QMouseEvent.Type.MouseMove, image_point_to_widget(viewport, 60, 30))
    send_mouse(viewport, QMouseEvent.Type.MouseButtonRelease, image_point_to_widget(viewport, 60, 30))
    mask = document.freeze_mask
    assert mask is not None and mask[30, 30] == 1.0 and mask[30, 45] == 1.0 and mask[80, 150] == 0.0
    assert viewport.overlay is not None  # masks are shown
    studio.brush_panel.show_mask_check.setChecked(False)
    assert viewport.overlay is None


def test_the_brush_panel_gives_the_settings_it_shows(studio):
    panel = studio.brush_panel
    panel.set_brush_settings(BrushSettings(amplitude_px=6.5, direction_deg=90.0, dominant_hz=None, coherence_px=30.0))
    settings = panel.brush_settings(seed=4)
    assert (settings.amplitude_px, settings.direction_deg, settings.dominant_hz, settings.coherence_px,
            settings.seed) == (6.5, 90.0, None, 30.0, 4)
    panel.size_spin.setValue(40)
    assert panel.radius() == 20.0
