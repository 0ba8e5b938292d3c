"""The live view: the loop playing in real time, and pokes that make the scene spring back.

Two widgets with the same interface, picked by create_viewport():

    Viewport     QOpenGLWidget drawing with app/render/gl.py's MeshWarpRenderer through moderngl
                 (moderngl.create_context() inside initializeGL attaches to Qt's context; frames are
                 drawn into ctx.detect_framebuffer(self.defaultFramebufferObject())).
    CpuViewport  QLabel fallback for platforms without OpenGL widgets (offscreen, broken drivers):
                 each frame is a backward warp on the CPU (an einsum for the displacement field,
                 OpenCV remap for the pixels).

Both are driven by Playback, a plain object that turns time into the K complex band factors a
renderer consumes:

    factors = (band_factors(K, T, phase) + q) * gains

phase advances with real time * fps / slowdown, q are the modal coordinates of a ModalSimulator
(app/core/modal.py) while a poke is alive, and gains are the document's band gains * magnitude.
Click-drag grabs the scene (the grabbed point follows the mouse), release lets it swing, and it is
stepped every frame until settled; Shift+click picks the X-t scanline instead.

Shared interface: set_scene(image, motion), set_gains(gains), set_slowdown(s), set_playing(bool),
is_playing(), toggle_playing(), set_overlay(mode), redraw(), advance(seconds) -> settled,
render_now() (draw without advancing time, return the frame),
current_frame() -> uint8 (H, W, 3), renderer_name; signals fps_measured(float),
scanline_picked(int), poke_settled(), failed(str).
"""

from __future__ import annotations

import os
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QSurfaceFormat
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from PySide6.QtWidgets import QLabel, QSizePolicy

from app.core.spectral import Motion, band_factors, scale_bands

OVERLAYS = ("none", "magnitude", "mask")
MASK_THRESHOLD_PX = 0.1  # a pixel whose RMS displacement is above this counts as moving
FRAME_INTERVAL_MS = 16
MAX_FRAME_SECONDS = 0.1  # a late frame advances time by at most this much
FPS_WINDOW_SECONDS = 1.0
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


# --- overlays -------------------------------------------------------------------------------------


def band_power_maps(motion: Motion) -> np.ndarray:
    """(K, H, W) float32: |S_x,k|^2 + |S_y,k|^2 per band, the ingredients of the RMS map."""
    return np.square(np.abs(motion.spectrum)).sum(axis=1).astype(np.float32)


def rms_displacement_map(band_power: np.ndarray, gains, num_frames: int) -> np.ndarray:
    """(H, W) RMS displacement over the loop in pixels, by Parseval: sqrt(sum_k c_k g_k^2 P_k) / T.

    c_k = 1 for the DC band, 2 for the others (each stands for itself and its mirror frequency).
    """
    gains = np.asarray(gains, np.float64).reshape(-1)
    weights = np.where(np.arange(len(gains)) == 0, 1.0, 2.0) * np.square(np.abs(gains))  # (K,)
    power = np.einsum("k,khw->hw", weights.astype(np.float32), band_power, optimize=False)  # (H, W)
    return np.sqrt(np.maximum(power, 0.0)) / float(num_frames)


