"""The X-t view: a (T, width) space-time slice of the chosen scanline, redrawn on every edit."""

import numpy as np

from app.core.spectral import displacement_at, scale_bands
from app.render.warp import backward_warp
from app.ui.xt_view import xt_slice
from ui_helpers import mean_difference, textured_photo, whole_photo_brush


def test_the_slice_has_one_row_per_frame_and_one_column_per_pixel(studio):
    image = textured_photo()
    motion = whole_photo_brush(*image.shape[:2])
    studio.document.set_photo(image, "test", None, motion)
    studio.xt_view.set_row(20)
    assert studio.xt_view.slice.shape == (motion.num_frames, image.shape[1], 3)
    assert studio.xt_view.row_spin.value() == 20


def test_the_slice_rows_are_the_warped_frames_rows():
    image = textured_photo()
    motion = whole_photo_brush(*image.shape[:2])
    slice_ = xt_slice(image, motion, 40)
    for t in (0, 37, 101):
        frame = backward_warp(image, displacement_at(motion, t))
        assert np.abs(slice_[t].astype(int) - frame[40].astype(int)).max() <= 1


def test_slow_motion_stretches_the_slice_and_gains_reshape_it():
    image = textured_photo()
    motion = whole_photo_brush(*image.shape[:2])
    assert xt_slice(image, motion, 10, slowdown=2.0).shape[0] == 2 * motion.num_frames
    gains = np.zeros(motion.num_bands)
    still = xt_slice(image, motion, 10, gains=gains)
    assert np.all(still == image[10][None])
    half = np.full(motion.num_bands, 0.5)
    assert np.array_equal(xt_slice(image, motion, 10, gains=half), xt_slice(image, scale_bands(motion, half), 10))


def test_the_slice_follows_band_edits(studio):
    image = textured_photo()
    studio.document.set_photo(image, "test", None, whole_photo_brush(*image.shape[:2]))
    before = studio.xt_view.slice.copy()
    studio.bands_panel.set_magnitude(0.0)
    after = studio.xt_view.slice
    assert mean_difference(before, after) > 0.5
    assert np.all(after == after[0][None])  # frozen: every frame shows the same row
