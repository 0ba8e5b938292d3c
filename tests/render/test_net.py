"""The learned renderer: shapes, finiteness, weights on disk, batch rendering, a tiny training run, metrics."""

import json
import os

import numpy as np
import pytest
import torch

from app.data.images import save_image
from app.data.pairs import PairDataset, PairSettings, build_pairs
from app.data.synthetic import render_synthetic_video, sinusoidal_motion_texture, textured_image
from app.eval.render_eval import psnr, ssim
from app.render.net import LearnedRenderer, load_renderer, save_renderer
from app.train.renderer import main as train_main

SMALL_CONFIG = {"channels": [8, 12, 16], "alpha": 1.0}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_inputs(batch, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    flow = torch.randn(batch, 2, height, width, generator=generator) * 2.0
    weight = flow.norm(dim=1, keepdim=True)
    return image, flow, weight


def randomized(model):
    """Give the zero-initialized output layer random weights so the network's path is exercised."""
    with torch.no_grad():
        model.decoder.to_rgb.weight.normal_(0, 0.05)
    return model


def test_output_has_the_input_size_and_stays_in_range_for_odd_sizes():
    model = randomized(LearnedRenderer(SMALL_CONFIG)).eval()
    image, flow, weight = random_inputs(2, 37, 51)
    with torch.no_grad():
        frames = model(image, flow, weight)
    assert frames.shape == (2, 3, 37, 51)
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0


def test_untrained_renderer_with_zero_flow_returns_the_photo():
    model = LearnedRenderer(SMALL_CONFIG).eval()
    image, _, _ = random_inputs(1, 30, 45)
    frames = model.render(image, torch.zeros(3, 2, 30, 45), torch.zeros(1, 1, 30, 45))
    assert frames.shape == (3, 3, 30, 45)
    assert torch.isfinite(frames).all()
    torch.testing.assert_close(frames, image.expand(3, -1, -1, -1), atol=1e-5, rtol=0)


def test_save_and_load_give_the_same_frames(tmp_path):
    model = randomized(LearnedRenderer(SMALL_CONFIG)).eval()
    path = tmp_path / "renderer.safetensors"
    save_renderer(path, model, {"steps": 0})
    loaded = load_renderer(path)
    image, flow, weight = random_inputs(2, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, flow, weight), model(image, flow, weight), atol=2e-2, rtol=0)
    assert loaded.config == model.config
    assert loaded.training_info == {"steps": 0}


def test_loading_a_missing_or_broken_file_says_so(tmp_path):
    with pytest.raises(ValueError, match="do not exist"):
        load_renderer(tmp_path / "absent.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01 not safetensors")
    with pytest.raises(ValueError, match="damaged"):
        load_renderer(broken)


def test_render_batch_equals_forward_frame_by_frame():
    model = randomized(LearnedRenderer(SMALL_CONFIG)).eval()
    image, flow, _ = random_inputs(4, 22, 30, seed=1)
    image = image[:1]
    importance = flow.norm(dim=1, keepdim=True).mean(dim=0, keepdim=True)  # (1, 1, H, W)
    batch = model.render(image, flow, importance)
    with torch.no_grad():
        for i in range(4):
            single = model(image, flow[i:i + 1], importance)
            torch.testing.assert_close(batch[i:i + 1], single, atol=1e-5, rtol=0)


# --- a tiny training run on a synthetic clip -----------------------------------------------------


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Pairs of one synthetic swaying clip at 64x48 (written as a folder of PNG frames).

    Every frame after the first is also dimmed to 80%, as if a cloud passed: splatting alone cannot
    render that, so a few training steps have something clear to learn.
    """
    root = tmp_path_factory.mktemp("renderer")
    clip = root / "sway0"  # split_of('sway0') is 'train'
    os.makedirs(clip)
    image = textured_image(48, 64, seed=0)
    motion = sinusoidal_motion_texture(48, 64, 40, seed=0, max_amplitude_px=4.0, min_hz=1.0, max_hz=2.0)
    frames = render_synthetic_video(image, motion)  # (40, 48, 64, 3)
    frames[1:] = np.round(frames[1:] * 0.8).astype(np.uint8)
    for number, frame in enumerate(frames):
        save_image(str(clip / f"f{number:04d}.png"), frame)
    settings = PairSettings(width=64, height=48, window=40, min_window=20, stride=10, offsets=(3, 8, 15, 30, 39))
    out = root / "pairs"
    reports = build_pairs([str(clip)], str(out), settings)
    assert reports[0].error == "" and reports[0].split == "train" and reports[0].pairs == 11
    return str(out)


def test_pair_dataset_items_and_flip(pairs_dir):
    dataset = PairDataset(pairs_dir, "train", augment=False)
    item = dataset[0]
    assert item["image0"].shape == (3, 48, 64) and item["flow"].shape == (2, 48, 64)
    assert item["weight"].shape == (1, 48, 64) and item["t"] == 3
    assert 0.0 <= float(item["image0"].min()) and float(item["image_t"].max()) <= 1.0
    cropped = PairDataset(pairs_dir, "train", augment=True, crop=(32, 24))[0]
    assert cropped["image0"].shape == (3, 24, 32) and cropped["weight"].shape == (1, 24, 32)
    assert len(PairDataset(pairs_dir, "val")) == 0


def read_log(run_dir):
    with open(os.path.join(run_dir, "log.jsonl"), encoding="utf-8") as log:
        return [json.loads(line) for line in log]


def test_training_lowers_the_loss_and_resumes(pairs_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    common = ["--data", pairs_dir, "--out", run_dir, "--batch", "16", "--size", "64x48", "--lr", "1e-3",
              "--warmup", "3", "--workers", "0", "--log-every", "1", "--channels", "8,12,16"]
    assert train_main(common + ["--steps", "30"]) == 0
    losses = [record["loss"] for record in read_log(run_dir)]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert os.path.isfile(os.path.join(run_dir, "renderer.safetensors"))

    assert train_main(common + ["--steps", "33", "--resume"]) == 0
    steps = [record["step"] for record in read_log(run_dir)]
    assert steps[-3:] == [31, 32, 33]
    assert load_renderer(os.path.join(run_dir, "renderer.safetensors")).training_info["steps"] == 33


# --- metrics -------------------------------------------------------------------------------------


def test_psnr_and_ssim_of_identical_images_are_inf_and_one():
    image = torch.rand(2, 3, 40, 50, generator=torch.Generator().manual_seed(3))
    assert torch.isinf(psnr(image, image)).all()
    torch.testing.assert_close(ssim(image, image), torch.ones(2), atol=1e-5, rtol=0)


def test_noise_lowers_ssim_and_psnr_follows_the_noise_level():
    image = torch.rand(1, 3, 40, 50, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.25
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(5)) * 0.05
    noisy = image + noise
    assert float(ssim(noisy, image)) < 0.99
    expected = 10 * np.log10(1 / float(noise.square().mean()))
    assert abs(float(psnr(noisy, image)) - expected) < 1e-3