def overlay_rgba(rms: np.ndarray, mode: str) -> np.ndarray | None:
    """uint8 (H, W, 4) overlay for mode "magnitude" (heat colours) or "mask" (cyan); None for "none"."""
    if mode == "none":
        return None
    if mode not in OVERLAYS:
        raise ValueError(f"Unknown overlay '{mode}'; choose none, magnitude or mask.")
    height, width = rms.shape
    rgba = np.zeros((height, width, 4), np.float32)
    if mode == "magnitude":
        scale = float(np.percentile(rms, 99.5)) if rms.size else 0.0
        level = np.clip(rms / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(rms)
        rgba[..., 0] = np.clip(3 * level, 0, 1)
        rgba[..., 1] = np.clip(3 * level - 1, 0, 1)
        rgba[..., 2] = np.clip(3 * level - 2, 0, 1)
        rgba[..., 3] = 0.15 + 0.55 * level
    else:
        moving = rms > MASK_THRESHOLD_PX
        rgba[moving] = (0.0, 0.9, 1.0, 0.4)
    return (rgba * 255).round().astype(np.uint8)


def blend(frame: np.ndarray, rgba: np.ndarray | None) -> np.ndarray:
    """Alpha-blend an RGBA overlay over a uint8 (H, W, 3) frame."""
    if rgba is None:
        return frame
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    mixed = frame.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return mixed.round().astype(np.uint8)


# --- time and pokes -------------------------------------------------------------------------------


class Playback:
    """The loop's clock plus the modal simulator: time and mouse in, band factors out."""

    def __init__(self):
        self.motion: Motion | None = None
        self.gains = np.ones(1, np.float32)
        self.slowdown = 1.0
        self.phase = 0.0  # position in the loop, in the motion's frames, [0, T)
        self.playing = True
        self.simulator = None
        self.grab_origin: tuple[float, float] | None = None

    def set_motion(self, motion: Motion | None) -> None:
        self.motion = motion
        self.gains = np.ones(motion.num_bands if motion is not None else 1, np.float32)
        self.phase = 0.0
        self.drop_poke()

    def set_gains(self, gains) -> None:
        gains = np.asarray(gains, np.float32).reshape(-1)
        if not np.array_equal(gains, self.gains):
            self.gains = gains.copy()
            self.drop_poke()  # its modes just changed shape

    def set_slowdown(self, slowdown: float) -> None:
        if float(slowdown) != self.slowdown:
            self.slowdown = float(slowdown)
            self.drop_poke()  # the springs' stiffness follows the speed

    @property
    def poking(self) -> bool:
        return self.simulator is not None

    def drop_poke(self) -> None:
        self.simulator = None
        self.grab_origin = None

    def advance(self, seconds: float) -> bool:
        """Move time on by `seconds`; True when a poke has just settled (and was dropped)."""
        if self.motion is None:
            return False
        if self.playing:
            self.phase = (self.phase + seconds * self.motion.fps / self.slowdown) % self.motion.num_frames
        if self.simulator is None:
            return False
        self.simulator.step(max(0.0, float(seconds)))
        if self.grab_origin is None and self.simulator.is_settled():
            self.simulator = None
            return True
        return False

    def band_factors(self) -> np.ndarray | None:
        """complex64 (K,) factors of the base motion for the current frame."""
        if self.motion is None:
            return None
        factors = band_factors(self.motion.num_bands, self.motion.num_frames, self.phase).astype(np.complex128)
        if self.simulator is not None:
            factors = factors + self.simulator.band_factors()
        return (factors * self.gains).astype(np.complex64)

    # mouse, in image pixels

    def _ensure_simulator(self) -> None:
        if self.simulator is None:
            from app.core.modal import ModalParameters, ModalSimulator

            edited = scale_bands(self.motion, self.gains)
            self.simulator = ModalSimulator(edited, ModalParameters(stiffness=1.0 / self.slowdown))

    def press(self, x: float, y: float) -> None:
        """Grab the scene at (x, y)."""
        if self.motion is None:
            return
        self._ensure_simulator()
        self.grab_origin = (float(x), float(y))
        self.simulator.grab(x, y, 0.0, 0.0)

    def drag(self, x: float, y: float) -> None:
        """Pull the grabbed point towards (x, y)."""
        if self.grab_origin is None or self.simulator is None:
            return
        origin_x, origin_y = self.grab_origin
        self.simulator.grab(origin_x, origin_y, float(x) - origin_x, float(y) - origin_y)

    def release(self) -> None:
        """Let go: the scene swings back and dies out."""
        if self.grab_origin is None or self.simulator is None:
            return
        self.simulator.release()
        self.grab_origin = None


# --- CPU frames -----------------------------------------------------------------------------------


def fields_from_factors(factors, spectrum) -> np.ndarray:
    """Re(factors @ spectrum): complex (N, K) factors, complex (K, X) spectrum -> float32 (N, X).

    The same sum displacement_at evaluates, written as a plain einsum (no BLAS): on a busy 2-core
    machine numpy's threaded BLAS stalls next to torch's thread pool, a single-threaded loop does not.
    """
    factors = np.atleast_2d(np.asarray(factors, np.complex64))
    spectrum = np.asarray(spectrum, np.complex64)
    real = np.einsum("nk,kx->nx", factors.real, np.ascontiguousarray(spectrum.real), optimize=False)
    imaginary = np.einsum("nk,kx->nx", factors.imag, np.ascontiguousarray(spectrum.imag), optimize=False)
    return (real - imaginary).astype(np.float32)


class PreviewFrameRenderer:
    """Band factors -> frame without OpenGL.

    With CUDA: the quality path, softmax splatting + hole filling on the GPU (the export's
    renderer). Without: backward warping on the CPU, frame(p) = image(p - F(p)), fast enough to play.
    F = Re sum_k w_k S_k in both.
    """

    def __init__(self, image: np.ndarray, motion: Motion, device: str | None = None):
        self.image = np.ascontiguousarray(image)
        self.height, self.width = image.shape[:2]
        self.spectrum = np.ascontiguousarray(motion.spectrum.reshape(motion.num_bands, -1))  # (K, 2HW)
        self.device = device or _preview_device()
        if self.device == "cuda":
            import torch

            from app.render.splat import importance_from_motion, mean_motion_magnitude

            self.image_tensor = torch.from_numpy(self.image.copy()).permute(2, 0, 1)[None].float().div(255).cuda()
            self.importance = importance_from_motion(mean_motion_magnitude(motion), 1.0).cuda()  # (1, 1, H, W)

    def displacement(self, factors) -> np.ndarray:
        """float32 (2, H, W) displacement field for complex (K,) band factors."""
        return fields_from_factors(factors, self.spectrum).reshape(2, self.height, self.width)

    def render(self, factors) -> np.ndarray:
        if self.device == "cuda":
            return self._render_splat(factors)
        from app.render.warp import backward_warp

        return backward_warp(self.image, self.displacement(factors))

    def _render_splat(self, factors) -> np.ndarray:
        import torch

        from app.render.splat import splat_frames

        with torch.inference_mode():
            flow = torch.from_numpy(self.displacement(factors))[None].cuda()  # (1, 2, H, W)
            frame = splat_frames(self.image_tensor, flow, self.importance)[0]  # (3, H, W)
            return (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _preview_device() -> str:
    """'cuda' when torch sees a GPU (quality preview), else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class FpsCounter:
    """Frames per second over the last FPS_WINDOW_SECONDS; tick() returns a value once per window."""

    def __init__(self):
        self.started = time.perf_counter()
        self.frames = 0

    def tick(self) -> float | None:
        self.frames += 1
        elapsed = time.perf_counter() - self.started
        if elapsed < FPS_WINDOW_SECONDS:
            return None
        fps = self.frames / elapsed
        self.started, self.frames = time.perf_counter(), 0
        if elapsed > 2 * FPS_WINDOW_SECONDS:
            return None  # frames stopped for a while (paused, hidden): not a rate worth showing
        return fps


class _Clock:
    """Seconds since the last call, at most MAX_FRAME_SECONDS."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return min(seconds, MAX_FRAME_SECONDS)


# --- the shared widget behaviour ----------------------------------------------------------------


def _setup_common(widget) -> None:
    """State both viewports keep (called from their __init__)."""
    widget.playback = Playback()
    widget.image = None
    widget.band_power = None
    widget.overlay_mode = "none"
    widget.overlay = None
    widget.mask_rgba = None  # uint8 (h, w, 4) picture of the painted masks, drawn over the overlay
    widget.tool = "poke"  # "poke": drag the scene; "brush" / "freeze": paint strokes (stroke_* signals)
    widget.stroke_last = None
    widget.clock = _Clock()
    widget.fps_counter = FpsCounter()
    widget.timer = QTimer(widget)
    widget.timer.setInterval(FRAME_INTERVAL_MS)
    widget.timer.timeout.connect(widget._on_timer)
    widget.setMouseTracking(False)
    widget.setFocusPolicy(Qt.ClickFocus)
    widget.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
    widget.setMinimumSize(320, 200)


def _refresh_overlay(widget) -> None:
    """Recompute the overlay after a scene, gains, mode or mask change."""
    overlay = None
    if widget.overlay_mode != "none" and widget.band_power is not None:
        rms = rms_displacement_map(widget.band_power, widget.playback.gains, widget.playback.motion.num_frames)
        overlay = overlay_rgba(rms, widget.overlay_mode)
    widget.overlay = _over(widget.mask_rgba, overlay)


def _over(top: np.ndarray | None, bottom: np.ndarray | None) -> np.ndarray | None:
    """Alpha-composite two uint8 (H, W, 4) overlays (either may be None)."""
    if top is None:
        return bottom
    if bottom is None or bottom.shape != top.shape:
        return top
    top_alpha = top[..., 3:4].astype(np.float32) / 255.0
    bottom_alpha = bottom[..., 3:4].astype(np.float32) / 255.0
    alpha = top_alpha + bottom_alpha * (1 - top_alpha)
    colour = (top[..., :3] * top_alpha + bottom[..., :3] * bottom_alpha * (1 - top_alpha)) / np.maximum(alpha, 1e-6)
    return np.concatenate([colour, alpha * 255.0], axis=-1).round().clip(0, 255).astype(np.uint8)


def set_mask_overlay(widget, rgba: np.ndarray | None) -> None:
    """Show (or, with None, hide) a picture of the painted masks over the scene."""
    widget.mask_rgba = rgba
    _refresh_overlay(widget)
    if hasattr(widget, "overlay_dirty"):
        widget.overlay_dirty = True
        widget.update()
    else:
        widget.render_now()


def _image_point(widget, event):
    if widget.image is None:
        return None
    height, width = widget.image.shape[:2]
    rect = fit_rect(widget.width(), widget.height(), width, height)
    return widget_to_image(event.position(), rect, width, height)


def _press(widget, event) -> None:
    point = _image_point(widget, event)
    if event.button() != Qt.LeftButton or point is None:
        return
    if event.modifiers() & Qt.ShiftModifier:
        widget.scanline_picked.emit(int(round(point[1])))
        return
    if widget.tool != "poke":
        widget.stroke_last = point
        widget.stroke_point.emit(float(point[0]), float(point[1]))
        return
    widget.playback.press(*point)
    widget.setCursor(Qt.ClosedHandCursor)


def _move(widget, event) -> None:
    painting = widget.tool != "poke" and widget.stroke_last is not None
    if (widget.playback.grab_origin is None and not painting) or widget.image is None:
        return
    height, width = widget.image.shape[:2]
    rect = fit_rect(widget.width(), widget.height(), width, height)
    if rect.width() <= 0:
        return
    x = (event.position().x() - rect.x()) / rect.width() * width - 0.5
    y = (event.position().y() - rect.y()) / rect.height() * height - 0.5
    if painting:
        widget.stroke_last = (x, y)
        widget.stroke_point.emit(float(x), float(y))
        return
    widget.playback.drag(x, y)


def _release(widget, event) -> None:
    if event.button() == Qt.LeftButton and widget.stroke_last is not None:
        widget.stroke_last = None
        widget.stroke_finished.emit()
        return
    if event.button() == Qt.LeftButton and widget.playback.grab_origin is not None:
        widget.playback.release()
        widget.unsetCursor()


# --- CPU viewport ---------------------------------------------------------------------------------


class CpuViewport(QLabel):
    """The viewport without OpenGL: backward warp on the CPU, painted letterboxed."""

    fps_measured = Signal(float)
    scanline_picked = Signal(int)
    poke_settled = Signal()
    failed = Signal(str)
    stroke_point = Signal(float, float)  # image (x, y) under a painting tool, press and drag
    stroke_finished = Signal()

    renderer_name = "CPU (backward warp)"

    def __init__(self, parent=None):
        super().__init__(parent)
        _setup_common(self)
        self.frame_renderer: PreviewFrameRenderer | None = None
        self.frame: np.ndarray | None = None
        self.qimage: QImage | None = None
        self.setAlignment(Qt.AlignCenter)
        self.setText("Open a photo (Ctrl+O) or pick one from Examples.")
        self.setStyleSheet("background: #1e1e1e; color: #bbbbbb;")

    # interface

    def set_scene(self, image: np.ndarray, motion: Motion) -> None:
        self.image = np.ascontiguousarray(image)
        self.frame_renderer = PreviewFrameRenderer(self.image, motion)
        self.band_power = band_power_maps(motion)
        self.playback.set_motion(motion)
        _refresh_overlay(self)
        self.setText("")
        self.render_now()
        self.timer.start()

    def set_gains(self, gains) -> None:
        self.playback.set_gains(gains)
        _refresh_overlay(self)
        self.render_now()

    def set_slowdown(self, slowdown: float) -> None:
        self.playback.set_slowdown(slowdown)

    def set_playing(self, playing: bool) -> None:
        self.playback.playing = bool(playing)

    def is_playing(self) -> bool:
        return self.playback.playing

    def toggle_playing(self) -> bool:
        self.set_playing(not self.playback.playing)
        return self.playback.playing

    def set_mask_overlay(self, rgba) -> None:
        set_mask_overlay(self, rgba)

    def set_overlay(self, mode: str) -> None:
        if mode not in OVERLAYS:
            raise ValueError(f"Unknown overlay '{mode}'.")
        self.overlay_mode = mode
        _refresh_overlay(self)
        self.render_now()

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
        frame = blend(self.frame_renderer.render(self.playback.band_factors()), self.overlay)
        self.frame = np.ascontiguousarray(frame)
        height, width = frame.shape[:2]
        self.qimage = QImage(self.frame.data, width, height, 3 * width, QImage.Format_RGB888).copy()
        self.update()
        return self.frame

    def advance(self, seconds: float) -> bool:
        """Move time on (the timer does this every frame; tests call it directly); True when a poke settled."""
        settled = self.playback.advance(seconds)
        if settled:
            self.poke_settled.emit()
        return settled

    # Qt

    def _on_timer(self) -> None:
        settled = self.advance(self.clock.lap())
        if self.frame_renderer is None or not self.isVisible():
            return
        if self.playback.playing or self.playback.poking or settled:  # a still frame is not redrawn
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

    def mousePressEvent(self, event) -> None:
        _press(self, event)

    def mouseMoveEvent(self, event) -> None:
        _move(self, event)

    def mouseReleaseEvent(self, event) -> None:
        _release(self, event)


# --- OpenGL viewport ------------------------------------------------------------------------------

OVERLAY_VERTEX_SHADER = """
#version 330
out vec2 uv;
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    uv = vec2(corner.x, 1.0 - corner.y);  // texture row 0 (the image's top row) at the top
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
"""

OVERLAY_FRAGMENT_SHADER = """
#version 330
uniform sampler2D overlay;
in vec2 uv;
out vec4 colour;
void main() {
    colour = texture(overlay, uv);
}
"""


def gl_surface_format() -> QSurfaceFormat:
    """OpenGL 3.3 core with a depth buffer (the mesh warp depth-sorts folds)."""
    surface_format = QSurfaceFormat()
    surface_format.setVersion(3, 3)
    surface_format.setProfile(QSurfaceFormat.CoreProfile)
    surface_format.setDepthBufferSize(24)
    return surface_format


class Viewport(QOpenGLWidget):
    """The OpenGL viewport: MeshWarpRenderer into Qt's framebuffer, overlay blended on top."""

    fps_measured = Signal(float)
    scanline_picked = Signal(int)
    poke_settled = Signal()
    failed = Signal(str)
    stroke_point = Signal(float, float)  # image (x, y) under a painting tool, press and drag
    stroke_finished = Signal()

    def __init__(self, parent=None, grid_px: int | None = None):
        super().__init__(parent)
        _setup_common(self)
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
        self.image = np.ascontiguousarray(image)
        self.motion = motion
        self.band_power = band_power_maps(motion)
        self.playback.set_motion(motion)
        _refresh_overlay(self)
        self.scene_dirty = True
        self.overlay_dirty = True
        self.update()
        self.timer.start()

    def set_gains(self, gains) -> None:
        gains = np.asarray(gains, np.float32).reshape(-1)[: self.playback.gains.shape[0]]
        self.playback.set_gains(gains)
        _refresh_overlay(self)
        self.overlay_dirty = True
        self.update()

    def set_slowdown(self, slowdown: float) -> None:
        self.playback.set_slowdown(slowdown)

    def set_playing(self, playing: bool) -> None:
        self.playback.playing = bool(playing)

    def is_playing(self) -> bool:
        return self.playback.playing

    def toggle_playing(self) -> bool:
        self.set_playing(not self.playback.playing)
        return self.playback.playing

    def set_mask_overlay(self, rgba) -> None:
        set_mask_overlay(self, rgba)

    def set_overlay(self, mode: str) -> None:
        if mode not in OVERLAYS:
            raise ValueError(f"Unknown overlay '{mode}'.")
        self.overlay_mode = mode
        _refresh_overlay(self)
        self.overlay_dirty = True
        self.update()

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

    def advance(self, seconds: float) -> bool:
        """Move time on; True when a poke has just settled."""
        settled = self.playback.advance(seconds)
        if settled:
            self.poke_settled.emit()
        return settled

    # GL

    def initializeGL(self) -> None:
        try:
            import moderngl

            from app.render.gl import device_name

            self.ctx = moderngl.create_context(require=330)
            self.renderer_name = f"OpenGL ({device_name(self.ctx)})"
            self.overlay_program = self.ctx.program(vertex_shader=OVERLAY_VERTEX_SHADER,
                                                    fragment_shader=OVERLAY_FRAGMENT_SHADER)
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
            self.mesh_renderer.draw(self.playback.band_factors(), framebuffer, viewport=viewport, flip_y=True)
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

    # Qt

    def _on_timer(self) -> None:
        settled = self.advance(self.clock.lap())
        if self.image is not None and self.isVisible() and (self.playback.playing or self.playback.poking or settled):
            self.update()

    def mousePressEvent(self, event) -> None:
        _press(self, event)

    def mouseMoveEvent(self, event) -> None:
        _move(self, event)

    def mouseReleaseEvent(self, event) -> None:
        _release(self, event)


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
