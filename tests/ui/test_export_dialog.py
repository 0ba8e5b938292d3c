"""Export: the dialog renders and writes in a worker; MP4 frame counts read back; cancel writes nothing."""

import os

import pytest

from app.render.export import read_frame_count
from app.ui.export_dialog import ExportDialog, with_format_extension
from ui_helpers import textured_photo, whole_photo_brush


@pytest.fixture
def dialog(qtbot, tmp_path):
    image = textured_photo(64, 96)
    export = ExportDialog(image, whole_photo_brush(64, 96), str(tmp_path / "loop.mp4"))
    qtbot.addWidget(export)
    return export


def test_exporting_an_mp4_writes_every_frame(qtbot, dialog, tmp_path):
    dialog.set_format("mp4")
    dialog.set_renderer("splat")
    dialog.slowdown_spin.setValue(0.4)  # 60 of the motion's 150 frames
    with qtbot.waitSignal(dialog.export_finished, timeout=60_000) as blocker:
        dialog.start_export()
    path = blocker.args[0]
    assert path == str(tmp_path / "loop.mp4")
    assert read_frame_count(path) == 60


def test_loops_slow_motion_and_size_reach_the_file(qtbot, dialog, tmp_path):
    dialog.set_format("gif")
    dialog.set_renderer("splat")
    dialog.loops_spin.setValue(2)
    dialog.slowdown_spin.setValue(0.2)  # 30 frames per loop
    dialog.set_size(48, 32)
    with qtbot.waitSignal(dialog.export_finished, timeout=60_000) as blocker:
        dialog.start_export()
    assert blocker.args[0].endswith("loop.gif")
    assert read_frame_count(blocker.args[0]) == 60


def test_the_fast_gl_renderer_exports_too(qtbot, dialog, tmp_path):
    try:
        from app.render.gl import create_headless_context, release_context

        release_context(create_headless_context())
    except Exception as error:
        pytest.skip(f"no headless OpenGL here: {error}")
    dialog.set_format("png")
    dialog.set_renderer("gl")
    dialog.slowdown_spin.setValue(0.1)  # 15 frames
    with qtbot.waitSignal(dialog.export_finished, timeout=60_000) as blocker:
        dialog.start_export()
    assert read_frame_count(blocker.args[0]) == 15


def test_cancelling_an_export_writes_nothing(qtbot, dialog, tmp_path):
    dialog.set_format("mp4")
    dialog.loops_spin.setValue(50)
    with qtbot.waitSignal(dialog.export_cancelled, timeout=60_000):
        dialog.start_export()
        dialog.cancel_export()
    assert not os.path.exists(tmp_path / "loop.mp4")
    assert [name for name in os.listdir(tmp_path) if name.startswith(".export-")] == []


def test_the_learned_renderer_is_offered_only_when_shipped(dialog):
    from app.ui.export_dialog import learned_renderer_available

    item = dialog.renderer_combo.model().item(dialog.renderer_combo.findData("net"))
    assert item.isEnabled() == learned_renderer_available()


def test_format_sets_the_extension():
    assert with_format_extension("/x/loop.mp4", "gif") == "/x/loop.gif"
    assert with_format_extension("/x/loop.mp4", "png") == "/x/loop"
    assert with_format_extension("/x/loop", "webm") == "/x/loop.webm"


def test_the_studio_opens_the_dialog_with_its_edits(studio):
    image = textured_photo(64, 96)
    studio.document.set_photo(image, "test", None, whole_photo_brush(64, 96))
    studio.bands_panel.set_magnitude(2.0)
    export = studio.open_export_dialog()
    assert export.magnify_spin.value() == 2.0
    assert export.width_spin.value() == 96
    export.reject()


def test_progress_shows_a_percentage_and_the_time_left_from_the_first_batch(qtbot, dialog):
    dialog.set_format("mp4")
    dialog.loops_spin.setValue(50)
    with qtbot.waitSignal(dialog.export_cancelled, timeout=60_000):
        dialog.start_export()
        assert "Preparing" in dialog.progress_dialog.labelText()
        assert dialog.progress_dialog.maximum() == 100  # a percentage, not a busy bar
        dialog.export_started_s -= 10.0  # ten seconds for the first 30 frames of 150
        dialog._on_progress(30, 150)
        assert dialog.progress_dialog.value() == 20
        assert "20%" in dialog.progress_dialog.labelText()
        assert "about 40 s left" in dialog.progress_dialog.labelText()
        dialog.cancel_export()


def test_progress_message_estimates_from_the_rate_so_far():
    from app.render.export import duration_text, progress_message

    assert progress_message(0, 150, 3.0) == "Preparing the first of 150 frames…"
    assert progress_message(8, 150, 16.0) == "Frame 8 of 150 (5%), about 4 min 44 s left"
    assert progress_message(150, 150, 60.0).startswith("Frame 150 of 150 (100%)")
    assert duration_text(59.4) == "59 s" and duration_text(3 * 3600 + 125) == "3 h 2 min"


def test_a_gl_export_beyond_full_hd_is_one_sentence():
    from app.ui.export_dialog import ExportRequest, export_gl

    image = textured_photo(64, 96)
    request = ExportRequest(path="/nonexistent/loop.mp4", size=(2560, 1707), renderer="gl")
    with pytest.raises(ValueError, match="choose softmax splatting") as error:
        export_gl(image, whole_photo_brush(64, 96), request)
    assert str(error.value).count(". ") == 0


def test_a_gif_offers_frame_rate_and_colours_with_the_expected_size(qtbot, dialog, tmp_path):
    from PIL import Image

    dialog.set_format("mp4")
    assert not dialog.gif_colours_combo.isVisibleTo(dialog)
    dialog.set_format("gif")
    assert dialog.gif_colours_combo.isVisibleTo(dialog)
    dialog.set_gif_options(10.0, 64)
    dialog.update_gif_estimate()
    text = dialog.gif_estimate_label.text()
    assert "50 frames, 5.00 s" in text  # the 150-frame loop at 10 fps keeps its 5 seconds
    assert text.startswith("about ") and " kB: " in text
    expected = dialog.gif_expected_bytes
    with qtbot.waitSignal(dialog.export_finished, timeout=60_000) as blocker:
        dialog.start_export()
    path = blocker.args[0]
    with Image.open(path) as gif:
        durations = []
        for number in range(gif.n_frames):
            gif.seek(number)
            durations.append(gif.info["duration"])
    assert sum(durations) == 5000
    actual = os.path.getsize(path)
    assert 0.6 * actual < expected < 1.6 * actual, (expected, actual)
