"""Shaping and playing: band sliders change the frame at once; pokes move the scene, then it settles."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QMouseEvent

from app.core.spectral import magnify, motion_to_texture, scale_bands
from app.ui.viewport import CpuViewport, band_power_maps, rms_displacement_map
from ui_helpers import image_point_to_widget, mean_difference, send_mouse, textured_photo, whole_photo_brush


@pytest.fixture
def animated(studio):
    """The studio with a small photo and a brush motion, paused at a fixed time."""
    image = textured_photo()
    studio.document.set_photo(image, "test", None, whole_photo_brush(*image.shape[:2]))
    studio.viewport.set_playing(False)
    studio.viewport.playback.phase = 17.0
    studio.viewport.render_now()
    return studio


def test_moving_a_band_slider_changes_the_frame_at_once(animated):
    studio = animated
    before = studio.viewport.current_frame()
    studio.bands_panel.band_sliders[4].setValue(0)
    after = studio.viewport.current_frame()
    assert mean_difference(before, after) > 0.5
    gains = studio.document.gains
    assert gains[4] == 0 and gains[3] == 1
    expected = magnify(scale_bands(studio.document.motion, gains), 1.0)
    assert np.allclose(studio.document.edited_motion().spectrum, expected.spectrum)
    heights = studio.bands_panel.edited_bars.opts["height"]
    assert heights[3] == 0  # band 4 is the 4th bar (band 0 is not drawn)


def test_band_sliders_are_labelled_in_hertz_and_band_0_is_disabled(animated):
    panel = animated.bands_panel
    motion = animated.document.motion
    assert not panel.band_sliders[0].isEnabled()
    assert all(slider.isEnabled() for slider in panel.band_sliders[1:])
    step = motion.fps / motion.num_frames
    assert [float(label.text()) for label in panel.band_labels[1:4]] == pytest.approx([step, 2 * step, 3 * step])


def test_magnitude_zero_freezes_the_photo_and_speed_slows_playback(animated):
    studio = animated
    studio.bands_panel.set_magnitude(0.0)
    assert mean_difference(studio.viewport.current_frame(), textured_photo()) < 0.01
    studio.bands_panel.set_speed_percent(50)
    assert studio.document.slowdown == pytest.approx(2.0)
    assert studio.viewport.playback.slowdown == pytest.approx(2.0)
    studio.bands_panel.reset()
    assert studio.document.magnitude == 1.0 and studio.document.slowdown == 1.0


def test_overlays_tint_the_moving_parts(animated):
    studio = animated
    plain = studio.viewport.current_frame()
    studio.set_overlay("magnitude")
    assert mean_difference(plain, studio.viewport.current_frame()) > 1
    studio.cycle_overlay()
    assert studio.viewport.overlay_mode == "mask"
    studio.set_overlay("none")
    assert mean_difference(plain, studio.viewport.current_frame()) == 0


def test_rms_map_matches_the_motion_texture():
    motion = whole_photo_brush(24, 32)
    rms = rms_displacement_map(band_power_maps(motion), np.ones(motion.num_bands), motion.num_frames)
    texture = motion_to_texture(motion)  # (T, 2, H, W)
    expected = np.sqrt(np.square(texture).sum(axis=1).mean(axis=0))
    assert np.allclose(rms, expected, rtol=1e-3, atol=1e-4)


def test_playing_changes_frames_over_time(animated):
    viewport = animated.viewport
    first = viewport.current_frame()
    viewport.set_playing(True)
    viewport.advance(0.5)
    assert mean_difference(first, viewport.render_now()) > 0.5


def test_a_poke_moves_the_scene_then_it_settles(qtbot, animated):
    viewport = animated.viewport
    assert isinstance(viewport, CpuViewport)
    rest = viewport.current_frame()
    start = image_point_to_widget(viewport, 80, 48)
    pulled = image_point_to_widget(viewport, 92, 52)
    send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, start)
    send_mouse(viewport, QMouseEvent.Type.MouseMove, pulled)
    held = viewport.render_now()
    assert mean_difference(rest, held) > 1.0
    assert viewport.playback.poking
    send_mouse(viewport, QMouseEvent.Type.MouseButtonRelease, pulled)
    viewport.advance(0.2)
    swinging = viewport.render_now()
    assert mean_difference(rest, swinging) > 0.1
    settled = []
    viewport.poke_settled.connect(lambda: settled.append(True))
    for _ in range(60 * 30):  # at most a minute of simulated time
        viewport.advance(1 / 30)
        if not viewport.playback.poking:
            break
    assert settled == [True]
    assert mean_difference(rest, viewport.render_now()) < 0.05


def test_shift_click_in_the_viewport_picks_the_scanline(animated):
    viewport = animated.viewport
    send_mouse(viewport, QMouseEvent.Type.MouseButtonPress, image_point_to_widget(viewport, 40, 30),
               modifiers=Qt.ShiftModifier)
    assert animated.xt_view.row() == 30
    assert not viewport.playback.poking
