"""The dataset builder and the torch Dataset over its shards, on small synthetic videos."""

import json
import os

import numpy as np
import pytest
import torch

from app.core.normalize import denormalize_spectrum
from app.core.spectral import Motion, motion_to_texture
from app.data.dataset import SpectralDataset
from app.data.extract import (
    ExtractSettings, camera_motion_score, extract_dataset, load_index, may_wrap, parse_input,
    window_starts,
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
    assert sway.windows_kept == sway.windows_total == len(window_starts(50, 30, 10, wrap=False)) == 3
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
    assert window_starts(50, 30, 10, wrap=True) == [0, 10, 20, 30, 40]
    assert may_wrap("data/tree_loop.mp4", "loops") and not may_wrap("data/tree.mp4", "loops")
    assert may_wrap("data/tree.mp4", "always") and not may_wrap("data/tree_loop.mp4", "never")
    shift = np.zeros((5, 2, 8, 8), np.float32)
    shift[:, 0] = 3.0
    assert camera_motion_score(shift) == (3.0, 1.0)
    with pytest.raises(ValueError):
        load_index("/nonexistent-folder")
