"""The live view: the loop playing in real time, and pokes that make the scene spring back.

Two widgets with the same interface and one base (ViewportBase), picked by create_viewport():

    Viewport     QOpenGLWidget drawing with app/render/gl.py's MeshWarpRenderer through moderngl
                 (moderngl.create_context() inside initializeGL attaches to Qt's context; frames are
                 drawn into ctx.detect_framebuffer(self.defaultFramebufferObject())).
    CpuViewport  QLabel fallback for platforms without OpenGL widgets (offscreen, broken drivers):
                 each frame is a backward warp on the CPU (playback.PreviewFrameRenderer).

Both are driven by playback.Playback (Qt-free: time and mouse in, band factors out); the overlay
math is in playback.py too, and the overlay's shaders in app/render/shaders/overlay.*.
Click-drag grabs the scene (the grabbed point follows the mouse), release lets it swing, and it is
stepped every frame until settled; Shift+click picks the X-t scanline instead; with the brush or
freeze tool a drag paints (stroke_point, stroke_finished); with the flow tool the mouse goes to the
Flow tool (flow_pressed(x, y, button), flow_dragged, flow_released; app/ui/flow_tool.py). A flow
layer (set_flow) plays along with the sway: the mesh (or the CPU warp) is drawn moved by its
forward and backward fields and the two are mixed (app/render/flow.py).

Shared interface: set_scene(image, motion), set_gains(gains), set_slowdown(s), set_playing(bool),
is_playing(), toggle_playing(), set_overlay(mode), set_mask_overlay(rgba), redraw(),
advance(seconds) -> settled, render_now() (draw without advancing time, return the frame),
current_frame() -> uint8 (H, W, 3), renderer_name; signals fps_measured(float),
scanline_picked(int), poke_settled(), failed(str), stroke_point(float, float), stroke_finished().
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QSurfaceFormat
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from PySide6.QtWidgets import QLabel, QSizePolicy

from app.core.spectral import Motion
from app.ui.playback import (  # noqa: F401 (re-exported: the viewport's public names)
    OVERLAYS, Clock, FpsCounter, Playback, PreviewFrameRenderer, band_power_maps, blend, composite,
    fields_from_factors, overlay_rgba, rms_displacement_map,
)

FRAME_INTERVAL_MS = 16
# While a job (Generate, Export) runs, the preview plays at about 8 frames a second, so that on a
# small or busy machine the GUI thread leaves the cores to the job.
BUSY_FRAME_INTERVAL_MS = 125
GL_MAX_BANDS = 16


# --- geometry -------------------------------------------------------------------------------------


def fit_rect(area_width: float, area_height: float, image_width: int, image_height: int) -> QRectF:
    """The largest rectangle of the image's aspect ratio centred in the area (letterboxing)."""
    if image_width <= 0 or image_height <= 0 or area_width <= 0 or area_height <= 0:
        return QRectF(0, 0, 0, 0)
    scale = min(area_width / image_width, area_height / image_height)
    width, height = image_width * scale, image_height * scale
    return QRectF((area_width - width) / 2, (area_height - height) / 2, width, height)


def widget_to_image(point: QPointF, rect: QRectF, image_width: int, image_height: int):
    """Widget point -> (x, y) in image pixels (pixel centres at integers); None outside the image."""
    if rect.width() <= 0 or rect.height() <= 0:
        return None
    x = (point.x() - rect.x()) / rect.width() * image_width - 0.5
    y = (point.y() - rect.y()) / rect.height() * image_height - 0.5
    if not (-0.5 <= x <= image_width - 0.5 and -0.5 <= y <= image_height - 0.5):
        return None
    return min(max(x, 0.0), image_width - 1.0), min(max(y, 0.0), image_height - 1.0)


# --- what both viewports share --------------------------------------------------------------------


