"""Generate: the motion brush (no model) or a tiny model in a worker; progress, cancel, a live event loop."""

import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from ui_helpers import use_tiny_model, write_photo


@pytest.fixture
def photo_open(studio, tmp_path):
    assert studio.open_path(write_photo(tmp_path / "photo.png"))
    return studio


def generate_and_wait(qtbot, studio, timeout=30_000):
    studio.start_generation()
    worker = studio.generation_worker
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        pass
    return worker


def test_without_a_model_generate_paints_the_brush_and_progress_reaches_100(qtbot, photo_open):
    studio = photo_open
    assert "No motion model" in studio.generate_panel.source_label.text()
    before = studio.document.motion
    generate_and_wait(qtbot, studio)
    assert studio.generate_panel.is_complete()
    assert studio.generate_panel.progress_bar.value() == studio.generate_panel.progress_bar.maximum()
    assert studio.document.motion is not before and studio.document.has_motion
    assert (studio.document.motion.height, studio.document.motion.width) == (96, 160)
    assert studio.generate_panel.generate_button.isEnabled()


def test_a_motion_model_generates_with_one_progress_step_per_sampler_step(qtbot, photo_open):
    studio = photo_open
    use_tiny_model(studio, 3, loop=False)
    steps = []
    studio.start_generation()
    studio.generation_worker.progress.connect(lambda done, total: steps.append((done, total)))
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=30_000):
        pass
    assert steps[-1] == (3, 3)
    assert studio.generate_panel.is_complete()
    motion = studio.document.motion
    assert motion.num_bands == 4 and (motion.height, motion.width) == (96, 160)
    assert len(studio.bands_panel.band_sliders) == 4


def test_the_guidance_box_starts_at_the_models_own_weight_and_can_be_set(photo_open):
    from app.ui.generate_panel import MODEL_GUIDANCE_TEXT

    panel = photo_open.generate_panel
    assert panel.guidance_spin.text() == MODEL_GUIDANCE_TEXT
    assert panel.settings().guidance is None  # predict_motion then uses model.guidance
    panel.guidance_spin.setValue(12.0)
    assert panel.settings().guidance == 12.0


def test_cancel_leaves_the_previous_motion_untouched(qtbot, photo_open):
    studio = photo_open
    generate_and_wait(qtbot, studio)  # a brush motion to keep
    previous_motion = studio.document.motion
    previous_spectrum = previous_motion.spectrum.copy()
    use_tiny_model(studio, 500)
    studio.start_generation()
    worker = studio.generation_worker
    with qtbot.waitSignal(worker.progress, timeout=10_000):
        pass
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        studio.cancel_action.trigger()  # Esc
    assert studio.document.motion is previous_motion
    assert np.array_equal(studio.document.motion.spectrum, previous_spectrum)
    assert not studio.generate_panel.is_complete()
    assert "cancelled" in studio.statusBar().currentMessage()
    assert studio.generate_panel.generate_button.isEnabled()


def longest_event_loop_gap_while_generating(qtbot, studio) -> float:
    """Seconds between two ticks of a 10 ms QTimer, at most, while a generation runs."""
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    qtbot.wait(50)
    studio.start_generation()
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=60_000):
        pass
    qtbot.wait(50)
    timer.stop()
    assert len(ticks) > 5
    return float(np.diff(ticks).max())


def test_the_event_loop_never_stalls_for_100_ms_while_generating(qtbot, photo_open):
    studio = photo_open
    use_tiny_model(studio, 6)
    gap = longest_event_loop_gap_while_generating(qtbot, studio)
    if gap >= 0.100:  # one retry: on a shared, overloaded machine the OS may not schedule us for a while
        gap = min(gap, longest_event_loop_gap_while_generating(qtbot, studio))
    assert gap < 0.100, f"longest gap {gap * 1000:.0f} ms"


def test_a_motion_made_for_a_photo_that_was_replaced_is_dropped(qtbot, photo_open, tmp_path):
    studio = photo_open
    studio.start_generation()
    worker = studio.generation_worker
    studio.open_path(write_photo(tmp_path / "other.png", height=64, width=64))  # cancels, replaces the photo
    with qtbot.waitSignals([worker.cancelled], timeout=10_000, raising=False):
        pass
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=10_000)
    assert not studio.document.has_motion
    assert studio.document.motion.width == 64


def test_the_viewport_plays_partially_denoised_previews_while_sampling(qtbot, photo_open):
    studio = photo_open
    use_tiny_model(studio, 10, loop=False)
    previews = []
    studio.start_generation()
    studio.generation_worker.preview.connect(previews.append)
    with qtbot.waitSignal(studio.generation_worker.finished, timeout=30_000):
        pass
    assert len(previews) >= 2  # every 5 steps and the last
    assert all((p.height, p.width) == (96, 160) and np.all(np.isfinite(p.spectrum)) for p in previews)
    assert not np.allclose(previews[0].spectrum, previews[-1].spectrum)  # the prediction sharpens
    np.testing.assert_allclose(previews[-1].spectrum, studio.document.motion.spectrum, atol=1e-5)
