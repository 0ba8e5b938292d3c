"""The studio honours its device preference: with a (faked) CUDA GPU present and the preference set
to CPU, generation, export and the status bar all use the CPU; with "auto" they use CUDA."""

import pytest

from app.core.spectral import zero_motion
from app.ui.preferences import Preferences
from ui_helpers import write_photo


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch reports a CUDA GPU; nothing actually runs on it (predict_motion is recorded instead)."""
    import torch

    import app.diffusion.predict as predict

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls = []

    def recorded_predict_motion(image, model, **options):
        calls.append(options["device"])
        return zero_motion(*image.shape[:2], num_bands=4)

    monkeypatch.setattr(predict, "predict_motion", recorded_predict_motion)

    import app.ui.viewport as viewport

    class RecordedPreview(viewport.PreviewFrameRenderer):
        def __init__(self, image, motion, device=None):
            calls.append(f"preview {device}")
            super().__init__(image, motion, device="cpu")

    monkeypatch.setattr(viewport, "PreviewFrameRenderer", RecordedPreview)
    return calls


def generate(qtbot, studio):
    studio.set_motion_model(object())  # any model: predict_motion is recorded
    studio.start_generation()
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=30_000):
        pass


@pytest.mark.parametrize("preference, expected", [("cpu", "cpu"), ("auto", "cuda"), ("cuda", "cuda")])
def test_generation_and_export_follow_the_preference(qtbot, studio, tmp_path, fake_cuda, preference, expected):
    studio.set_preferences(Preferences(device=preference))
    assert studio.open_path(write_photo(tmp_path / "photo.png"))
    generate(qtbot, studio)
    assert [call for call in fake_cuda if not call.startswith("preview")] == [expected]  # the sampler
    assert {call for call in fake_cuda if call.startswith("preview")} == {f"preview {expected}"}
    dialog = studio.open_export_dialog()
    assert dialog.request().device == expected
    dialog.reject()
    assert f"Generate and export: {expected.upper()}" in studio.device_label.text()