class ViewportBase:
    """State, interface, overlays, mouse tools and the frame timer of both viewports.

    A subclass (a QWidget, with this class first among its bases, which also gives it the signals)
    calls _init_viewport() in its __init__ and implements set_scene, render_now, current_frame,
    redraw, _overlay_changed (redraw the overlay) and _frame_due (a new frame should be drawn)."""

    fps_measured = Signal(float)
    scanline_picked = Signal(int)
    poke_settled = Signal()
    failed = Signal(str)
    stroke_point = Signal(float, float)  # image (x, y) under a painting tool, press and drag
    stroke_finished = Signal()
    flow_pressed = Signal(float, float, int)  # image (x, y) and button (1 left, 2 right) under the flow tool
    flow_dragged = Signal(float, float)
    flow_released = Signal(float, float)

    def _init_viewport(self) -> None:
        self.playback = Playback()
        self.image = None
        self.band_power = None
        self.overlay_mode = "none"
        self.overlay = None
        self.mask_rgba = None  # uint8 (h, w, 4) picture of the painted masks, drawn over the overlay
        self.flow_rgba = None  # uint8 (h, w, 4) picture of the Flow tool's arrows, anchors and fluid, on top
        self.tool = "poke"  # "poke": drag the scene; "brush" / "freeze": paint strokes (stroke_* signals)
        self.flow_player = None  # app.render.flow.FlowPlayer of the flow layer, or None
        self.flow_follows_sway = False  # True: the flow loops over the sway's frames, on its clock
        self.stroke_last = None
        self.clock = Clock()
        self.fps_counter = FpsCounter()
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_INTERVAL_MS)
        self.timer.timeout.connect(self._on_timer)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.ClickFocus)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 200)

    # interface

    def _start_scene(self, image: np.ndarray, motion: Motion) -> None:
        """The shared half of set_scene."""
        self.image = np.ascontiguousarray(image)
        self.band_power = band_power_maps(motion)
        self.playback.set_motion(motion)
        self._refresh_overlay()

    def set_gains(self, gains) -> None:
        gains = np.asarray(gains, np.float32).reshape(-1)
        if self.playback.motion is not None:
            gains = gains[: self.playback.motion.num_bands]
        self.playback.set_gains(gains)
        self._refresh_overlay()
        self._overlay_changed()

    def set_slowdown(self, slowdown: float) -> None:
        self.playback.set_slowdown(slowdown)

    def set_flow(self, velocity, period: int = 0, fps: float = 30.0, follows_sway: bool = False) -> None:
        """Play a flow layer (float32 (2, H, W) velocity at the scene's size, a period-frame loop) with
        the sway, or none (velocity None). follows_sway: the flow loops over the sway's clock."""
        from app.render.flow import LIVE_MAX_SIDE, FlowPlayer

        self.flow_player = None if velocity is None else FlowPlayer(velocity, period, fps, LIVE_MAX_SIDE)
        self.flow_follows_sway = bool(follows_sway)
        self.redraw()

    def _flow_fields(self):
        """(forward, backward, share) of the flow layer now, or None."""
        if self.flow_player is None:
            return None
        if self.flow_follows_sway:
            return self.flow_player.fields(self.playback.phase)
        return self.flow_player.fields()

    def set_playing(self, playing: bool) -> None:
        self.playback.playing = bool(playing)

    def is_playing(self) -> bool:
        return self.playback.playing

    def toggle_playing(self) -> bool:
        self.set_playing(not self.playback.playing)
        return self.playback.playing

    def set_overlay(self, mode: str) -> None:
        if mode not in OVERLAYS:
            raise ValueError(f"Unknown overlay '{mode}'.")
        self.overlay_mode = mode
        self._refresh_overlay()
        self._overlay_changed()

    def set_mask_overlay(self, rgba: np.ndarray | None) -> None:
        """Show (or, with None, hide) a picture of the painted masks over the scene."""
        self.mask_rgba = rgba
        self._refresh_overlay()
        self._overlay_changed()

    def set_flow_overlay(self, rgba: np.ndarray | None) -> None:
        """Show (or, with None, hide) the Flow tool's picture over everything else."""
        self.flow_rgba = rgba
        self._refresh_overlay()
        self._overlay_changed()

    def advance(self, seconds: float) -> bool:
        """Move time on (the timer does this every frame; tests call it directly); True when a poke settled."""
        settled = self.playback.advance(seconds)
        if self.flow_player is not None and self.playback.playing and not self.flow_follows_sway:
            self.flow_player.advance(seconds, self.playback.slowdown)
        if settled:
            self.poke_settled.emit()
        return settled

    def _refresh_overlay(self) -> None:
        """Recompute the overlay after a scene, gains, mode or mask change."""
        overlay = None
        if self.overlay_mode != "none" and self.band_power is not None:
            rms = rms_displacement_map(self.band_power, self.playback.gains, self.playback.motion.num_frames)
            overlay = overlay_rgba(rms, self.overlay_mode)
        grid = None if self.image is None else self.image.shape[:2]
        if self.mask_rgba is not None and grid is not None and self.mask_rgba.shape[:2] != grid:
            self.mask_rgba = None  # painted for another photo
        if self.flow_rgba is not None and grid is not None and self.flow_rgba.shape[:2] != grid:
            self.flow_rgba = None  # drawn for another photo
        self.overlay = composite(self.flow_rgba, composite(self.mask_rgba, overlay))

    def _on_timer(self) -> None:
        settled = self.advance(self.clock.lap())
        if self.image is None or not self.isVisible() or self.window().isMinimized():
            return  # nothing to see: time goes on, nothing is drawn
        if self.playback.playing or self.playback.poking or settled:  # a still frame is not redrawn
            self._frame_due()

    # mouse

    def _image_point(self, event):
        if self.image is None:
            return None
        height, width = self.image.shape[:2]
        rect = fit_rect(self.width(), self.height(), width, height)
        return widget_to_image(event.position(), rect, width, height)

    def mousePressEvent(self, event) -> None:
        point = self._image_point(event)
        if (event.button() != Qt.LeftButton and self.tool != "flow") or point is None:
            return
        if self.tool == "flow" and point is not None and event.button() in (Qt.LeftButton, Qt.RightButton):
            self.stroke_last = point
            self.flow_pressed.emit(float(point[0]), float(point[1]), 2 if event.button() == Qt.RightButton else 1)
            return
        if event.modifiers() & Qt.ShiftModifier:
            self.scanline_picked.emit(int(round(point[1])))
            return
        if self.tool != "poke":
            self.stroke_last = point
            self.stroke_point.emit(float(point[0]), float(point[1]))
            return
        self.playback.press(*point)
        self.setCursor(Qt.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        painting = self.tool != "poke" and self.stroke_last is not None
        if (self.playback.grab_origin is None and not painting) or self.image is None:
            return
        height, width = self.image.shape[:2]
        rect = fit_rect(self.width(), self.height(), width, height)
        if rect.width() <= 0:
            return
        x = (event.position().x() - rect.x()) / rect.width() * width - 0.5
        y = (event.position().y() - rect.y()) / rect.height() * height - 0.5
        if painting and self.tool == "flow":
            self.stroke_last = (x, y)
            self.flow_dragged.emit(float(x), float(y))
            return
        if painting:
            self.stroke_last = (x, y)
            self.stroke_point.emit(float(x), float(y))
            return
        self.playback.drag(x, y)

    def mouseReleaseEvent(self, event) -> None:
        if self.tool == "flow" and self.stroke_last is not None:
            x, y = self.stroke_last
            self.stroke_last = None
            self.flow_released.emit(float(x), float(y))
            return
        if event.button() == Qt.LeftButton and self.stroke_last is not None:
            self.stroke_last = None
            self.stroke_finished.emit()
            return
        if event.button() == Qt.LeftButton and self.playback.grab_origin is not None:
            self.playback.release()
            self.unsetCursor()


# --- CPU viewport ---------------------------------------------------------------------------------


class CpuViewport(ViewportBase, QLabel):
    """The viewport without OpenGL: backward warp on the CPU, painted letterboxed."""

    renderer_name = "CPU (backward warp)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_viewport()
        self.frame_renderer: PreviewFrameRenderer | None = None
        self.device: str | None = None  # "cuda" or "cpu" for previews; None: playback.preview_device()
        self.frame: np.ndarray | None = None
        self.qimage: QImage | None = None
        self.setAlignment(Qt.AlignCenter)
        self.setText("Open a photo (Ctrl+O) or pick one from Examples.")
        self.setStyleSheet("background: #1e1e1e; color: #bbbbbb;")

    def set_scene(self, image: np.ndarray, motion: Motion) -> None:
        self._start_scene(image, motion)
        self.frame_renderer = PreviewFrameRenderer(self.image, motion, device=self.device)
        self.setText("")
        self.render_now()
        self.timer.start()

    def redraw(self) -> None:
        """Draw again after a change the timer would not notice (paused)."""
        self.render_now()

    def current_frame(self) -> np.ndarray | None:
        """The last frame drawn, uint8 (H, W, 3) at the preview size."""
        return None if self.frame is None else self.frame.copy()

    def render_now(self) -> np.ndarray | None:
        """Draw the current state at once (no time passes) and return the frame."""
        if self.frame_renderer is None:
            return None
        frame = blend(self.frame_renderer.render(self.playback.band_factors(), flow=self._flow_fields()), self.overlay)
        self.frame = np.ascontiguousarray(frame)
        height, width = frame.shape[:2]
        self.qimage = QImage(self.frame.data, width, height, 3 * width, QImage.Format_RGB888).copy()
        self.update()
        return self.frame

    def _overlay_changed(self) -> None:
        self.render_now()

    def _frame_due(self) -> None:
        if self.frame_renderer is None:
            return
        self.render_now()
        fps = self.fps_counter.tick()
        if fps is not None:
            self.fps_measured.emit(fps)

    def paintEvent(self, event) -> None:
        if self.qimage is None:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 30))
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        target = fit_rect(self.width(), self.height(), self.qimage.width(), self.qimage.height())
        painter.drawImage(target, self.qimage)
        painter.end()


