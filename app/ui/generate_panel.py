"""Generating a motion for the open photo: the settings panel and the job it starts.

With a motion model (models/motion_model.safetensors, or one handed to the window), Generate runs
the diffusion sampler (app/diffusion/predict.py) with the seed, steps, guidance and loop guidance
set here, on the device the studio's preference resolves to (app/device.py). Without a model it paints the procedural motion brush
(app/core/procedural.py) over the whole photo, with the brush amplitude and direction set here.

generate_motion(image, settings, model, report, device) is the plain job a Worker runs (see workers.py):
progress goes through report.progress, and report.cancelled() stops the sampler between steps.
The previous motion stays in place until a job finishes, so cancelling changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from app.core.spectral import Motion

MOTION_MODEL_NAME = "motion_model.safetensors"
MODEL_GUIDANCE_TEXT = "Model's own"  # the guidance box at 0: the weight stored with the motion model
PREVIEW_COUNT = 5  # live previews per generation (the last is the result)
LOADING = (0, 0)  # progress(0, 0): the motion model is being loaded


@dataclass
class GenerateSettings:
    """What the Generate panel asks for."""

    seed: int = 0
    steps: int = 25
    guidance: float | None = None  # None: the motion model's own
    loop: bool = True
    brush_amplitude_px: float = 4.0
    brush_direction_deg: float = 0.0


def preview_interval(steps: int) -> int:
    """Steps between live previews: PREVIEW_COUNT of them, the first a fifth of the way in.

    Each preview decodes the prediction to a spectrum (about 1.3 s on a busy CPU for the shipped
    model, as long as several steps), so more previews cost visibly: measured with one core busy
    elsewhere (python -m app bench generate), a preview every 2 steps made Generate in the studio
    5.4x the command line's time, every 5 steps 2.2x, none 1.1x."""
    return max(2, -(-int(steps) // PREVIEW_COUNT))


def default_model_path():
    """models/motion_model.safetensors (it may not exist yet)."""
    from app.pipeline import MODELS_DIR

    return MODELS_DIR / MOTION_MODEL_NAME


def generate_motion(image: np.ndarray, settings: GenerateSettings, model, report, device: str) -> Motion:
    """A motion for `image` (uint8 (H, W, 3)) at the image's size: the model's (sampled on `device`,
    'cuda' or 'cpu', which the caller resolves from the preference), or the brush's."""
    if model is None:
        from app.core.procedural import BrushSettings, brush_motion

        report.progress(0, 1)
        brush = BrushSettings(amplitude_px=settings.brush_amplitude_px, direction_deg=settings.brush_direction_deg,
                              seed=int(settings.seed))
        motion = brush_motion(np.ones(image.shape[:2], np.float32), brush)
        report.progress(1, 1)
        return motion

    from app.diffusion.predict import predict_motion

    report.progress(0, int(settings.steps))

    def on_step(step, num_steps, x, x0_pred):
        report.progress(step, num_steps)
        return report.cancelled()

    guidance = None if settings.guidance is None else float(settings.guidance)
    return predict_motion(image, model, num_steps=int(settings.steps), guidance=guidance,
                          loop=bool(settings.loop), seed=int(settings.seed), device=device,
                          callback=on_step, preview=report.preview, preview_every=preview_interval(int(settings.steps)))


class GeneratePanel(QWidget):
    """Seed, steps, loop, guidance (model) or amplitude, direction (brush); Generate, Cancel, progress."""

    generate_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source_label = QLabel(self)
        self.source_label.setWordWrap(True)

        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.steps_spin = QSpinBox(self)
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setValue(25)
        self.guidance_spin = QDoubleSpinBox(self)
        self.guidance_spin.setRange(0.0, 50.0)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setSpecialValueText(MODEL_GUIDANCE_TEXT)  # shown at 0: the model's own weight
        self.guidance_spin.setValue(0.0)
        self.guidance_spin.setToolTip("How strongly the motion follows the photo (classifier-free guidance of the "
                                      "slowest sway; faster bands keep the model's lower weights in proportion).")
        self.loop_check = QCheckBox("Seamless loop guidance", self)
        self.loop_check.setChecked(True)
        self.amplitude_spin = QDoubleSpinBox(self)
        self.amplitude_spin.setRange(0.0, 50.0)
        self.amplitude_spin.setSingleStep(0.5)
        self.amplitude_spin.setValue(4.0)
        self.amplitude_spin.setSuffix(" px")
        self.direction_spin = QDoubleSpinBox(self)
        self.direction_spin.setRange(-180.0, 180.0)
        self.direction_spin.setSingleStep(15.0)
        self.direction_spin.setSuffix(" °")

        form = QFormLayout()
        form.addRow("Seed", self.seed_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Guidance", self.guidance_spin)
        form.addRow("", self.loop_check)
        form.addRow("Brush amplitude", self.amplitude_spin)
        form.addRow("Brush direction", self.direction_spin)

        self.generate_button = QPushButton("Generate", self)
        self.generate_button.setToolTip("Generate a motion for the photo (Ctrl+G)")
        self.generate_button.clicked.connect(self.generate_requested)
        self.variation_button = QPushButton("Variation", self)
        self.variation_button.setToolTip("A new seed and Generate, in one click")
        self.variation_button.clicked.connect(self.generate_variation)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop generating; the current motion stays (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.variation_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.source_label)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addStretch(1)
        self.set_model_name(None)
        self.set_running(False)

    def settings(self) -> GenerateSettings:
        return GenerateSettings(seed=self.seed_spin.value(), steps=self.steps_spin.value(),
                                guidance=self.guidance_spin.value() or None, loop=self.loop_check.isChecked(),
                                brush_amplitude_px=self.amplitude_spin.value(),
                                brush_direction_deg=self.direction_spin.value())

    def set_model_name(self, name: str | None) -> None:
        """Say what Generate will use; enable the settings that matter for it."""
        uses_model = name is not None
        self.source_label.setText(f"Motion model: {name}" if uses_model else
                                  "No motion model found in models/: Generate paints the procedural "
                                  "motion brush over the whole photo.")
        for widget in (self.steps_spin, self.guidance_spin, self.loop_check):
            widget.setEnabled(uses_model)
        for widget in (self.amplitude_spin, self.direction_spin):
            widget.setEnabled(not uses_model)

    def generate_variation(self) -> None:
        """A new random seed (never the current one), then Generate."""
        seed = self.seed_spin.value()
        while seed == self.seed_spin.value():
            seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        self.seed_spin.setValue(seed)
        self.generate_requested.emit()

    def set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.variation_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.reset_progress()

    def reset_progress(self) -> None:
        """An empty bar (after a cancel, a failure or a new photo)."""
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p%")

    def set_progress(self, done: int, total: int) -> None:
        """done of total steps; (0, 0) is the model-loading phase (a busy bar that says so)."""
        if (done, total) == LOADING:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat("Loading the motion model…")
            return
        self.progress_bar.setFormat(f"Step %v of %m (%p%)" if total > 1 else "%p%")
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(min(done, max(1, total)))

    def is_complete(self) -> bool:
        return self.progress_bar.value() == self.progress_bar.maximum()
