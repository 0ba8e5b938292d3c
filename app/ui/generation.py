"""Generation: running the Generate panel's job in a worker and landing its motion in the Document.

The job (generate_panel.generate_motion) runs on a Worker thread; its partially denoised previews
play in the viewport while the document stays unchanged, and the finished motion becomes one
undoable step. A result made for a photo that is no longer open (Document.photo_serial moved on)
is dropped. The motion model is loaded from model_path on first use and kept.
"""

from __future__ import annotations

from pathlib import Path

from app.ui.generate_panel import generate_motion
from app.ui.workers import Worker


class GenerationController:
    """Owns the motion model, its path and the generation worker of one window."""

    def __init__(self, window, motion_model=None, model_path: Path | None = None):
        self.window = window
        self.motion_model = motion_model
        self.model_path = Path(model_path) if model_path is not None else None
        self.worker: Worker | None = None
        panel = window.generate_panel
        panel.generate_requested.connect(self.start)
        panel.cancel_requested.connect(self.cancel)

    def update_model_name(self) -> None:
        panel = self.window.generate_panel
        if self.motion_model is not None:
            panel.set_model_name("loaded")
        elif self.model_path is not None and self.model_path.is_file():
            panel.set_model_name(self.model_path.name)
        else:
            panel.set_model_name(None)

    def set_motion_model(self, model) -> None:
        """Generate with this MotionModel from now on (None: the model file, else the brush)."""
        self.motion_model = model
        self.update_model_name()

    def set_model_path(self, path: Path) -> None:
        """A new model file; a model loaded from another file is dropped (loaded on the next Generate)."""
        path = Path(path)
        if path != self.model_path:
            self.motion_model = None
        self.model_path = path
        self.update_model_name()

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start(self) -> None:
        """Generate a motion for the open photo in a worker; the current motion stays until it is done."""
        window = self.window
        if not window.require_photo() or self.is_running():
            return
        document = window.document
        image, photo_serial = document.preview_image, document.photo_serial
        settings = window.generate_panel.settings()
        model, model_path = self.motion_model, Path(self.model_path)
        device = window.compute_device()

        def job(report):
            loaded = model
            if loaded is None and model_path.is_file():
                from app.diffusion.weights import load_motion_model
                from app.ui.generate_panel import LOADING

                report.progress(*LOADING)
                loaded = load_motion_model(model_path, device)
            return generate_motion(image, settings, loaded, report, device), loaded

        worker = Worker(job, name="generate")
        worker.progress.connect(window.generate_panel.set_progress)
        worker.preview.connect(lambda motion: self._on_preview(motion, photo_serial))
        worker.finished.connect(lambda result: self._on_finished(result, photo_serial))
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        self.worker = worker
        window.generate_panel.set_running(True)
        window.set_job_running(True)
        uses = "the motion model" if (model is not None or model_path.is_file()) else "the motion brush"
        window.statusBar().showMessage(f"Generating with {uses} on the {device.upper()}… (Esc cancels)")
        worker.start()

    def cancel(self) -> None:
        if self.is_running():
            self.worker.cancel()
            self.window.statusBar().showMessage("Cancelling…")

    def _done(self) -> None:
        self.window.set_job_running(False)
        self.window.generate_panel.set_running(False)
        self.window.update_enabled()

    def _on_finished(self, result, photo_serial: int) -> None:
        motion, model = result
        if model is not None:
            self.motion_model = model
        self._done()
        window = self.window
        if photo_serial != window.document.photo_serial:
            return  # made for a photo that is no longer open
        window.replace_motion(motion, "Generate")
        window.statusBar().showMessage("Generated a new motion: shape it with the band sliders.", 8000)

    def _on_preview(self, motion, photo_serial: int) -> None:
        """Play the partially denoised motion while sampling goes on, and show it in the X-t slice and
        the band graph (the document is unchanged)."""
        window = self.window
        document = window.document
        if photo_serial == document.photo_serial and self.is_running():
            window.viewport.set_scene(document.preview_image, motion)
            window.xt_view.set_motion(motion, None, document.slowdown)
            window.bands_panel.show_preview(motion)

    def _restore_scene(self) -> None:
        """Show the document's motion again after a preview that did not become it."""
        if self.window.document.motion is not None:
            self.window.show_motion()

    def _on_failed(self, message: str) -> None:
        self._restore_scene()
        self._done()
        self.window.generate_panel.reset_progress()
        self.window.show_error("Generation failed", message)

    def _on_cancelled(self) -> None:
        self._restore_scene()
        self._done()
        self.window.generate_panel.reset_progress()
        self.window.statusBar().showMessage("Generation cancelled; the motion is unchanged.", 8000)
