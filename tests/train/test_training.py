"""The motion-model training scripts (VAE, stage-1 U-Net, stage-2 frequency attention) at CI speed.

A tiny dataset is extracted from synthetic swaying videos (64 x 48, 30-frame windows, 4 bands);
each stage trains a few dozen steps with its "tiny" architecture on the CPU.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from app.data.extract import ExtractSettings, extract_dataset, load_index
from app.data.images import save_image
from app.data.synthetic import render_synthetic_video, sinusoidal_motion_texture, textured_image
from app.train import freq_attn, ldm, vae
from app.train.common import CHECKPOINT_NAME, read_log

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = ExtractSettings(width=64, height=48, num_frames=30, stride=10, num_bands=4, fps=30.0)
CLIPS = ("sway0", "sway1", "sway2", "sway3")  # sway1 falls in the validation split
COMMON = ["--device", "cpu", "--threads", "1", "--seed", "0", "--log-every", "1"]  # 1 thread: fastest on a shared CPU


def losses_of(run_dir):
    return [record["loss"] for record in read_log(run_dir) if "loss" in record]


def falls(losses):
    return np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Four 60-frame clips of textures swaying at 1-3 Hz, extracted into 16 windows."""
    root = tmp_path_factory.mktemp("clips")
    specs = []
    for number, name in enumerate(CLIPS):
        image = textured_image(48, 64, seed=number)
        texture = sinusoidal_motion_texture(48, 64, 60, seed=number, max_amplitude_px=3.0, min_hz=1.0, max_hz=3.0)
        folder = root / name
        folder.mkdir()
        for index, frame in enumerate(render_synthetic_video(image, texture)):
            save_image(str(folder / f"f{index:04d}.png"), frame)
        specs.append(str(folder))
    out = tmp_path_factory.mktemp("dataset")
    extract_dataset(specs, str(out), SETTINGS)
    splits = [window["split"] for window in load_index(str(out))["windows"]]
    assert "train" in splits and "val" in splits
    return str(out)


@pytest.fixture(scope="module")
def vae_run(dataset_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("vae"))
    assert vae.main(["--data", dataset_dir, "--out", out, "--config", "tiny", "--steps", "40", "--batch", "4",
                     "--lr", "2e-3", "--val-items", "2", "--scale-items", "4", *COMMON]) == 0
    return out