# --- OpenGL viewport ------------------------------------------------------------------------------


def gl_surface_format() -> QSurfaceFormat:
    """OpenGL 3.3 core with a depth buffer (the mesh warp depth-sorts folds)."""
    surface_format = QSurfaceFormat()
    surface_format.setVersion(3, 3)
    surface_format.setProfile(QSurfaceFormat.CoreProfile)
    surface_format.setDepthBufferSize(24)
    return surface_format


class Viewport(ViewportBase, QOpenGLWidget):
    """The OpenGL viewport: MeshWarpRenderer into Qt's framebuffer, overlay blended on top."""

    def __init__(self, parent=None, grid_px: int | None = None):
        super().__init__(parent)
        self._init_viewport()
        self.setFormat(gl_surface_format())
        self.grid_px = grid_px
        self.ctx = None
        self.motion: Motion | None = None
        self.mesh_renderer = None
        self.scene_dirty = False
        self.overlay_dirty = False
        self.overlay_program = None
        self.overlay_array = None
        self.overlay_texture = None
        self.framebuffers = {}
        self.renderer_name = "OpenGL"
        self.gl_error: str | None = None

    # interface

    def set_scene(self, image: np.ndarray, motion: Motion) -> None:
        if motion.num_bands > GL_MAX_BANDS:
            motion = Motion(motion.spectrum[:GL_MAX_BANDS], motion.num_frames, motion.fps)
        self._start_scene(image, motion)
        self.motion = motion
        self.scene_dirty = True
        self.overlay_dirty = True
        self.update()
        self.timer.start()

    def redraw(self) -> None:
        """Draw again after a change the timer would not notice (paused)."""
        self.update()

    def current_frame(self) -> np.ndarray | None:
        """What the widget shows, uint8 (h, w, 3) at the widget's size in device pixels."""
        if self.ctx is None:
            return None
        qimage = self.grabFramebuffer().convertToFormat(QImage.Format_RGB888)
        width, height = qimage.width(), qimage.height()
        data = np.frombuffer(qimage.constBits(), np.uint8, count=qimage.bytesPerLine() * height)
        return data.reshape(height, qimage.bytesPerLine())[:, : 3 * width].reshape(height, width, 3).copy()

    def render_now(self) -> np.ndarray | None:
        """Draw the current state now and return the frame."""
        return self.current_frame()

    def _overlay_changed(self) -> None:
        self.overlay_dirty = True
        self.update()

    def _frame_due(self) -> None:
        self.update()

    # GL

    def initializeGL(self) -> None:
        try:
            import moderngl

            from app.render.gl import device_name, shader_source

            self.ctx = moderngl.create_context(require=330)
            self.renderer_name = f"OpenGL ({device_name(self.ctx)})"
            self.overlay_program = self.ctx.program(vertex_shader=shader_source("overlay.vert"),
                                                    fragment_shader=shader_source("overlay.frag"))
            self.overlay_array = self.ctx.vertex_array(self.overlay_program, [])
            self.context().aboutToBeDestroyed.connect(self._release_gl)
        except Exception as error:  # no GL 3.3, no moderngl: the window falls back to the CPU viewport
            self.ctx = None
            self.gl_error = f"OpenGL is not available for the viewport ({error})."
            QTimer.singleShot(0, lambda: self.failed.emit(self.gl_error))

    def _framebuffer(self):
        fbo_id = int(self.defaultFramebufferObject())
        if fbo_id not in self.framebuffers:
            self.framebuffers = {fbo_id: self.ctx.detect_framebuffer(fbo_id)}
        return self.framebuffers[fbo_id]

    def _rebuild_scene(self) -> None:
        from app.render.gl import MeshWarpRenderer, device_name

        if self.mesh_renderer is not None:
            self.mesh_renderer.release()
            self.mesh_renderer = None
        grid_px = self.grid_px or (4 if device_name(self.ctx) == "llvmpipe" else 2)
        self.mesh_renderer = MeshWarpRenderer(self.ctx, self.image, self.motion, grid_px=grid_px)
        self.scene_dirty = False

    def _upload_overlay(self) -> None:
        if self.overlay_texture is not None:
            self.overlay_texture.release()
            self.overlay_texture = None
        if self.overlay is not None:
            height, width = self.overlay.shape[:2]
            self.overlay_texture = self.ctx.texture((width, height), 4, np.ascontiguousarray(self.overlay).tobytes())
        self.overlay_dirty = False

    def paintGL(self) -> None:
        if self.ctx is None:
            return
        import moderngl

        try:
            framebuffer = self._framebuffer()
            framebuffer.use()
            self.ctx.viewport = (0, 0, framebuffer.width, framebuffer.height)
            framebuffer.clear(0.12, 0.12, 0.12, 1.0, depth=1.0)
            if self.image is None:
                return
            if self.scene_dirty:
                self._rebuild_scene()
            if self.overlay_dirty:
                self._upload_overlay()
            ratio = self.devicePixelRatioF()
            height, width = self.image.shape[:2]
            rect = fit_rect(self.width() * ratio, self.height() * ratio, width, height)
            bottom = framebuffer.height - (rect.y() + rect.height())
            viewport = (int(round(rect.x())), int(round(bottom)), int(round(rect.width())),
                        int(round(rect.height())))
            self.mesh_renderer.draw(self.playback.band_factors(), framebuffer, viewport=viewport, flip_y=True,
                                    flow=self._flow_fields())
            if self.overlay_texture is not None:
                self.ctx.viewport = viewport
                self.ctx.enable(moderngl.BLEND)
                # colour blends over the frame; the framebuffer's alpha stays 1 (Qt composes the widget
                # as premultiplied alpha: a translucent framebuffer would show garbled colours)
                self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA, moderngl.ZERO, moderngl.ONE
                self.overlay_texture.use(0)
                self.overlay_program["overlay"].value = 0
                self.overlay_array.render(moderngl.TRIANGLES, vertices=3)
                self.ctx.disable(moderngl.BLEND)
        except Exception as error:
            self.ctx = None
            self.gl_error = f"The OpenGL viewport failed ({error})."
            QTimer.singleShot(0, lambda: self.failed.emit(self.gl_error))
            return
        fps = self.fps_counter.tick()
        if fps is not None:
            self.fps_measured.emit(fps)

    def _release_gl(self) -> None:
        """Free GL objects while Qt's context still exists."""
        if self.ctx is None:
            return
        self.makeCurrent()
        for resource in (self.mesh_renderer, self.overlay_texture, self.overlay_array, self.overlay_program):
            if resource is not None:
                resource.release()
        self.mesh_renderer = self.overlay_texture = self.overlay_array = self.overlay_program = None
        self.framebuffers = {}
        self.doneCurrent()
        self.ctx = None


# --- picking one ----------------------------------------------------------------------------------


def gl_viewport_supported() -> bool:
    """True when this Qt platform can show an OpenGL widget (not offscreen/minimal; not forced off)."""
    if os.environ.get("AEOLUS_VIEWPORT", "").lower() == "cpu":
        return False
    platform = QGuiApplication.platformName().lower()
    return platform not in ("offscreen", "minimal", "vnc", "")


def create_viewport(parent=None):
    """The GL viewport where the platform supports it, else the CPU fallback."""
    return Viewport(parent) if gl_viewport_supported() else CpuViewport(parent)
