"""The pixel-space motion prior: v/eps algebra, the network, its file, guided upsampling, prediction,
and the shipped model's dependence on its photo."""

import math
import os

import numpy as np
import pytest
import torch

from app.core.spectral import Motion, motion_to_texture, resize_motion
from app.diffusion.pixel import (
    PixelModelConfig, PixelMotionModel, PixelMotionNet, band_guidance, band_magnitudes, eps_from_v, with_envelope, guided_upsample, load_pixel_model,
    predict_pixel_motion, save_pixel_model, spectrum_to_stacked, stacked_to_spectrum, v_target,
)
from app.diffusion.sampler import ddim_sample
from app.diffusion.weights import load_motion_model

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(REPO_ROOT, "models", "motion_model.safetensors")
EXAMPLES = os.path.join(REPO_ROOT, "resources", "examples")


def tiny_pixel_model(seed=0, num_bands=4):
    torch.manual_seed(seed)
    config = PixelModelConfig(width=16, height=8, num_bands=num_bands, num_frames=30, channels=(16, 32),
                              image_channels=8)
    net = PixelMotionNet(config)
    for parameter in net.conv_out.parameters():  # the zero-initialised head would hide everything else
        torch.nn.init.normal_(parameter, std=0.05)
    return PixelMotionModel(net, np.linspace(20, 2, num_bands).astype(np.float32), config)


def photo(seed, height=16, width=32):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- algebra -------------------------------------------------------------------------------------


def test_eps_from_v_inverts_the_v_target():
    alpha = torch.tensor([0.9, 0.3, 0.01]).reshape(3, 1, 1, 1)
    x0, noise = torch.randn(3, 5, 2, 2), torch.randn(3, 5, 2, 2)
    noisy = alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise
    torch.testing.assert_close(eps_from_v(v_target(x0, noise, alpha), noisy, alpha), noise, atol=1e-5, rtol=1e-5)


def test_ddim_step_matches_a_worked_example():
    """Two deterministic steps with a constant eps = 0.5, by hand from the DDIM update."""
    alphas = torch.tensor([0.99, 0.81, 0.64, 0.25], dtype=torch.float64)  # t = 0..3; 2 steps visit t = 3, 1
    x = torch.full((1, 1, 1, 1), 2.0)
    result = ddim_sample(lambda x, t: torch.full_like(x, 0.5), (1, 1, 1, 1), alphas, 2, x_init=x)
    # step t=3 -> t=1: x0 = (2 - sqrt(.75) .5) / sqrt(.25); x = sqrt(.81) x0 + sqrt(.19) .5
    x0 = (2.0 - math.sqrt(0.75) * 0.5) / math.sqrt(0.25)
    x1 = math.sqrt(0.81) * x0 + math.sqrt(0.19) * 0.5
    # step t=1 -> end: x0 = (x1 - sqrt(.19) .5) / sqrt(.81), alpha_prev = 1
    expected = (x1 - math.sqrt(0.19) * 0.5) / math.sqrt(0.81)
    assert float(result) == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(x0 * 0.9, rel=1e-3)  # the direction term matters here


def test_stacked_bands_round_trip_and_leave_band_0_to_the_anchor():
    rng = np.random.default_rng(0)
    spectrum = (rng.normal(size=(4, 2, 3, 5)) + 1j * rng.normal(size=(4, 2, 3, 5))).astype(np.complex64)
    scales = np.array([9.0, 3.0, 2.0, 1.0], np.float32)
    stacked = spectrum_to_stacked(spectrum, scales)
    assert stacked.shape == (12, 3, 5)
    back = stacked_to_spectrum(torch.from_numpy(stacked)[None], scales, 4)[0].numpy()
    np.testing.assert_allclose(back[1:], spectrum[1:], rtol=1e-4, atol=1e-4)
    assert np.all(back[0] == 0)


# --- network and file ----------------------------------------------------------------------------


def test_the_network_output_depends_on_the_photo_and_the_null_image_differs():
    model = tiny_pixel_model()
    x = torch.randn(2, model.config.motion_channels, 8, 16)
    t = torch.tensor([500, 500])
    images = torch.rand(2, 3, 16, 32)
    same = model.net(x, t, images[:1].expand(2, -1, -1, -1))
    other = model.net(x, t, images)
    dropped = model.net(x, t, images, drop_image=torch.tensor([True, True]))
    assert same.shape == x.shape
    assert (same[1] - other[1]).abs().mean() > 1e-3
    assert (other - dropped).abs().mean() > 1e-3