@pytest.fixture(scope="module")
def ldm_run(dataset_dir, vae_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ldm"))
    assert ldm.main(["--data", dataset_dir, "--vae", os.path.join(vae_run, "vae.safetensors"), "--out", out,
                     "--config", "tiny", "--steps", "40", "--batch", "16", "--lr", "1e-3", "--val-items", "1", *COMMON]) == 0
    return out


def test_vae_training_lowers_the_loss_and_writes_a_scaled_vae(vae_run):
    from app.diffusion.weights import load_vae

    assert falls(losses_of(vae_run))
    model = load_vae(os.path.join(vae_run, "vae.safetensors"))
    info = model.training_info
    assert info["steps"] == 40 and info["stage"] == "vae"
    assert 0 < info["val_reconstruction_l1"] < 1.0
    assert model.config.scale_factor == pytest.approx(info["latent_scale"], rel=1e-3)
    assert model.config.scale_factor != 1.0


def test_ldm_training_lowers_the_loss_and_writes_a_motion_model(ldm_run, dataset_dir):
    from app.data.dataset import SpectralDataset
    from app.diffusion.predict import predict_motion
    from app.diffusion.weights import load_motion_model

    assert falls(losses_of(ldm_run))
    model = load_motion_model(os.path.join(ldm_run, "motion_model.safetensors"))
    assert (model.width, model.height, model.num_bands, model.config.num_frames) == (64, 48, 4, 30)
    np.testing.assert_allclose(model.scales, SpectralDataset(dataset_dir).scales, rtol=1e-6)
    assert model.training["stage"] == "ldm" and model.training["ldm"]["steps"] == 40
    assert model.training["vae"]["stage"] == "vae"
    motion = predict_motion(textured_image(48, 64, seed=9), model, num_steps=2)
    assert motion.spectrum.shape == (4, 2, 48, 64) and np.isfinite(motion.spectrum).all()


def test_freq_attn_trains_the_attention_and_leaves_the_base_unchanged(ldm_run, dataset_dir, tmp_path):
    from app.diffusion.weights import load_motion_model

    stage1_path = os.path.join(ldm_run, "motion_model.safetensors")
    out = str(tmp_path / "freq")
    assert freq_attn.main(["--data", dataset_dir, "--model", stage1_path, "--out", out, "--steps", "12",
                           "--batch", "2", "--lr", "1e-3", "--val-items", "1", *COMMON]) == 0
    before, after = load_motion_model(stage1_path), load_motion_model(os.path.join(out, "motion_model.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(before.unet.base_parameters(), after.unet.base_parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before.vae.parameters(), after.vae.parameters()))
    changed = [not torch.equal(a, b) for a, b in zip(before.unet.frequency_attention_parameters(),
                                                       after.unet.frequency_attention_parameters())]
    assert all(changed)
    assert after.training["stage"] == "freq-attn" and after.training["freq_attn"]["steps"] == 12
    assert after.training["ldm"]["steps"] == 40


def test_bench_predict_prints_speed_and_quality_rows(ldm_run, dataset_dir, capsys):
    import json

    from app.eval import bench_predict

    weights = os.path.join(ldm_run, "motion_model.safetensors")
    assert bench_predict.main(["--json", "--weights", weights, "--steps", "1,3", "--items", "1",
                               "--data", dataset_dir, "--loop", "on", "--threads", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["steps"], row["loop"]) for row in rows] == [(1, False), (3, False), (1, True), (3, True)]
    assert all(row["name"] == "predict" and row["seconds"] > 0 and 0 <= row["iou"] <= 1 for row in rows)
    assert rows[1]["ratio"] == 1.0 and rows[0]["size"] == "64x48"


def test_resume_continues_the_step_count(dataset_dir, tmp_path):
    out = str(tmp_path / "resume")
    arguments = ["--data", dataset_dir, "--out", out, "--config", "tiny", "--batch", "2", "--val-items", "1",
                 "--scale-items", "2", *COMMON]
    assert vae.main(arguments + ["--steps", "3"]) == 0
    assert vae.main(arguments + ["--steps", "6", "--resume"]) == 0
    steps = [record["step"] for record in read_log(out) if "loss" in record]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert torch.load(os.path.join(out, CHECKPOINT_NAME), weights_only=True)["step"] == 6


def test_time_limit_stops_cleanly_with_a_checkpoint_and_weights(dataset_dir, tmp_path):
    out = str(tmp_path / "limited")
    assert vae.main(["--data", dataset_dir, "--out", out, "--config", "tiny", "--steps", "1000", "--batch", "2",
                     "--time-limit", "0", "--val-items", "1", "--scale-items", "2", *COMMON]) == 0
    assert torch.load(os.path.join(out, CHECKPOINT_NAME), weights_only=True)["step"] < 1000
    assert os.path.isfile(os.path.join(out, "vae.safetensors"))


def test_resume_without_a_checkpoint_is_one_clear_error(dataset_dir, tmp_path, capsys):
    assert vae.main(["--data", dataset_dir, "--out", str(tmp_path / "none"), "--resume", "--device", "cpu"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_vae_trains_under_torchrun_with_two_gloo_processes(dataset_dir, tmp_path):
    out = str(tmp_path / "ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
               "-m", "app.train.vae", "--data", dataset_dir, "--out", out, "--config", "tiny", "--steps", "4",
               "--batch", "2", "--device", "cpu", "--threads", "1", "--log-every", "1", "--val-items", "1",
               "--scale-items", "2"]
    environment = {**os.environ, "PYTHONPATH": REPO_ROOT, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    checkpoint = torch.load(os.path.join(out, CHECKPOINT_NAME), weights_only=True)
    assert checkpoint["step"] == 4
    assert os.path.isfile(os.path.join(out, "vae.safetensors"))
    assert [record["step"] for record in read_log(out) if "loss" in record] == [1, 2, 3, 4]  # rank 0 only


@pytest.fixture(scope="module")
def pixel_run(dataset_dir, tmp_path_factory):
    from app.train import pixel

    out = str(tmp_path_factory.mktemp("pixel"))
    assert pixel.main(["--data", dataset_dir, "--out", out, "--size", "16x16", "--widths", "tiny", "--steps", "40",
                       "--batch", "8", "--lr", "2e-3", "--val-every", "20", "--crops", "2", "--paste", "0.5",
                       *COMMON]) == 0
    return out


def test_pixel_training_lowers_the_loss_and_writes_a_pixel_model(pixel_run):
    from app.diffusion.pixel import load_pixel_model

    assert falls(losses_of(pixel_run))
    model = load_pixel_model(os.path.join(pixel_run, "motion_model.safetensors"))
    assert (model.config.width, model.config.height) == (16, 16)
    assert model.training["steps"] == 40 and model.training["crops"] == 2 and model.training["paste"] == 0.5
    assert model.config.data_scale > 1.0  # normalized bands of mostly still pixels: std well below 1


def test_pixel_crop_views_keep_the_motion_of_the_cut_out_pixels():
    from app.core.spectral import Motion
    from app.train.pixel import window_views

    ys, xs = np.mgrid[0:30, 0:40]
    image = np.stack([ys, xs, np.zeros_like(ys)], axis=2).astype(np.uint8)  # a pixel holds its own (y, x)
    rng = np.random.default_rng(0)
    spectrum = (rng.normal(size=(4, 2, 30, 40)) + 1j * rng.normal(size=(4, 2, 30, 40))).astype(np.complex64)
    views = window_views(image, Motion(spectrum, 30, 30.0), flip=False, crops=3, rng=np.random.default_rng(1))
    assert len(views) == 4
    for crop_image, crop in views[1:]:
        height, width = crop_image.shape[:2]
        assert crop.spectrum.shape[-2:] == (height, width) and 18 <= height < 30 and 24 <= width < 40
        top, left = int(crop_image[0, 0, 0]), int(crop_image[0, 0, 1])
        np.testing.assert_array_equal(crop_image, image[top:top + height, left:left + width])
        # bands 1.. are cut out as they are (band 0 follows from them: frame 0 is the photo)
        np.testing.assert_array_equal(crop.spectrum[1:], spectrum[1:, :, top:top + height, left:left + width])


def test_pixel_paste_moves_photo_and_motion_together_and_only_into_some_rows():
    from app.train.pixel import paste_rectangles

    rows, height, width = 64, 12, 20
    labels = torch.arange(rows, dtype=torch.float32)[:, None, None, None]  # each row holds its own number...
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    motions = torch.cat([labels.expand(rows, 1, height, width), ys.expand(rows, 1, height, width).float(),
                         xs.expand(rows, 1, height, width).float()], dim=1)  # ...and each pixel its (y, x)
    photos = torch.nn.functional.interpolate(motions, scale_factor=2, mode="nearest").to(torch.uint8)  # (B, 3, 2h, 2w)
    photos_before, motions_before = photos.clone(), motions.clone()
    pasted_photos, pasted_motions = paste_rectangles(photos, motions, torch.Generator().manual_seed(0), 0.5)
    assert torch.equal(photos, photos_before) and torch.equal(motions, motions_before)  # (inputs untouched)
    # the photo, shrunk to the grid, still shows the pixel whose motion the grid holds
    torch.testing.assert_close(pasted_photos[:, :, ::2, ::2].float(), pasted_motions)
    changed = [row for row in range(rows) if not torch.equal(pasted_motions[row], motions[row])]
    assert 16 <= len(changed) <= 48  # about half the rows
    for row in changed:
        region = pasted_motions[row, 0] != row
        area = int(region.sum())
        assert 0.09 * height * width <= area <= 0.5 * height * width  # a 30-70 % by 30-70 % rectangle
        assert len(torch.unique(pasted_motions[row, 0][region])) == 1  # from one other row
    assert torch.equal(paste_rectangles(photos, motions, torch.Generator(), 0.0)[1], motions)


def test_pixel_init_continues_from_a_model_file(pixel_run, dataset_dir, tmp_path):
    from app.diffusion.pixel import load_pixel_model
    from app.train import pixel

    start = os.path.join(pixel_run, "motion_model.safetensors")
    out = str(tmp_path / "continued")
    assert pixel.main(["--data", dataset_dir, "--out", out, "--init", start, "--steps", "5", "--batch", "4",
                       "--lr", "1e-9", "--warmup", "0", *COMMON]) == 0
    first, continued = load_pixel_model(start), load_pixel_model(os.path.join(out, "motion_model.safetensors"))
    assert continued.config.to_dict() == first.config.to_dict()  # grid, widths and data scale come from the file
    for name, tensor in first.net.state_dict().items():  # lr ~0: the weights are the ones it started from
        torch.testing.assert_close(continued.net.state_dict()[name], tensor, atol=1e-5, rtol=1e-4)



def test_pixel_resume_adds_up_the_training_time_and_can_set_the_guidance(dataset_dir, tmp_path):
    from app.diffusion.pixel import load_pixel_model
    from app.train import pixel

    out = str(tmp_path / "pixel-resume")
    arguments = ["--data", dataset_dir, "--out", out, "--size", "16x16", "--widths", "tiny", "--batch", "2", *COMMON]
    assert pixel.main(arguments + ["--steps", "3"]) == 0
    first = load_pixel_model(os.path.join(out, "motion_model.safetensors"))
    assert first.guidance == 1.75 and first.training["resumed_after_seconds"] == 0
    assert pixel.main(arguments + ["--steps", "5", "--resume", "--guidance", "9"]) == 0
    resumed = load_pixel_model(os.path.join(out, "motion_model.safetensors"))
    assert resumed.training["steps"] == 5 and resumed.guidance == 9.0
    assert resumed.training["resumed_after_seconds"] == pytest.approx(first.training["seconds"], abs=0.2)
    assert resumed.training["seconds"] >= resumed.training["resumed_after_seconds"]  # (rounded to 0.1 s)


def test_pixel_init_with_zero_steps_sets_the_guidance_and_keeps_the_weights_and_their_record(
        dataset_dir, pixel_run, tmp_path):
    from app.diffusion.pixel import load_pixel_model
    from app.train import pixel

    second_out = str(tmp_path / "pixel-tuned")
    arguments = ["--data", dataset_dir, "--size", "16x16", "--widths", "tiny", "--batch", "2", *COMMON]
    first_path = os.path.join(pixel_run, "motion_model.safetensors")
    first = load_pixel_model(first_path)
    assert pixel.main(arguments + ["--out", second_out, "--steps", "0", "--init", first_path,
                                   "--guidance", "12", "--guidance-top", "2"]) == 0
    tuned = load_pixel_model(os.path.join(second_out, "motion_model.safetensors"))
    assert (tuned.config.guidance, tuned.config.guidance_top) == (12.0, 2.0)
    assert tuned.training["steps"] == 0 and tuned.training["continued_from"] == first.training
    for name, tensor in first.net.state_dict().items():
        torch.testing.assert_close(tuned.net.state_dict()[name], tensor)


def test_pixel_envelope_from_a_model_without_it_starts_from_the_same_motion_prediction(
        dataset_dir, pixel_run, tmp_path):
    from app.diffusion.pixel import load_pixel_model
    from app.train import pixel

    second_out = str(tmp_path / "pixel-envelope")
    arguments = ["--data", dataset_dir, "--size", "16x16", "--widths", "tiny", "--batch", "2", *COMMON]
    first_path = os.path.join(pixel_run, "motion_model.safetensors")
    first = load_pixel_model(first_path)
    assert pixel.main(arguments + ["--out", second_out, "--steps", "0", "--init", first_path, "--envelope"]) == 0
    widened = load_pixel_model(os.path.join(second_out, "motion_model.safetensors"))
    assert widened.config.envelope and widened.config.envelope_std > 0 and widened.training["envelope"]
    bands = first.config.motion_channels
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, bands, 16, 16, generator=generator)
    extra = torch.randn(2, widened.config.diffused_channels - bands, 16, 16, generator=generator)
    image = torch.rand(2, 3, 32, 32, generator=generator)
    t = torch.tensor([100, 700])
    with torch.no_grad():
        before = first.net(x, t, image)
        after = widened.net(torch.cat([x, extra], dim=1), t, image)
    torch.testing.assert_close(after[:, :bands], before, atol=2e-3, rtol=1e-2)  # (fp16 weights in both files)
    assert torch.all(after[:, bands:] == 0)  # the new outputs start at zero


def test_pixel_resume_of_a_checkpoint_without_seconds_takes_them_from_the_log(dataset_dir, tmp_path):
    from app.diffusion.pixel import load_pixel_model
    from app.train import pixel

    out = str(tmp_path / "pixel-old-checkpoint")
    arguments = ["--data", dataset_dir, "--out", out, "--size", "16x16", "--widths", "tiny", "--batch", "2", *COMMON]
    assert pixel.main(arguments + ["--steps", "3"]) == 0
    path = os.path.join(out, CHECKPOINT_NAME)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["seconds"]  # as written before checkpoints kept the training time
    torch.save(checkpoint, path)
    logged = [record["seconds"] for record in read_log(out) if "seconds" in record][-1]
    assert pixel.main(arguments + ["--steps", "4", "--resume"]) == 0
    resumed = load_pixel_model(os.path.join(out, "motion_model.safetensors"))
    assert resumed.training["resumed_after_seconds"] == pytest.approx(logged, abs=0.05) and logged > 0


def test_pixel_resume_from_a_damaged_checkpoint_is_one_sentence(dataset_dir, tmp_path, capsys):
    from app.train import pixel

    out = tmp_path / "pixel-damaged"
    out.mkdir()
    (out / CHECKPOINT_NAME).write_bytes(b"not a checkpoint at all")
    arguments = ["--data", dataset_dir, "--out", str(out), "--size", "16x16", "--widths", "tiny", "--batch", "2",
                 "--steps", "2", "--resume", *COMMON]
    assert pixel.main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and CHECKPOINT_NAME in error[0] and "Traceback" not in error[0]


def test_pixel_guidance_out_of_range_is_one_sentence(dataset_dir, tmp_path, capsys):
    from app.train import pixel

    arguments = ["--data", dataset_dir, "--out", str(tmp_path / "g"), "--size", "16x16", "--widths", "tiny",
                 "--steps", "1", "--guidance", "0", *COMMON]
    assert pixel.main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "guidance" in error[0]


def test_pixel_paste_share_out_of_range_is_one_sentence(dataset_dir, tmp_path, capsys):
    from app.train import pixel

    arguments = ["--data", dataset_dir, "--out", str(tmp_path / "p"), "--size", "16x16", "--widths", "tiny",
                 "--steps", "1", "--paste", "1.5", *COMMON]
    assert pixel.main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--paste" in error[0] and "Traceback" not in error[0]
