"""The dataset builder and the torch Dataset over its shards, on small synthetic videos."""

import json
import os
import tracemalloc

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from app.core.normalize import denormalize_spectrum
from app.core.spectral import Motion, motion_to_texture
from app.data.dataset import SpectralDataset
from app.data.extract import (
    Counted, ExtractSettings, camera_motion_score, extract_clip, extract_dataset, load_index, may_wrap,
    parse_input, sliding_windows, wrapped,
)
from app.data.images import save_image
from app.data.synthetic import render_synthetic_video, sinusoidal_motion_texture, textured_image

SIZE = dict(width=64, height=48)
SETTINGS = ExtractSettings(**SIZE, num_frames=30, stride=10, num_bands=8, fps=30.0)


def write_frame_folder(folder, frames):
    os.makedirs(folder, exist_ok=True)
    for number, frame in enumerate(frames):
        save_image(os.path.join(folder, f"f{number:04d}.png"), frame)
    return str(folder)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A swaying clip, a still clip, a panning clip and a broken file."""
    root = tmp_path_factory.mktemp("clips")
    image = textured_image(48, 64, seed=1)
    num_frames = 50
    sway = sinusoidal_motion_texture(48, 64, num_frames, seed=2, max_amplitude_px=3.0, min_hz=1.0, max_hz=2.0)
    t = np.arange(num_frames, dtype=np.float32)
    pan = np.zeros((num_frames, 2, 48, 64), np.float32)
    pan[:, 0] = (0.15 * t)[:, None, None]  # the camera pans right: every pixel moves together
    paths = {
        "sway": write_frame_folder(root / "sway", render_synthetic_video(image, sway)),
        "still": write_frame_folder(root / "still", np.repeat(image[None], num_frames, axis=0)),
        "pan": write_frame_folder(root / "pan", render_synthetic_video(textured_image(48, 64, seed=3), pan)),
    }
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video")
    paths["broken"] = str(broken)
    return paths, sway


@pytest.fixture(scope="module")
def dataset_dir(clips, tmp_path_factory):
    paths, _ = clips
    out = tmp_path_factory.mktemp("dataset")
    reports = extract_dataset([paths[k] for k in ("sway", "still", "pan", "broken")], str(out), SETTINGS)
    return str(out), {r.source: r for r in reports}


def test_extraction_keeps_swaying_windows_and_drops_still_and_panning_ones(clips, dataset_dir):
    paths, _ = clips
    _, reports = dataset_dir
    sway, still, pan = reports[paths["sway"]], reports[paths["still"]], reports[paths["pan"]]
    assert sway.windows_kept == sway.windows_total == 3  # starts 0, 10, 20 of 50 frames
    assert still.windows_kept == 0 and still.dropped_static == still.windows_total
    assert pan.windows_kept == 0 and pan.dropped_camera > 0
    assert reports[paths["broken"]].error and reports[paths["broken"]].windows_kept == 0
    assert 0.9 < sway.band_energy_share <= 1.0 + 1e-6
    assert sway.median_displacement_px > 0


def test_extracted_spectrum_matches_the_known_motion(clips, dataset_dir):
    paths, truth = clips
    out, _ = dataset_dir
    dataset = SpectralDataset(out, split="all")
    image, motion = dataset.raw(0)  # the window that starts at frame 0
    assert image.shape == (48, 64, 3) and motion.spectrum.shape == (8, 2, 48, 64)
    texture = motion_to_texture(motion)  # (30, 2, 48, 64): band-limited flow
    reference = motion_to_texture(Motion(np.fft.rfft(truth[:30], axis=0)[:8], 30, 30.0))
    error = np.abs(texture - reference)[:, :, 4:-4, 4:-4].mean()
    assert error < 0.25, error


def test_index_holds_scales_windows_and_reports(dataset_dir):
    out, _ = dataset_dir
    index = load_index(out)
    assert len(index["scales"]) == 8 and all(s > 0 for s in index["scales"])
    assert len(index["windows"]) == 3 and len(index["clips"]) == 4
    assert {w["split"] for w in index["windows"]} <= {"train", "val"}


def test_extraction_is_resumable(clips, dataset_dir):
    paths, _ = clips
    out, _ = dataset_dir
    shard = os.path.join(out, "shards")
    before = {name: os.path.getmtime(os.path.join(shard, name)) for name in os.listdir(shard)}
    reports = extract_dataset([paths["sway"]], out, SETTINGS)
    after = {name: os.path.getmtime(os.path.join(shard, name)) for name in os.listdir(shard)}
    assert before == after and reports[0].windows_kept == 3


def test_dataset_items_are_normalized_and_invert(dataset_dir):
    out, _ = dataset_dir
    dataset = SpectralDataset(out, split="all")
    item = dataset[0]
    assert item["image"].shape == (3, 48, 64) and item["image"].dtype == torch.float32
    assert item["normalized"].shape == (8, 4, 48, 64)
    back = denormalize_spectrum(item["normalized"].numpy(), dataset.scales)
    np.testing.assert_allclose(back, item["spectrum"].numpy(), rtol=1e-3, atol=1e-3)


def test_augmentation_flips_negate_x_and_jitter_leaves_motion_alone(dataset_dir):
    out, _ = dataset_dir
    dataset = SpectralDataset(out, split="all", augment=True, min_crop=1.0)
    plain = SpectralDataset(out, split="all")[0]
    flipped_seen = unflipped_seen = False
    for _ in range(12):
        item = dataset[0]
        spectrum, reference = item["spectrum"].numpy(), plain["spectrum"].numpy()
        if np.allclose(spectrum, reference, atol=1e-4):
            unflipped_seen = True
        else:
            np.testing.assert_allclose(spectrum[:, 0], -reference[:, 0, :, ::-1], atol=1e-4)
            np.testing.assert_allclose(spectrum[:, 1], reference[:, 1, :, ::-1], atol=1e-4)
            flipped_seen = True
    assert flipped_seen and unflipped_seen


def test_crop_augmentation_scales_displacements(dataset_dir):
    out, _ = dataset_dir
    dataset = SpectralDataset(out, split="all", augment=True, min_crop=0.5)
    plain = np.abs(SpectralDataset(out, split="all")[0]["spectrum"].numpy()).mean()
    magnitudes = [np.abs(dataset[0]["spectrum"].numpy()).mean() for _ in range(8)]
    assert np.mean(magnitudes) > plain  # zooming into a crop enlarges displacements


def test_helpers():
    assert parse_input("clip[0:240]") == ("clip", 0, 240)
    assert parse_input("clip.mp4") == ("clip.mp4", 0, None)
    assert may_wrap("data/tree_loop.mp4", "loops") and not may_wrap("data/tree.mp4", "loops")
    assert may_wrap("data/tree.mp4", "always") and not may_wrap("data/tree_loop.mp4", "never")
    shift = np.zeros((5, 2, 8, 8), np.float32)
    shift[:, 0] = 3.0
    assert camera_motion_score(shift) == (3.0, 1.0)
    with pytest.raises(ValueError):
        load_index("/nonexistent-folder")


# --- streaming: windows slide over the frames as they are decoded ---------------------------------


def clip_windows(num_video_frames, num_frames, stride, loops):
    """[(start, [frame numbers])] of a clip of frames 0 .. num_video_frames - 1, as extraction sees it."""
    frames = wrapped(Counted(range(num_video_frames)), num_frames, loops)
    return list(sliding_windows(frames, num_frames, stride))


@pytest.mark.parametrize("num_video_frames, num_frames, stride, loops", [
    (50, 30, 10, False), (50, 30, 10, True), (57, 30, 7, False), (20, 30, 7, True), (16, 24, 4, True),
    (85, 16, 20, False), (45, 16, 20, True), (14, 30, 5, True), (29, 30, 5, False), (30, 30, 5, False),
])
def test_windows_are_the_clip_indexed_around_its_end(num_video_frames, num_frames, stride, loops):
    """The same windows as indexing the whole clip: frames (start + t) % N, starts every stride frames,
    anywhere in a loop of at least T/2 frames, else only where the window fits."""
    wraps = loops and num_video_frames >= num_frames // 2
    last_start = num_video_frames - 1 if wraps else num_video_frames - num_frames
    expected = [(start, [(start + t) % num_video_frames for t in range(num_frames)])
                for start in range(0, last_start + 1, stride)]
    assert clip_windows(num_video_frames, num_frames, stride, loops) == expected


class Frame:
    """A stand-in frame that counts how many frames are alive."""

    alive = 0

    def __init__(self):
        Frame.alive += 1

    def __del__(self):
        Frame.alive -= 1


@pytest.mark.parametrize("loops", [False, True])
def test_sliding_windows_hold_one_window_of_frames_not_the_clip(loops):
    num_frames, stride, most_alive = 30, 7, 0
    frames = Counted(Frame() for _ in range(1000))
    for _, window in sliding_windows(wrapped(frames, num_frames, loops), num_frames, stride):
        most_alive = max(most_alive, Frame.alive)
        assert len(window) == num_frames
    head = num_frames - 1 if loops else 0  # a loop keeps its first frames to wrap around to
    assert frames.count == 1000 and most_alive <= num_frames + stride + head


def write_long_video(path, num_frames, width, height):
    """An mp4 of a texture that sways, written frame by frame."""
    texture = textured_image(height, width + 16, seed=4)
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=30, macro_block_size=1)
    writer.send(None)
    for t in range(num_frames):
        shift = int(round(8 + 6 * np.sin(2 * np.pi * t / 25)))
        writer.send(np.ascontiguousarray(texture[:, shift:shift + width]))
    writer.close()


def test_extracting_a_long_video_holds_a_few_frames_not_the_video(tmp_path):
    """300 frames of 320x240 decode to 69 MB; extraction streams them and stays far below that."""
    num_frames, width, height = 300, 320, 240
    path = tmp_path / "long.mp4"
    write_long_video(path, num_frames, width, height)
    settings = ExtractSettings(width=32, height=24, num_frames=16, stride=8, num_bands=4, fps=30.0)
    tracemalloc.start()
    try:
        report = extract_clip(str(path), str(tmp_path / "out"), settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not report.error and report.frames == num_frames and report.windows_total == (300 - 16) // 8 + 1
    decoded = num_frames * width * height * 3
    assert peak < decoded / 10, f"peak {peak / 1e6:.1f} MB for a video of {decoded / 1e6:.1f} MB"


def test_a_frame_folder_that_changes_size_part_way_is_one_sentence(tmp_path):
    image = textured_image(48, 64, seed=5)
    folder = write_frame_folder(tmp_path / "clip", [image] * 40)
    save_image(os.path.join(folder, "f0035.png"), image[:40])
    report = extract_clip(folder, str(tmp_path / "out"), SETTINGS)
    assert "different sizes" in report.error and report.windows_kept == 0
    assert not os.path.exists(tmp_path / "out" / "shards")