def test_save_and_load_round_trip_gives_the_same_prediction(tmp_path):
    model = tiny_pixel_model()
    path = str(tmp_path / "pixel.safetensors")
    save_pixel_model(path, model)
    loaded = load_motion_model(path)  # the one loader dispatches on the file's format
    assert isinstance(loaded, PixelMotionModel)
    first = predict_pixel_motion(photo(0), model, num_steps=3, seed=1)
    second = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1)
    np.testing.assert_allclose(first.spectrum, second.spectrum, atol=0.05 * np.abs(first.spectrum).max())


def test_the_models_own_guidance_is_the_default_and_survives_its_file(tmp_path):
    from app.diffusion.predict import predict_motion

    model = tiny_pixel_model()
    model.config.guidance = 6.0
    path = str(tmp_path / "pixel.safetensors")
    save_pixel_model(path, model)
    loaded = load_pixel_model(path)
    assert loaded.guidance == 6.0
    own = predict_motion(photo(0), loaded, num_steps=3, seed=1)
    explicit = predict_motion(photo(0), loaded, num_steps=3, seed=1, guidance=6.0)
    other = predict_motion(photo(0), loaded, num_steps=3, seed=1, guidance=1.0)
    np.testing.assert_array_equal(own.spectrum, explicit.spectrum)
    assert np.abs(own.spectrum - other.spectrum).max() > 1e-3 * np.abs(own.spectrum).max()
    with pytest.raises(ValueError, match="guidance"):
        PixelModelConfig(width=16, height=8, num_bands=4, num_frames=30, channels=(16, 32), image_channels=8,
                         guidance=0.0)


def test_band_guidance_falls_geometrically_from_band_1_to_the_top_band_and_keeps_its_tilt():
    config = PixelModelConfig(width=16, height=8, num_bands=6, num_frames=30, channels=(16, 32), image_channels=8,
                              guidance=16.0, guidance_top=1.0)
    np.testing.assert_allclose(band_guidance(config), [16, 8, 4, 2, 1])  # bands 1..5
    np.testing.assert_allclose(band_guidance(config, guidance=8.0), [8, 4, 2, 1, 0.5])  # the model's tilt, scaled
    np.testing.assert_allclose(band_guidance(config, guidance=8.0, guidance_top=8.0), [8] * 5)
    uniform = PixelModelConfig(width=16, height=8, num_bands=6, num_frames=30, channels=(16, 32), image_channels=8,
                               guidance=3.0)
    np.testing.assert_allclose(band_guidance(uniform), [3] * 5)
    np.testing.assert_allclose(band_guidance(uniform, guidance=0.0), [0] * 5)


def test_a_lower_guidance_for_the_top_bands_reaches_the_sampler_and_survives_the_file(tmp_path):
    model = tiny_pixel_model(num_bands=6)
    model.config.guidance, model.config.guidance_top = 6.0, 1.0
    path = str(tmp_path / "pixel.safetensors")
    save_pixel_model(path, model)
    loaded = load_pixel_model(path)
    assert loaded.config.guidance_top == 1.0
    tilted = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1)
    explicit = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1, guidance=6.0, guidance_top=1.0)
    uniform = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1, guidance=6.0, guidance_top=6.0)
    np.testing.assert_array_equal(tilted.spectrum, explicit.spectrum)
    top = np.abs(tilted.spectrum[-1] - uniform.spectrum[-1]).max()
    assert top > 1e-3 * np.abs(uniform.spectrum[-1]).max()
    loaded.config.guidance_top = None
    np.testing.assert_array_equal(predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1).spectrum, uniform.spectrum)


def test_envelope_channels_are_the_standardized_band_magnitudes_and_never_reach_the_motion():
    config = PixelModelConfig(width=16, height=8, num_bands=4, num_frames=30, channels=(16, 32), image_channels=8,
                              envelope=True, envelope_mean=0.5, envelope_std=2.0)
    x = torch.randn(2, config.motion_channels, 8, 16)
    widened = with_envelope(x, config)
    assert widened.shape[1] == config.diffused_channels == 12 + 3
    torch.testing.assert_close(widened[:, :12], x)
    band_2 = x[:, 4:8]  # (Re x, Im x, Re y, Im y) of band 2
    torch.testing.assert_close(widened[:, 13], (band_2.pow(2).sum(dim=1).sqrt() - 0.5) / 2.0)
    torch.testing.assert_close(band_magnitudes(widened, 4), band_magnitudes(x, 4))
    scales = np.linspace(20, 2, 4).astype(np.float32)
    torch.testing.assert_close(stacked_to_spectrum(widened, scales, 4), stacked_to_spectrum(x, scales, 4))
    plain = PixelModelConfig(width=16, height=8, num_bands=4, num_frames=30, channels=(16, 32), image_channels=8)
    assert with_envelope(x, plain) is x


