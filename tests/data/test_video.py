"""Tests for app.data.video: synthetic clips in tmp_path, plus real footage from ../shared/data."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from app.data import video
from app.data.video import (
    VideoReadError, list_videos, natural_sort_key, open_video, read_video, resample_fps, resample_stream,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # ../shared/data


def needs_shared_data(test):
    """Mark a test as reading ../shared/data, and skip it when that folder is absent."""
    test = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")(test)
    return pytest.mark.shared_data(test)


BRIGHTNESS_STEP = 20


def write_test_clip(path, frame_count=12, fps=25):
    """A 64x48 clip whose frame i is uniformly grey at level i * BRIGHTNESS_STEP."""
    frames = np.zeros((frame_count, 48, 64, 3), np.uint8)  # (N, H, W, 3)
    for index in range(frame_count):
        frames[index] = index * BRIGHTNESS_STEP
    iio.imwrite(path, frames, fps=fps, plugin="FFMPEG")
    return path


def opencv_fails(*args):
    """Stands in for the OpenCV reader to force the imageio-ffmpeg fallback."""
    raise video._ReaderFailed("OpenCV could not open it")


def frame_levels(frames):
    """The grey level of each frame, in units of BRIGHTNESS_STEP."""
    return [round(float(frame.mean()) / BRIGHTNESS_STEP) for frame in frames]


# --- video files ---------------------------------------------------------------------------------


def test_read_mp4(tmp_path):
    path = write_test_clip(tmp_path / "clip.mp4")

    clip = read_video(path)

    assert clip.frames.shape == (12, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == 25.0
    assert clip.source == str(path)
    assert frame_levels(clip.frames) == list(range(12))


def test_start_and_max_frames(tmp_path):
    path = write_test_clip(tmp_path / "clip.mp4")

    clip = read_video(path, max_frames=4, start=3)

    assert frame_levels(clip.frames) == [3, 4, 5, 6]


def test_fps_argument_overrides_the_file(tmp_path):
    path = write_test_clip(tmp_path / "clip.mp4")

    assert read_video(path, max_frames=1, fps=12.5).fps == 12.5


def test_ffmpeg_fallback_when_opencv_fails(tmp_path, monkeypatch):
    path = write_test_clip(tmp_path / "clip.mp4")
    from_opencv = read_video(path)

    monkeypatch.setattr(video, "_read_with_opencv", opencv_fails)
    from_ffmpeg = read_video(path, start=2, max_frames=5)

    assert from_ffmpeg.fps == 25.0
    assert frame_levels(from_ffmpeg.frames) == [2, 3, 4, 5, 6]
    assert np.abs(from_ffmpeg.frames.astype(int) - from_opencv.frames[2:7]).max() <= 2
    assert any("imageio-ffmpeg" in note for note in from_ffmpeg.notes)


def test_non_ascii_video_path(tmp_path):
    path = write_test_clip(tmp_path / "vidéo_视频.mp4", frame_count=3)

    assert read_video(path).frames.shape == (3, 48, 64, 3)


def test_start_past_the_end(tmp_path):
    path = write_test_clip(tmp_path / "clip.mp4")

    with pytest.raises(VideoReadError, match="only 12 frames"):
        read_video(path, start=12)


def test_unreadable_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.avi"
    text.write_text("not a video\n" * 50)
    image = tmp_path / "still.png"
    Image.new("RGB", (4, 4)).save(image)

    with pytest.raises(VideoReadError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoReadError, match="the file is empty"):
        read_video(empty)
    with pytest.raises(VideoReadError, match="not a video file"):
        read_video(text)
    with pytest.raises(VideoReadError, match="single image"):
        read_video(image)


# --- folders of frames ---------------------------------------------------------------------------


def test_natural_sort_key():
    names = ["b00100.bmp", "10.png", "b00010.bmp", "2.png", "B00011.bmp"]

    assert sorted(names, key=natural_sort_key) == ["2.png", "10.png", "b00010.bmp", "B00011.bmp", "b00100.bmp"]


def test_bmp_frame_folder_in_natural_order(tmp_path):
    for number in (1, 2, 10, 3):  # unpadded numbers: plain sorting would give 1, 10, 2, 3
        Image.new("RGB", (16, 8), (number * 10,) * 3).save(tmp_path / f"f{number}.bmp")
    Image.new("RGB", (16, 8)).save(tmp_path / "mask_0007.bmp")  # a stray image, another name
    (tmp_path / "README.txt").write_text("frames of a test clip")

    clip = read_video(tmp_path)

    assert clip.frames.shape == (4, 8, 16, 3)
    assert [int(frame[0, 0, 0]) for frame in clip.frames] == [10, 20, 30, 100]
    assert clip.fps == 30.0
    assert any("mask_0007.bmp" in note for note in clip.notes)
    assert read_video(tmp_path, fps=12.0, start=1, max_frames=2).frames[:, 0, 0, 0].tolist() == [20, 30]


def test_frame_folder_with_mixed_sizes(tmp_path):
    Image.new("RGB", (16, 8)).save(tmp_path / "0001.png")
    Image.new("RGB", (8, 16)).save(tmp_path / "0002.png")

    with pytest.raises(VideoReadError, match="different sizes"):
        read_video(tmp_path)


def test_frame_folder_problems(tmp_path):
    (tmp_path / "LICENSE").write_text("MIT")
    with pytest.raises(VideoReadError, match="no video frames"):
        read_video(tmp_path)

    Image.new("RGB", (4, 4)).save(tmp_path / "0001.png")
    (tmp_path / "0002.png").write_bytes(b"")
    with pytest.raises(VideoReadError, match="0002.png': the file is empty"):
        read_video(tmp_path)


# --- frame rate ----------------------------------------------------------------------------------


def test_resample_25_to_30_fps_repeats_nearest_frames():
    frames = np.arange(250)  # stands in for (N, H, W, 3): indexing is the same

    resampled = resample_fps(frames, 25, 30)

    assert len(resampled) == 300  # same 10 s duration
    assert resampled[:12].tolist() == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9]
    assert np.all(np.diff(resampled) >= 0) and resampled[-1] == 249


def test_resample_down_and_identity():
    frames = np.zeros((30, 2, 2, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(30)

    halved = resample_fps(frames, 30, 15)

    assert halved.shape == (15, 2, 2, 3)
    assert halved[:, 0, 0, 0].tolist() == list(range(0, 30, 2))
    assert resample_fps(frames, 30, 30) is frames
    with pytest.raises(ValueError):
        resample_fps(frames, 0, 30)


@pytest.mark.parametrize("source_fps, target_fps", [(25, 30), (60, 30), (30, 24), (23.976, 30), (7, 30), (240, 24)])
def test_resample_stream_takes_the_nearest_frames_one_at_a_time(source_fps, target_fps):
    """Frame by frame, without knowing the length in advance, the same frames as indexing the clip."""
    for count in range(40):
        output_count = max(1, round(count * target_fps / source_fps)) if count else 0
        times = np.arange(output_count) / target_fps
        nearest = np.clip(np.floor(times * source_fps + 0.5 + 1e-9).astype(int), 0, count - 1)
        assert list(resample_stream(iter(range(count)), source_fps, target_fps)) == nearest.tolist()


def test_open_video_decodes_as_frames_are_taken(tmp_path):
    path = write_test_clip(tmp_path / "clip.mp4")

    stream = open_video(path, start=5)

    assert stream.fps == 25.0 and frame_levels([next(stream.frames), next(stream.frames)]) == [5, 6]
    stream.frames.close()
    with pytest.raises(StopIteration):
        next(stream.frames)


# --- listing -------------------------------------------------------------------------------------


def test_list_videos(tmp_path):
    clips = tmp_path / "clips"
    (clips / "nested").mkdir(parents=True)
    write_test_clip(clips / "b.mp4", frame_count=2)
    (clips / "a.avi").write_bytes(b"x")  # listed by name; reading it is another matter
    (clips / "LICENSE").write_text("MIT")
    (clips / "README.md").write_text("clips")
    (clips / "nested" / "c.mov").write_bytes(b"x")
    frames = tmp_path / "frames"
    frames.mkdir()
    for number in range(3):
        Image.new("RGB", (4, 4)).save(frames / f"frame_{number:03d}.png")
    (frames / "notes.txt").write_text("three frames")
    stills = tmp_path / "stills"
    stills.mkdir()
    Image.new("RGB", (4, 4)).save(stills / "flower.png")
    Image.new("RGB", (4, 4)).save(stills / "rose.png")

    found = list_videos([clips, frames, stills, clips / "b.mp4", clips / "LICENSE"])

    assert found == [str(clips / "a.avi"), str(clips / "b.mp4"), str(clips / "nested" / "c.mov"), str(frames)]
    with pytest.raises(VideoReadError, match="does not exist"):
        list_videos([tmp_path / "missing"])


# --- real footage --------------------------------------------------------------------------------


@needs_shared_data
@pytest.mark.parametrize("reader", ["opencv", "ffmpeg"])
def test_dyntex_avi_reads_the_same_with_both_readers(reader, monkeypatch):
    path = SHARED_DATA / "real" / "flag.avi"
    from_opencv = read_video(path, max_frames=5, start=100)
    if reader == "ffmpeg":
        monkeypatch.setattr(video, "_read_with_opencv", opencv_fails)

    clip = read_video(path, max_frames=5, start=100)

    assert clip.frames.shape == (5, 288, 352, 3) and clip.fps == 25.0
    np.testing.assert_array_equal(clip.frames, from_opencv.frames)


@needs_shared_data
def test_real_wavingtrees_bmp_folder():
    clip = read_video(SHARED_DATA / "real" / "wavingtrees", max_frames=10)

    assert clip.frames.shape == (10, 120, 160, 3)
    assert clip.fps == 30.0
    expected_first = np.asarray(Image.open(SHARED_DATA / "real" / "wavingtrees" / "b00000.bmp").convert("RGB"))
    np.testing.assert_array_equal(clip.frames[0], expected_first)


@needs_shared_data
def test_real_flag_avi():
    clip = read_video(SHARED_DATA / "real" / "flag.avi")

    assert clip.frames.shape == (250, 288, 352, 3)
    assert clip.fps == 25.0
    assert 20 < clip.frames.mean() < 235  # real picture content, not black or blank
    assert np.abs(clip.frames[1].astype(int) - clip.frames[0]).mean() > 0.1  # and it moves


@needs_shared_data
def test_real_gid_loop_mp4():
    clip = read_video(SHARED_DATA / "gid-loops" / "rose_loop.mp4")

    assert clip.frames.shape == (150, 288, 512, 3)
    assert clip.fps == 30.0


@needs_shared_data
def test_real_data_listing():
    found = list_videos([SHARED_DATA / "real"])

    assert str(SHARED_DATA / "real" / "wavingtrees") in found
    assert str(SHARED_DATA / "real" / "flag.avi") in found
    assert str(SHARED_DATA / "real" / "candle_tealight" / "candle.mp4") in found
    assert not any("LICENSE" in path for path in found)
