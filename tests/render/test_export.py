"""Exports: MP4, GIF, WebM and PNG sequences round-trip, write atomically and fail with one sentence."""

import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from app.render.export import (
    ExportCancelled, ExportError, export_frames, gif_durations_ms, read_frame_count, seam_error,
    webm_codec, write_mp4,
)

FPS = 30.0


def moving_frames(count=12, height=48, width=64):
    """Smooth frames with a bright disc circling once per loop: every frame differs from the last."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([x / width, y / height, 0.5 + 0 * x], axis=-1) * 200
    frames = []
    for number in range(count):
        angle = 2 * np.pi * number / count
        cx, cy = width / 2 + width / 4 * np.cos(angle), height / 2 + height / 4 * np.sin(angle)
        disc = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 30.0)[..., None] * 255
        frames.append(np.clip(background + disc, 0, 255).astype(np.uint8))
    return frames


def video_metadata(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    metadata = next(reader)
    reader.close()
    return metadata


def assert_one_sentence(error):
    message = str(error.value)
    assert message.endswith(".") and message.count(". ") == 0, message


# --- round trips -------------------------------------------------------------------------------


def test_mp4_round_trip_is_h264_yuv420p_with_index_up_front(tmp_path):
    path = tmp_path / "loop.mp4"
    assert export_frames(path, moving_frames(12), FPS) == str(path)
    metadata = video_metadata(path)
    assert read_frame_count(path) == 12
    assert metadata["codec"] == "h264"
    assert metadata["pix_fmt"].startswith("yuv420p")
    assert metadata["size"] == (64, 48)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart


def test_odd_sizes_are_cropped_even_for_video_and_kept_for_gif_and_png(tmp_path):
    frames = moving_frames(6, height=49, width=65)
    export_frames(tmp_path / "odd.mp4", frames, FPS)
    export_frames(tmp_path / "odd.webm", frames, FPS)
    export_frames(tmp_path / "odd.gif", frames, FPS)
    export_frames(tmp_path / "odd", frames, FPS)
    assert video_metadata(tmp_path / "odd.mp4")["size"] == (64, 48)
    assert video_metadata(tmp_path / "odd.webm")["size"] == (64, 48)
    with Image.open(tmp_path / "odd.gif") as gif:
        assert gif.size == (65, 49)
    with Image.open(tmp_path / "odd" / "frame_0000.png") as png:
        assert png.size == (65, 49)


def test_gif_loops_forever_with_durations_from_fps(tmp_path):
    path = tmp_path / "loop.gif"
    export_frames(path, moving_frames(12), FPS)
    durations = []
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.n_frames == 12
        for number in range(gif.n_frames):
            gif.seek(number)
            durations.append(gif.info["duration"])
    assert all(abs(duration - 1000 / FPS) <= 10 for duration in durations)
    assert sum(durations) == pytest.approx(12 * 1000 / FPS, abs=10)
    assert read_frame_count(path) == 12


def test_gif_durations_track_the_clock_and_respect_browser_minimum():
    assert gif_durations_ms(6, 30.0) == [30, 40, 30, 30, 40, 30]
    assert set(gif_durations_ms(10, 10.0)) == {100}
    assert min(gif_durations_ms(10, 120.0)) == 20


def test_gif_colours_are_close_to_the_frames(tmp_path):
    frames = moving_frames(6)
    export_frames(tmp_path / "loop.gif", frames, FPS)
    with Image.open(tmp_path / "loop.gif") as gif:
        gif.seek(3)
        decoded = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(decoded - frames[3]).mean() < 6  # 256 colours for a 2-D gradient: about 4.5


def test_webm_round_trip(tmp_path):
    path = tmp_path / "loop.webm"
    export_frames(path, moving_frames(10), FPS)
    assert read_frame_count(path) == 10
    expected = "vp9" if webm_codec() == "libvpx-vp9" else "vp8"
    assert video_metadata(path)["codec"] == expected


def test_png_sequence_has_every_frame_with_exact_pixels(tmp_path):
    frames = moving_frames(5)
    folder = export_frames(tmp_path / "frames", frames, FPS)
    assert sorted(os.listdir(folder)) == [f"frame_{n:04d}.png" for n in range(5)]
    assert read_frame_count(folder) == 5
    for number, frame in enumerate(frames):
        with Image.open(os.path.join(folder, f"frame_{number:04d}.png")) as png:
            np.testing.assert_array_equal(np.asarray(png.convert("RGB")), frame)


def test_png_path_with_extension_writes_the_folder_without_it(tmp_path):
    folder = export_frames(tmp_path / "loop.png", moving_frames(3), FPS)
    assert folder == str(tmp_path / "loop")
    assert read_frame_count(folder) == 3


def test_png_sequence_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError) as error:
        export_frames(folder, moving_frames(3), FPS)
    assert_one_sentence(error)
    assert os.listdir(folder) == ["notes.txt"]
    export_frames(folder, moving_frames(4), FPS, overwrite=True)
    assert sorted(os.listdir(folder)) == [f"frame_{n:04d}.png" for n in range(4)]
    assert os.listdir(tmp_path) == ["frames"]


def test_an_existing_empty_folder_takes_a_png_sequence(tmp_path):
    (tmp_path / "frames").mkdir()
    export_frames(tmp_path / "frames", moving_frames(3), FPS)
    assert read_frame_count(tmp_path / "frames") == 3


def test_write_mp4_keeps_its_signature(tmp_path):
    done = []
    write_mp4(str(tmp_path / "old.mp4"), iter(moving_frames(4)), FPS, quality=8, progress=done.append)
    assert done == [1, 2, 3, 4]
    assert read_frame_count(tmp_path / "old.mp4") == 4


# --- progress, cancel, atomic writes -----------------------------------------------------------


@pytest.mark.parametrize("name", ["loop.mp4", "loop.gif", "loop.webm", "frames"])
def test_progress_reaches_total(tmp_path, name):
    reports = []
    export_frames(tmp_path / name, moving_frames(5), FPS, progress=lambda done, total: reports.append((done, total)))
    assert reports == [(n, 5) for n in range(1, 6)]


def test_progress_of_a_generator_uses_the_given_total_or_none(tmp_path):
    reports = []
    export_frames(tmp_path / "a.gif", iter(moving_frames(3)), FPS, total=3,
                  progress=lambda done, total: reports.append((done, total)))
    export_frames(tmp_path / "b.gif", iter(moving_frames(2)), FPS,
                  progress=lambda done, total: reports.append((done, total)))
    assert reports == [(1, 3), (2, 3), (3, 3), (1, None), (2, None)]


def existing_target(tmp_path, name):
    """A target that is already there (a file, or a folder with one frame)."""
    target = tmp_path / name
    if name.endswith((".mp4", ".gif", ".webm")):
        target.write_bytes(b"previous export")
    else:
        target.mkdir()
        (target / "frame_0000.png").write_bytes(b"previous frame")
    return target


def snapshot(target):
    if target.is_dir():
        return {p.name: p.read_bytes() for p in target.iterdir()}
    return target.read_bytes()


@pytest.mark.parametrize("name", ["loop.mp4", "loop.gif", "loop.webm", "frames"])
def test_cancel_stops_early_and_leaves_the_target_untouched(tmp_path, name):
    target = existing_target(tmp_path, name)
    before = snapshot(target)
    pulled = []

    def frames():
        for number, frame in enumerate(moving_frames(20)):
            pulled.append(number)
            yield frame

    with pytest.raises(ExportCancelled) as error:
        export_frames(target, frames(), FPS, cancel=lambda: len(pulled) >= 3, overwrite=True)
    assert isinstance(error.value, ExportError)
    assert_one_sentence(error)
    assert len(pulled) == 3
    assert snapshot(target) == before
    assert os.listdir(tmp_path) == [name]  # no temporary left behind


@pytest.mark.parametrize("name", ["loop.mp4", "loop.gif", "loop.webm", "frames"])
def test_a_failing_export_leaves_the_target_untouched(tmp_path, name):
    target = existing_target(tmp_path, name)
    before = snapshot(target)

    def frames():
        yield from moving_frames(4)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        export_frames(target, frames(), FPS, overwrite=True)
    assert snapshot(target) == before
    assert os.listdir(tmp_path) == [name]


def test_a_successful_export_replaces_an_existing_file(tmp_path):
    target = existing_target(tmp_path, "loop.mp4")
    export_frames(target, moving_frames(3), FPS)
    assert read_frame_count(target) == 3
    assert os.listdir(tmp_path) == ["loop.mp4"]


# --- errors --------------------------------------------------------------------------------------


def test_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(ExportError) as error:
        export_frames(tmp_path / "missing" / "loop.mp4", moving_frames(2), FPS)
    assert_one_sentence(error)
    assert "its folder does not exist" in str(error.value)


def test_a_file_in_place_of_the_folder_is_one_sentence(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ExportError) as error:
        export_frames(tmp_path / "file.txt" / "loop.gif", moving_frames(2), FPS)
    assert_one_sentence(error)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_folder_is_one_sentence(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ExportError) as error:
            export_frames(folder / "loop.mp4", moving_frames(2), FPS)
        assert_one_sentence(error)
    finally:
        folder.chmod(0o700)


def test_unknown_format_zero_frames_and_bad_fps(tmp_path):
    with pytest.raises(ExportError) as error:
        export_frames(tmp_path / "loop.avi", moving_frames(2), FPS)
    assert_one_sentence(error)
    with pytest.raises(ExportError) as error:
        export_frames(tmp_path / "loop.mp4", moving_frames(2), FPS, format="mov")
    assert_one_sentence(error)
    for name in ["loop.mp4", "loop.gif", "loop.webm", "frames"]:
        with pytest.raises(ExportError) as error:
            export_frames(tmp_path / name, [], FPS)
        assert_one_sentence(error)
    with pytest.raises(ExportError):
        export_frames(tmp_path / "loop.mp4", moving_frames(2), 0)
    assert os.listdir(tmp_path) == []


def test_frames_of_different_sizes_are_refused(tmp_path):
    frames = moving_frames(2) + moving_frames(1, height=32, width=32)
    with pytest.raises(ExportError) as error:
        export_frames(tmp_path / "loop.mp4", frames, FPS)
    assert_one_sentence(error)
    assert os.listdir(tmp_path) == []


def test_read_frame_count_of_a_missing_file(tmp_path):
    with pytest.raises(ExportError):
        read_frame_count(tmp_path / "nothing.mp4")


# --- seam ----------------------------------------------------------------------------------------


def test_seam_error_tells_a_smooth_loop_from_a_cut():
    loop = moving_frames(60)
    smooth = seam_error(loop)
    assert smooth["ratio"] < 1.5
    cut = seam_error(loop[:30])  # stops half way round: the wrap jumps across the picture
    assert cut["ratio"] > 5
    assert set(smooth) == {"seam", "median_step", "ratio"}


def gif_durations(path):
    durations = []
    with Image.open(path) as gif:
        for number in range(gif.n_frames):
            gif.seek(number)
            durations.append(gif.info["duration"])
    return durations


@pytest.mark.parametrize("frame_rate, frames", [(15.0, 75), (12.0, 60), (8.5, 42)])
def test_a_gif_at_a_lower_frame_rate_lasts_exactly_as_long_as_the_loop(tmp_path, frame_rate, frames):
    from app.core.spectral import Motion
    from app.pipeline import render_to_file
    from app.render.frames import RenderSettings, at_frame_rate, frame_count

    rng = np.random.default_rng(0)
    motion = Motion((rng.normal(size=(4, 2, 6, 8)) * 2).astype(np.complex64), num_frames=150, fps=30.0)  # 5 s
    settings, fps = at_frame_rate(motion, RenderSettings(renderer="warp", device="cpu"), frame_rate)
    assert frame_count(motion, settings) == frames
    path = render_to_file(moving_frames(1, 24, 32)[0], motion, str(tmp_path / "loop.gif"), settings, fps=fps)
    assert sum(gif_durations(path)) == 5000  # ms, to the centisecond GIF counts in


def test_fewer_gif_colours_make_a_smaller_file_and_the_estimate_follows(tmp_path):
    from app.render.export import estimate_gif_bytes

    frames = moving_frames(12, 96, 128)
    sizes = {}
    for colours in (256, 32):
        export_frames(tmp_path / f"c{colours}.gif", frames, FPS, gif_colours=colours)
        sizes[colours] = os.path.getsize(tmp_path / f"c{colours}.gif")
        with Image.open(tmp_path / f"c{colours}.gif") as gif:
            assert len(gif.getpalette()) // 3 <= colours
        estimate = estimate_gif_bytes(frames[0], frames[3], 12, colours)
        assert 0.6 * sizes[colours] < estimate < 1.6 * sizes[colours], (estimate, sizes[colours])
    assert sizes[32] < 0.8 * sizes[256]
    with pytest.raises(ExportError):
        export_frames(tmp_path / "bad.gif", frames, FPS, gif_colours=1)