def test_a_model_with_envelope_channels_predicts_a_motion_and_keeps_them_in_its_file(tmp_path):
    torch.manual_seed(0)
    config = PixelModelConfig(width=16, height=8, num_bands=4, num_frames=30, channels=(16, 32), image_channels=8,
                              envelope=True, envelope_mean=1.3, envelope_std=1.5, guidance=4.0, guidance_top=1.0)
    net = PixelMotionNet(config)
    for parameter in net.conv_out.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    model = PixelMotionModel(net, np.linspace(20, 2, 4).astype(np.float32), config)
    path = str(tmp_path / "envelope.safetensors")
    save_pixel_model(path, model)
    loaded = load_pixel_model(path)
    assert (loaded.config.envelope, loaded.config.envelope_mean, loaded.config.envelope_std) == (True, 1.3, 1.5)
    motion = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1)
    assert motion.spectrum.shape == (4, 2, 16, 32)
    assert np.abs(motion_to_texture(motion)[0]).max() < 1e-3 * max(1.0, np.abs(motion.spectrum).max())
    assert np.abs(motion.spectrum[1:]).max() > 0


def test_a_damaged_pixel_model_file_is_one_sentence(tmp_path):
    model = tiny_pixel_model()
    path = str(tmp_path / "pixel.safetensors")
    save_pixel_model(path, model)
    data = open(path, "rb").read()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as error:
        load_pixel_model(str(broken))
    assert "\n" not in str(error.value)


# --- prediction ----------------------------------------------------------------------------------


def test_prediction_starts_at_the_photo_has_its_size_and_is_deterministic_per_seed():
    model = tiny_pixel_model()
    image = photo(3, 20, 36)
    motion = predict_pixel_motion(image, model, num_steps=4, seed=5)
    again = predict_pixel_motion(image, model, num_steps=4, seed=5)
    other_seed = predict_pixel_motion(image, model, num_steps=4, seed=6)
    assert (motion.height, motion.width) == (20, 36)
    assert np.abs(motion_to_texture(motion)[0]).max() < 1e-3
    np.testing.assert_array_equal(motion.spectrum, again.spectrum)
    assert np.abs(motion.spectrum - other_seed.spectrum).mean() > 1e-4


def test_loop_guided_prediction_runs():
    motion = predict_pixel_motion(photo(1), tiny_pixel_model(), num_steps=2, seed=0, loop=True)
    assert np.all(np.isfinite(motion.spectrum))


def test_guided_upsampling_keeps_motion_on_its_side_of_an_edge():
    """The right half of a photo is bright and moves; the dark left half is still."""
    height, width = 64, 128
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 2 + 3:] = 220  # the edge sits between two coarse pixels
    coarse = np.zeros((4, 2, 8, 16), np.complex64)
    coarse[1, 0, :, 8:] = 100.0
    motion = Motion(coarse, 30, 30.0)
    plain = np.abs(resize_motion(motion, height, width).spectrum[1, 0])
    guided = np.abs(guided_upsample(motion, image).spectrum[1, 0])
    left, right = slice(0, width // 2 + 3), slice(width // 2 + 3, width)
    assert guided[:, left].mean() < 0.6 * plain[:, left].mean()  # less leaks into the still side
    assert guided[:, right].mean() > 0.9 * plain[:, right].mean()  # the moving side keeps its motion


# --- the shipped model ---------------------------------------------------------------------------


def _example(name):
    from app.data.images import load_image

    loaded = load_image(os.path.join(EXAMPLES, name))
    return np.asarray(getattr(loaded, "pixels", loaded))


@pytest.mark.skipif(not os.path.isfile(SHIPPED), reason="no shipped motion model")
def test_the_shipped_model_predicts_different_motion_for_different_photos():
    from app.diffusion.predict import predict_motion

    model = load_motion_model(SHIPPED)
    motions = [predict_motion(_example(name), model, num_steps=10, seed=0) for name in ("willow.png", "blossom.png")]
    vectors = [resize_motion(m, 48, 80).spectrum[1:].ravel() for m in motions]
    cosine = abs(np.vdot(vectors[0], vectors[1])) / (np.linalg.norm(vectors[0]) * np.linalg.norm(vectors[1]))
    # A model that ignores its photo gives ~1 (the latent starter measured 0.9997, the first pixel
    # model 0.86, the previous weights at a uniform guidance of 4 0.75); with their own per-band
    # guidance (24 at band 1 down to 1 at band 15) the shipped weights measure 0.38 here. The product target
    # (<= 0.3 on validation clips) is not reached yet.
    assert cosine < 0.5, f"the same seed gives nearly the same motion for two photos (|cosine| {cosine:.3f})"
    for motion in motions:
        assert np.abs(motion_to_texture(motion)[0]).max() < 1e-2
