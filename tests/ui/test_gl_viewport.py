"""The real OpenGL viewport (QOpenGLWidget + moderngl): needs a GL-capable Qt platform.

Run under Xvfb:  QT_QPA_PLATFORM=xcb xvfb-run -a .venv/bin/python -m pytest -q -m glwidget tests/ui
(`make test` does this when xvfb-run is installed).
"""

import numpy as np
import pytest
from PySide6.QtGui import QMouseEvent

from app.ui.viewport import Viewport, gl_viewport_supported
from ui_helpers import image_point_to_widget, mean_difference, send_mouse, textured_photo, whole_photo_brush

pytestmark = pytest.mark.glwidget


@pytest.fixture
def gl_viewport(qtbot):
    if not gl_viewport_supported():
        pytest.skip("this Qt platform has no OpenGL widgets (run under xvfb-run with QT_QPA_PLATFORM=xcb)")
    viewport = Viewport(grid_px=2)
    viewport.resize(480, 320)
    qtbot.addWidget(viewport)
    with qtbot.waitExposed(viewport):
        viewport.show()
    qtbot.waitUntil(lambda: viewport.ctx is not None or viewport.gl_error is not None, timeout=5000)
    if viewport.gl_error:
        pytest.fail(viewport.gl_error)
    image = textured_photo()
    viewport.set_scene(image, whole_photo_brush(*image.shape[:2]))
    viewport.set_playing(False)
    viewport.playback.phase = 17.0
    yield viewport
    viewport.close()


def test_the_gl_viewport_draws_the_photo_letterboxed(gl_viewport):
    frame = gl_viewport.current_frame()
    assert frame.shape[:2] == (320, 480)  # the widget, device pixels
    assert frame[0].std() < 1  # a letterbox band above the photo ...
    assert frame[160].std() > 20  # ... and the textured photo in the middle
    assert "OpenGL" in gl_viewport.renderer_name


def test_band_gains_change_the_gl_frame(gl_viewport):
    before = gl_viewport.current_frame()
    gains = gl_viewport.playback.gains.copy()
    gains[1:] = 0
    gl_viewport.set_gains(gains)
    assert mean_difference(before, gl_viewport.current_frame()) > 0.5


def test_overlay_shows_in_the_gl_frame_and_keeps_it_opaque(gl_viewport):
    before = gl_viewport.current_frame()
    gl_viewport.set_overlay("magnitude")
    assert mean_difference(before, gl_viewport.current_frame()) > 1
    # Qt composes the widget as premultiplied alpha: a translucent framebuffer would garble colours
    gl_viewport.makeCurrent()
    gl_viewport.paintGL()
    framebuffer = gl_viewport.ctx.detect_framebuffer(gl_viewport.defaultFramebufferObject())
    alpha = np.frombuffer(framebuffer.read(components=4, alignment=1), np.uint8)[3::4]
    gl_viewport.doneCurrent()
    assert alpha.min() == 255


def test_a_poke_moves_the_gl_frame_then_it_settles(gl_viewport):
    rest = gl_viewport.current_frame()
    start = image_point_to_widget(gl_viewport, 80, 48)
    pulled = image_point_to_widget(gl_viewport, 92, 52)
    send_mouse(gl_viewport, QMouseEvent.Type.MouseButtonPress, start)
    send_mouse(gl_viewport, QMouseEvent.Type.MouseMove, pulled)
    assert mean_difference(rest, gl_viewport.current_frame()) > 1
    send_mouse(gl_viewport, QMouseEvent.Type.MouseButtonRelease, pulled)
    for _ in range(60 * 30):
        gl_viewport.advance(1 / 30)
        if not gl_viewport.playback.poking:
            break
    assert not gl_viewport.playback.poking
    assert mean_difference(rest, gl_viewport.current_frame()) < 0.05


def test_the_main_window_picks_the_gl_viewport(qtbot, settings):
    if not gl_viewport_supported():
        pytest.skip("no OpenGL widgets on this platform")
    from app.ui.main_window import MainWindow

    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    with qtbot.waitExposed(window):
        window.show()
    assert isinstance(window.viewport, Viewport)
    window.document.set_photo(textured_photo(), "test", None, whole_photo_brush(96, 160))
    qtbot.waitUntil(lambda: window.viewport.mesh_renderer is not None, timeout=5000)
    window.close()


def test_painted_masks_show_in_the_gl_frame_and_strokes_are_signalled(qtbot, gl_viewport):
    from app.ui.brush import mask_overlay

    before = gl_viewport.current_frame()
    height, width = gl_viewport.image.shape[:2]
    freeze = np.zeros((height, width), np.float32)
    freeze[20:70, 30:120] = 1.0
    gl_viewport.set_mask_overlay(mask_overlay(None, freeze, height, width))
    assert mean_difference(before, gl_viewport.current_frame()) > 1
    gl_viewport.tool = "freeze"
    points = []
    gl_viewport.stroke_point.connect(lambda x, y: points.append((x, y)))
    with qtbot.waitSignal(gl_viewport.stroke_finished, timeout=1000):
        send_mouse(gl_viewport, QMouseEvent.Type.MouseButtonPress, image_point_to_widget(gl_viewport, 40, 40))
        send_mouse(gl_viewport, QMouseEvent.Type.MouseMove, image_point_to_widget(gl_viewport, 60, 40))
        send_mouse(gl_viewport, QMouseEvent.Type.MouseButtonRelease, image_point_to_widget(gl_viewport, 60, 40))
    assert len(points) == 2 and abs(points[0][0] - 40) < 1 and abs(points[1][0] - 60) < 1
    assert gl_viewport.playback.grab_origin is None  # painting never pokes the scene


def test_the_gl_viewport_plays_a_flow_layer_with_the_sway(gl_viewport):
    from app.core.flow_field import FlowHints, flow_from_hints

    height, width = gl_viewport.image.shape[:2]
    before = gl_viewport.current_frame()
    hints = FlowHints(width, height, arrows=[[10, height / 2, 90, 0]], num_frames=30)
    gl_viewport.set_flow(flow_from_hints(hints, height, width).velocity, 30, 30.0)
    gl_viewport.advance(0.4)  # paused: the flow's clock stands still too
    assert mean_difference(before, gl_viewport.current_frame()) < 0.5
    gl_viewport.set_playing(True)
    gl_viewport.advance(0.4)
    flowing = gl_viewport.current_frame()
    assert mean_difference(before, flowing) > 1.0
    gl_viewport.set_flow(None)
    assert mean_difference(flowing, gl_viewport.current_frame()) > 1.0
