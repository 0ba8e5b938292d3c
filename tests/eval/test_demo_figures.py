"""The figures `python -m app demo` prints for the predicted motion beside the extracted one."""

import re

import numpy as np
import pytest

from app.core.spectral import Motion, motion_from_texture, resize_motion, scale_bands, zero_motion
from app.pipeline import motion_figure_lines

FRAMES, BANDS = 60, 8


def swaying(height=12, width=20) -> Motion:
    """Bands 2 and 6 along x, everywhere."""
    t = np.arange(FRAMES)
    texture = np.zeros((FRAMES, 2, height, width), np.float32)
    texture[:, 0] = (2.0 * np.sin(2 * np.pi * 2 * t / FRAMES) + 0.5 * np.sin(2 * np.pi * 6 * t / FRAMES))[:, None, None]
    return motion_from_texture(texture, BANDS)


def numbers(line):
    return [float(v) for v in re.findall(r"\d+\.\d+", line)]


def test_a_prediction_equal_to_the_extracted_motion_shows_equal_figures_and_ratios_of_1():
    figures, bands = motion_figure_lines(swaying(), swaying())
    f0, ref_f0, step, ref_step, step_ratio, share, ref_share = numbers(figures)
    assert f0 == ref_f0 == 0.0 and step == ref_step > 0 and step_ratio == 1.0
    assert share == ref_share == pytest.approx(0.94, abs=0.01)  # 2^2 / (2^2 + 0.5^2)
    assert bands == "Band power, predicted over extracted: " + ", ".join(f"{k}: 1x" for k in range(1, BANDS)) + "."


def test_a_band_too_strong_shows_in_its_ratio_and_in_the_share():
    gains = np.ones(BANDS)
    gains[6] = 10.0
    figures, bands = motion_figure_lines(scale_bands(swaying(), gains), swaying())
    assert "6: 100x" in bands and "2: 1x" in bands
    share, ref_share = numbers(figures)[-2:]
    assert share == pytest.approx(0.14, abs=0.01) and ref_share == pytest.approx(0.94, abs=0.01)


def test_the_extracted_motion_is_measured_at_the_photo_size():
    extracted = swaying(12, 20)
    predicted = resize_motion(extracted, 24, 40)  # at twice the size: twice the displacement in pixels
    figures, _ = motion_figure_lines(predicted, extracted)
    assert "at 40x24" in figures
    _, _, step, ref_step, step_ratio, _, _ = numbers(figures)
    assert step == pytest.approx(ref_step, rel=0.01) and step_ratio == 1.0
    assert step == pytest.approx(2 * numbers(motion_figure_lines(extracted, extracted)[0])[2], rel=0.02)
    alone = motion_figure_lines(None, extracted, (24, 40))
    assert len(alone) == 1 and "at 40x24" in alone[0] and numbers(alone[0])[1] == pytest.approx(ref_step, rel=0.01)


def test_a_still_prediction_has_no_share_and_every_band_far_too_weak():
    figures, bands = motion_figure_lines(zero_motion(12, 20, BANDS, FRAMES), swaying())
    assert "share of power in bands 1-4 - |" in figures and "(0.0x)" in figures
    assert "2: 2.5e-05x" in bands


@pytest.mark.slow
def test_the_demo_prints_the_figures_of_the_predicted_and_the_extracted_motion(tmp_path, monkeypatch):
    import app.pipeline as pipeline
    from app.diffusion.weights import save_motion_model, tiny_motion_model

    weights = save_motion_model(str(tmp_path / "tiny.safetensors"), tiny_motion_model(num_bands=16))
    monkeypatch.setattr(pipeline, "MOTION_MODEL_WEIGHTS", pipeline.Path(weights))
    lines = list(pipeline.run_demo(str(tmp_path / "out")))
    figures = [line for line in lines if line.startswith("Predicted | extracted motion at ")]
    bands = [line for line in lines if line.startswith("Band power, predicted over extracted: 1: ")]
    assert len(figures) == 1 and len(bands) == 1 and "15: " in bands[0]
    assert "|F_0| 0.00 | 0.00 px" in figures[0]  # frame 0 is the photo, predicted or extracted
    assert sum(line.startswith("Wrote ") and "willow-" in line for line in lines) == 2  # the rest of the demo runs
