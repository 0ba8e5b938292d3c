"""Export…: the loop to a file, with format, size, loops, slow motion, magnification and renderer.

ExportDialog collects an ExportRequest and runs export_job in a Worker behind a progress dialog
with a Cancel button. The three renderers:

    gl     fast: the OpenGL mesh warp (app/render/gl.py) on a headless EGL context in the worker
           thread, one vertex per pixel; frames go to export_frames.
    splat  softmax splatting with hole filling (render_to_file), the CLI's default.
    net    the learned renderer (render_to_file); offered only when models/renderer.safetensors exists.

A GIF offers its frame rate (the loop keeps its exact duration: fewer frames, longer delays) and
its palette size, and shows the file size to expect (expected_gif: two frames encoded and
extrapolated). Progress shows a percentage and the time left from the first batch on.

Writes are atomic (app/render/export.py): a cancelled or failed export leaves nothing behind.
The motion exported is the document's scale_bands(base, gains); magnification and slow motion
come from this dialog (they start at the document's values). A flow layer (a FlowField on the
preview grid) is exported with it by every renderer; a scene that only flows passes motion None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
    QLabel, QLineEdit, QMessageBox, QProgressDialog, QPushButton, QSpinBox, QVBoxLayout,
)

from app.core.spectral import Motion, band_factors, magnify, resize_motion
from app.render.export import GIF_COLOURS, progress_message
from app.ui.document import resize_photo
from app.ui.workers import Worker

FORMATS = (("mp4", "MP4 (H.264)", ".mp4"), ("gif", "GIF", ".gif"), ("webm", "WebM (VP9)", ".webm"),
           ("png", "PNG sequence (folder)", ""))
RENDERERS = (("gl", "Fast (OpenGL mesh warp)"), ("splat", "Softmax splatting"), ("net", "Learned renderer"))
GL_EXPORT_GRID_PX = 1
# The mesh warp holds the K-band spectrum at the output size (16 bytes a band a pixel, on the GPU
# and once more in memory here): beyond 1920x1080 that is over half a gigabyte, so larger
# exports use the streaming softmax splatting instead.
GL_EXPORT_MAX_PIXELS = 1920 * 1080
GL_MAX_BANDS = 16


@dataclass
class ExportRequest:
    """Everything one export needs besides the photo and the motion."""

    path: str
    format: str = "mp4"
    size: tuple[int, int] | None = None  # (width, height); None keeps the photo's size
    num_loops: int = 1
    slowdown: float = 1.0
    magnify: float = 1.0
    renderer: str = "splat"
    device: str = "cpu"  # "cuda" or "cpu", resolved from the studio's preference (app/device.py)
    gif_fps: float | None = None  # a GIF's frame rate; None keeps the motion's
    gif_colours: int = 256


GIF_FRAME_RATES = ((None, "Full (as the loop)"), (15.0, "15 fps"), (10.0, "10 fps"))


def _render_settings(motion: Motion, request: ExportRequest, renderer: str = "splat"):
    """(RenderSettings, playback fps) for a request; a GIF at a lower frame rate keeps its duration."""
    from app.render.frames import RenderSettings, at_frame_rate

    settings = RenderSettings(renderer=renderer, num_loops=request.num_loops, slowdown=request.slowdown,
                              magnify=request.magnify, size=request.size, device=request.device)
    if request.format == "gif" and request.gif_fps and request.gif_fps < motion.fps:
        return at_frame_rate(motion, settings, request.gif_fps)
    return settings, motion.fps


def expected_gif(image: np.ndarray, motion: Motion, request: ExportRequest) -> tuple[int, int, float]:
    """(bytes, frames, seconds) of the GIF a request writes; bytes estimated from two warped frames."""
    from app.core.spectral import displacement_at
    from app.render.export import estimate_gif_bytes
    from app.render.frames import frame_count, frames_per_loop, resize_field
    from app.render.warp import backward_warp

    settings, fps = _render_settings(motion, request)
    total = frame_count(motion, settings)
    per_loop = frames_per_loop(motion, settings)
    photo = np.asarray(image)
    if request.size is not None:
        photo = resize_photo(photo, int(request.size[1]), int(request.size[0]))
    height, width = photo.shape[:2]
    moving = magnify(motion, request.magnify)
    slowdown = per_loop / motion.num_frames

    def frame(index):
        return backward_warp(photo, resize_field(displacement_at(moving, index, slowdown), height, width))

    size = estimate_gif_bytes(frame(0), frame(max(1, per_loop // 4)), total, request.gif_colours)
    return size, total, total / fps


def with_format_extension(path: str, format: str) -> str:
    """path with the extension of format (none for a PNG folder)."""
    stem, extension = os.path.splitext(path)
    if extension.lower() not in (".mp4", ".gif", ".webm", ".png"):
        stem = path
    return stem + dict((key, ext) for key, _, ext in FORMATS)[format]


def learned_renderer_available() -> bool:
    from app.pipeline import RENDERER_WEIGHTS

    return Path(RENDERER_WEIGHTS).is_file()


def _gl_frames(renderer, motion: Motion, frames_per_loop: int, total: int, flow_loop=None):
    """Frames of the loop rendered by a MeshWarpRenderer, frame i at time (i mod n) * T / n
    (with a FlowLoop, its fields at flow time (i mod n) + FLOW_PHASE, as render_loop does)."""
    from app.render.flow import FLOW_PHASE

    for index in range(total):
        time = (index % frames_per_loop) * motion.num_frames / frames_per_loop
        flow = None
        if flow_loop is not None:
            forward, backward, share = flow_loop.fields(index % frames_per_loop + FLOW_PHASE)
            flow = (forward.numpy(), backward.numpy(), share)
        yield renderer.render(band_factors(motion.num_bands, motion.num_frames, time), flow=flow)


def export_gl(image: np.ndarray, motion: Motion | None, request: ExportRequest, progress=None, cancel=None,
              flow=None) -> str:
    """Render with the GL mesh warp on a headless context (made and released here) and export."""
    from app.render.export import export_frames
    from app.render.frames import RenderSettings, frame_count, frames_per_loop, scene_motion
    from app.render.gl import MeshWarpRenderer, create_headless_context, release_context

    motion = scene_motion(motion, flow)
    settings, fps = _render_settings(motion, request)
    total = frame_count(motion, settings)
    per_loop = frames_per_loop(motion, settings)
    if request.size is not None:
        image = resize_photo(np.asarray(image), int(request.size[1]), int(request.size[0]))
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if height * width > GL_EXPORT_MAX_PIXELS:
        raise ValueError(f"The fast OpenGL export goes up to 1920x1080 pixels ({width}x{height} asked); "
                         "choose softmax splatting for larger sizes.")
    motion = magnify(resize_motion(motion, height, width), settings.magnify)
    if motion.num_bands > GL_MAX_BANDS:
        motion = Motion(motion.spectrum[:GL_MAX_BANDS], motion.num_frames, motion.fps)
    flow_loop = None
    if flow is not None:
        import torch

        from app.core.flow_field import resize_flow, scale_flow
        from app.render.flow import FlowLoop

        flow = scale_flow(resize_flow(flow, height, width), settings.magnify * motion.num_frames / per_loop)
        flow_loop = FlowLoop(torch.from_numpy(flow.velocity), per_loop)
    try:
        ctx = create_headless_context()
    except Exception as error:
        raise ValueError(f"OpenGL is not available for exports here ({error}); choose softmax splatting.") from None
    renderer = None
    try:
        renderer = MeshWarpRenderer(ctx, image, motion, grid_px=GL_EXPORT_GRID_PX)
        frames = _gl_frames(renderer, motion, per_loop, total, flow_loop)
        return export_frames(request.path, frames, fps, format=request.format, progress=progress,
                             cancel=cancel, total=total, gif_colours=request.gif_colours)
    finally:
        if renderer is not None:
            renderer.release()
        release_context(ctx)


def export_job(image: np.ndarray, motion: Motion | None, request: ExportRequest, report, flow=None) -> str:
    """The worker job: render and write the loop (sway, and flow when given); returns the path written."""
    from app.pipeline import load_learned_renderer, render_to_file
    from app.render.frames import resolve_device, scene_motion

    if request.renderer == "gl":
        return export_gl(image, motion, request, report.progress, report.cancelled, flow=flow)
    settings, fps = _render_settings(scene_motion(motion, flow), request, request.renderer)
    net = None
    if request.renderer == "net":
        net = load_learned_renderer(resolve_device(request.device))
        if net is None:
            raise ValueError("No learned renderer is shipped in models/; choose softmax splatting.")
    path = with_format_extension(request.path, request.format)
    return render_to_file(image, motion, path, settings, progress=report.progress, cancel=report.cancelled, net=net,
                          flow=flow, fps=fps, gif_colours=request.gif_colours)


class ExportDialog(QDialog):
    """Export settings, then the export itself in a worker with a cancellable progress dialog."""

    export_finished = Signal(str)
    export_failed = Signal(str)
    export_cancelled = Signal()
    export_started = Signal()

    def __init__(self, image: np.ndarray, motion: Motion | None, default_path: str, magnification: float = 1.0,
                 slowdown: float = 1.0, parent=None, flow=None, device: str = "cpu"):
        """device: 'cuda' or 'cpu', where the export renders (the studio resolves its preference)."""
        super().__init__(parent)
        self.device = device
        self.setWindowTitle("Export loop")
        self.image = image
        self.motion = motion
        self.flow = flow  # FlowField or None
        self.worker: Worker | None = None
        self.progress_dialog: QProgressDialog | None = None
        self.aspect = image.shape[1] / image.shape[0]

        self.path_edit = QLineEdit(default_path, self)
        browse_button = QPushButton("Browse…", self)
        browse_button.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse_button)

        self.format_combo = QComboBox(self)
        for key, label, _ in FORMATS:
            self.format_combo.addItem(label, key)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)

        self.width_spin = QSpinBox(self)
        self.height_spin = QSpinBox(self)
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(16, 8192)
            spin.setSuffix(" px")
        self.width_spin.setValue(image.shape[1])
        self.height_spin.setValue(image.shape[0])
        self.keep_aspect_check = QCheckBox("Keep aspect", self)
        self.keep_aspect_check.setChecked(True)
        self.width_spin.valueChanged.connect(self._on_width_changed)
        self.height_spin.valueChanged.connect(self._on_height_changed)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("x", self))
        size_row.addWidget(self.height_spin)
        size_row.addWidget(self.keep_aspect_check)

        self.loops_spin = QSpinBox(self)
        self.loops_spin.setRange(1, 100)
        self.slowdown_spin = QDoubleSpinBox(self)
        self.slowdown_spin.setRange(0.1, 20.0)
        self.slowdown_spin.setSingleStep(0.5)
        self.slowdown_spin.setSuffix(" x slower")
        self.slowdown_spin.setValue(slowdown)
        self.magnify_spin = QDoubleSpinBox(self)
        self.magnify_spin.setRange(0.0, 20.0)
        self.magnify_spin.setSingleStep(0.25)
        self.magnify_spin.setSuffix(" x")
        self.magnify_spin.setValue(magnification)

        self.renderer_combo = QComboBox(self)
        for key, label in RENDERERS:
            self.renderer_combo.addItem(label, key)
        self.renderer_combo.setCurrentIndex(self.renderer_combo.findData("splat"))
        if not learned_renderer_available():
            item = self.renderer_combo.model().item(self.renderer_combo.findData("net"))
            item.setEnabled(False)
            item.setToolTip("No models/renderer.safetensors in this build")

        # GIF only: frame rate and colours, with the file size they lead to.
        self.gif_rate_combo = QComboBox(self)
        for rate, label in GIF_FRAME_RATES:
            self.gif_rate_combo.addItem(label, rate)
        self.gif_colours_combo = QComboBox(self)
        for colours in GIF_COLOURS:
            self.gif_colours_combo.addItem(f"{colours} colours", colours)
        self.gif_estimate_label = QLabel("", self)
        self.gif_estimate_label.setObjectName("gif_estimate")
        self.gif_expected_bytes = 0
        self.estimate_timer = QTimer(self)
        self.estimate_timer.setSingleShot(True)
        self.estimate_timer.setInterval(250)
        self.estimate_timer.timeout.connect(self.update_gif_estimate)
        for combo in (self.gif_rate_combo, self.gif_colours_combo):
            combo.currentIndexChanged.connect(self._schedule_estimate)

        form = QFormLayout()
        self.form = form
        form.addRow("File", path_row)
        form.addRow("Format", self.format_combo)
        form.addRow("Size", size_row)
        form.addRow("GIF frame rate", self.gif_rate_combo)
        form.addRow("GIF colours", self.gif_colours_combo)
        form.addRow("Expected size", self.gif_estimate_label)
        form.addRow("Loops", self.loops_spin)
        form.addRow("Slow motion", self.slowdown_spin)
        form.addRow("Magnification", self.magnify_spin)
        form.addRow("Renderer", self.renderer_combo)
        form.addRow("", QLabel(f"Softmax splatting and the learned renderer run on the {self.device.upper()}.", self))

        buttons = QDialogButtonBox(self)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.AcceptRole)
        buttons.addButton(QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.start_export)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        for spin in (self.width_spin, self.height_spin, self.loops_spin, self.slowdown_spin, self.magnify_spin):
            spin.valueChanged.connect(self._schedule_estimate)
        self._on_format_changed()

    # --- settings ----------------------------------------------------------------------------

    def set_format(self, format: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(format))

    def set_renderer(self, renderer: str) -> None:
        self.renderer_combo.setCurrentIndex(self.renderer_combo.findData(renderer))

    def set_size(self, width: int, height: int) -> None:
        self.keep_aspect_check.setChecked(False)
        self.width_spin.setValue(int(width))
        self.height_spin.setValue(int(height))

    def request(self) -> ExportRequest:
        format = self.format_combo.currentData()
        size = (self.width_spin.value(), self.height_spin.value())
        if size == (self.image.shape[1], self.image.shape[0]):
            size = None
        return ExportRequest(path=with_format_extension(self.path_edit.text().strip(), format), format=format,
                             size=size, num_loops=self.loops_spin.value(), slowdown=self.slowdown_spin.value(),
                             magnify=self.magnify_spin.value(), renderer=self.renderer_combo.currentData(),
                             device=self.device,
                             gif_fps=self.gif_rate_combo.currentData(),
                             gif_colours=int(self.gif_colours_combo.currentData()))

    def set_gif_options(self, frame_rate: float | None, colours: int) -> None:
        self.gif_rate_combo.setCurrentIndex(self.gif_rate_combo.findData(frame_rate))
        self.gif_colours_combo.setCurrentIndex(self.gif_colours_combo.findData(colours))

    def _schedule_estimate(self, _value=None) -> None:
        if self.format_combo.currentData() == "gif":
            self.estimate_timer.start()

    def update_gif_estimate(self) -> None:
        """Show the expected GIF size, frame count and exact loop duration (about 0.1 s of work)."""
        try:
            from app.render.frames import scene_motion

            size, frames, seconds = expected_gif(self.image, scene_motion(self.motion, self.flow), self.request())
        except ValueError as error:
            self.gif_estimate_label.setText(str(error))
            return
        self.gif_expected_bytes = size
        amount = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(1, round(size / 1e3))} kB"
        self.gif_estimate_label.setText(f"about {amount}: {frames} frames, {seconds:.2f} s")

    def browse(self) -> None:
        format = self.format_combo.currentData()
        if format == "png":
            path = QFileDialog.getExistingDirectory(self, "Folder for the PNG frames", self.path_edit.text())
        else:
            label, extension = dict((key, (label, ext)) for key, label, ext in FORMATS)[format]
            path, _ = QFileDialog.getSaveFileName(self, "Export loop", self.path_edit.text(),
                                                  f"{label} (*{extension})")
        if path:
            self.path_edit.setText(with_format_extension(path, format))

    def _on_format_changed(self, _index=None) -> None:
        format = self.format_combo.currentData()
        self.path_edit.setText(with_format_extension(self.path_edit.text().strip(), format))
        for widget in (self.gif_rate_combo, self.gif_colours_combo, self.gif_estimate_label):
            self.form.setRowVisible(widget, format == "gif")
        self._schedule_estimate()

    def _on_width_changed(self, width: int) -> None:
        if self.keep_aspect_check.isChecked():
            self.height_spin.blockSignals(True)
            self.height_spin.setValue(max(16, int(round(width / self.aspect))))
            self.height_spin.blockSignals(False)

    def _on_height_changed(self, height: int) -> None:
        if self.keep_aspect_check.isChecked():
            self.width_spin.blockSignals(True)
            self.width_spin.setValue(max(16, int(round(height * self.aspect))))
            self.width_spin.blockSignals(False)

    # --- running -----------------------------------------------------------------------------

    def start_export(self) -> None:
        """Run the export in a worker behind a progress dialog (returns at once)."""
        if self.worker is not None and self.worker.is_running():
            return
        request = self.request()
        if not request.path:
            QMessageBox.warning(self, "Export", "Choose a file to export to.")
            return
        image, motion, flow = self.image, self.motion, self.flow
        self.worker = Worker(lambda report: export_job(image, motion, request, report, flow=flow), name="export")
        self.export_started_s = time.monotonic()
        self.progress_dialog = QProgressDialog(progress_message(0, None, 0.0), "Cancel", 0, 100, self)
        self.progress_dialog.setWindowTitle("Exporting")
        self.progress_dialog.setWindowModality(Qt.WindowModal)
        self.progress_dialog.setMinimumDuration(0)
        self.progress_dialog.setAutoClose(False)
        self.progress_dialog.setAutoReset(False)
        self.progress_dialog.canceled.connect(self.cancel_export)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.export_button.setEnabled(False)
        self.progress_dialog.show()
        self.export_started.emit()
        self.worker.start()

    def cancel_export(self) -> None:
        """Ask the export to stop; it does after the frame it is on."""
        if self.worker is not None:
            self.worker.cancel()
            if self.progress_dialog is not None:
                self.progress_dialog.setLabelText("Cancelling after this frame…")

    def _on_progress(self, done: int, total: int) -> None:
        """Percentage and time left, estimated from the rate since the export started."""
        if self.progress_dialog is None or self.progress_dialog.wasCanceled():
            return
        elapsed_s = time.monotonic() - self.export_started_s
        dialog = self.progress_dialog
        dialog.setLabelText(progress_message(done, total or None, elapsed_s))
        if total and total > 0:
            dialog.setValue(min(100, int(100 * done / total)))  # last: a modal dialog processes events here

    def _close_progress(self) -> None:
        self.export_button.setEnabled(True)
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect()
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None

    def _on_finished(self, path: str) -> None:
        self._close_progress()
        self.export_finished.emit(str(path))
        self.accept()

    def _on_failed(self, message: str) -> None:
        self._close_progress()
        self.export_failed.emit(message)
        QMessageBox.warning(self, "Export failed", message)

    def _on_cancelled(self) -> None:
        self._close_progress()
        self.export_cancelled.emit()

    def done(self, result: int) -> None:
        """Closing the dialog cancels a running export and waits for it to stop."""
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()
            self.worker.wait()
        super().done(result)
