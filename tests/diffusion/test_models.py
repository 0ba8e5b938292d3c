"""The slice VAE, the motion U-Net with frequency attention, and the model file format."""

import numpy as np
import pytest
import torch

from app.diffusion.unet import FrequencyAttention, MotionUNet, UNetConfig, count_parameters
from app.diffusion.vae import SliceVAE, VAEConfig, estimate_latent_scale, vae_loss
from app.diffusion.weights import (
    MotionModelConfig, default_motion_model, load_motion_model, load_vae, save_motion_model, save_vae,
    tiny_motion_model,
)


def tiny_unet(seed=0, **overrides):
    settings = dict(channels=(16, 32), blocks_per_level=1, image_channels=8, image_downsample=4,
                    max_bands=8, head_channels=8)
    settings.update(overrides)
    torch.manual_seed(seed)
    unet = MotionUNet(UNetConfig(**settings))
    with torch.no_grad():  # give the zero-initialized layers values so the output is not trivially zero
        for parameter in unet.base_parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.1)
    return unet.eval()


def unet_inputs(rows=8, height=10, width=16, num_bands=4, seed=0, image_factor=4):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, height, width, generator=generator)
    t = torch.randint(0, 1000, (rows,), generator=generator)
    band = torch.arange(num_bands).repeat(rows // num_bands)
    image = torch.rand(rows // num_bands, 3, height * image_factor, width * image_factor, generator=generator)
    return x, t, band, image


# --- VAE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor,size", [(4, (40, 64)), (4, (37, 53)), (8, (41, 30))])
def test_vae_shapes_pad_odd_sizes_and_crop_back(factor, size):
    vae = SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=factor))
    x = torch.randn(3, 4, *size)
    mean, logvar = vae.encode(x)
    latent = (-(-size[0] // factor), -(-size[1] // factor))
    assert mean.shape == logvar.shape == (3, 4, *latent)
    assert vae.latent_size(*size) == latent
    assert vae.decode(mean).shape == (3, 4, latent[0] * factor, latent[1] * factor)
    assert vae.decode(mean, size=size).shape == (3, 4, *size)
    output = vae(x)
    assert output.reconstruction.shape == x.shape and output.kl.ndim == 0


def test_vae_loss_terms_and_backward():
    vae = SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=4))
    x = torch.randn(2, 4, 24, 32)
    output = vae(x, generator=torch.Generator().manual_seed(0))
    losses = vae_loss(x, output.reconstruction, output.mean, output.logvar)
    assert set(losses) == {"loss", "l1", "gradient", "kl"}
    expected = losses["l1"] + 0.2 * losses["gradient"] + 1e-6 * losses["kl"]
    torch.testing.assert_close(losses["loss"].detach(), expected)
    losses["loss"].backward()
    assert all(p.grad is not None for p in vae.parameters())


def test_vae_loss_of_a_perfect_reconstruction_is_only_kl():
    x = torch.randn(2, 4, 16, 16)
    zeros = torch.zeros(2, 4, 4, 4)
    losses = vae_loss(x, x.clone(), zeros, zeros)
    assert float(losses["l1"]) == 0 and float(losses["gradient"]) == 0 and float(losses["kl"]) == 0


def test_latent_scale_gives_unit_variance_latents():
    vae = SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=4))
    batches = [torch.randn(4, 4, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    vae.config.scale_factor = estimate_latent_scale(vae, batches)
    with torch.no_grad():
        latents = torch.cat([vae.encode_latents(b) for b in batches])
    assert abs(float(latents.std()) - 1.0) < 0.02
    torch.testing.assert_close(vae.decode_latents(latents[:4]), vae.decode(vae.encode(batches[0])[0]))


# --- U-Net ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("height,width", [(10, 16), (11, 13), (5, 7)])
def test_unet_output_has_the_input_shape_for_odd_sizes(height, width):
    unet = tiny_unet()
    x, t, band, image = unet_inputs(height=height, width=width)
    with torch.no_grad():
        assert unet(x, t, band, image, num_bands=4).shape == x.shape
        assert unet(x, t, band, None).shape == x.shape  # unconditional, independent slices


def test_per_example_images_equal_per_slice_images():
    unet = tiny_unet()
    x, t, band, image = unet_inputs()
    with torch.no_grad():
        shared = unet(x, t, band, image, num_bands=4)
        per_slice = unet(x, t, band, image.repeat_interleave(4, dim=0), num_bands=4)
    torch.testing.assert_close(shared, per_slice)


def test_dropped_images_give_the_unconditional_output():
    unet = tiny_unet()
    x, t, band, image = unet_inputs()
    drop = torch.tensor([True] * 4 + [False] * 4)
    with torch.no_grad():
        mixed = unet(x, t, band, image, num_bands=4, drop_image=drop)
        unconditional = unet(x, t, band, None, num_bands=4)
        conditional = unet(x, t, band, image, num_bands=4)
    torch.testing.assert_close(mixed[:4], unconditional[:4])
    torch.testing.assert_close(mixed[4:], conditional[4:])
    assert not torch.allclose(unconditional, conditional)


def test_timestep_and_band_change_the_output():
    unet = tiny_unet()
    x, t, band, image = unet_inputs()
    with torch.no_grad():
        base = unet(x, t, band, image, num_bands=4)
        assert not torch.allclose(base, unet(x, t + 1, band, image, num_bands=4))
        assert not torch.allclose(base, unet(x, t, band.flip(0), image, num_bands=4))


def test_zero_initialized_frequency_attention_leaves_the_output_unchanged():
    unet = tiny_unet()
    x, t, band, image = unet_inputs()
    with torch.no_grad():
        unet.use_frequency_attention = False
        without = unet(x, t, band, image, num_bands=4)
        unet.use_frequency_attention = True
        with_attention = unet(x, t, band, image, num_bands=4)
    assert torch.equal(without, with_attention)


def test_frequency_attention_couples_the_bands_of_one_example_only():
    unet = tiny_unet()
    with torch.no_grad():
        for parameter in unet.frequency_attention_parameters():
            parameter.normal_(0.0, 0.2)
    x, t, band, image = unet_inputs()
    changed = x.clone()
    changed[1] += 1.0  # band 1 of example 0
    with torch.no_grad():
        for enabled in (False, True):
            unet.use_frequency_attention = enabled
            difference = (unet(changed, t, band, image, num_bands=4) - unet(x, t, band, image, num_bands=4))
            difference = difference.abs().amax(dim=(1, 2, 3))  # (8,)
            assert float(difference[1]) > 0
            assert float(difference[4:].max()) == 0  # the other example never sees it
            assert (float(difference[[0, 2, 3]].max()) > 0) == enabled


def test_frequency_attention_layer_reshapes_back():
    layer = FrequencyAttention(16, max_bands=8, head_channels=8)
    x = torch.randn(6, 16, 3, 5)
    assert torch.equal(layer(x, torch.arange(3).repeat(2), 3), x)  # zero output projection


def test_stage_two_freezes_the_base_and_trains_only_frequency_attention():
    unet = tiny_unet()
    unet.freeze_base()
    assert unet.use_frequency_attention
    assert all(not p.requires_grad for p in unet.base_parameters())
    assert all(p.requires_grad for p in unet.frequency_attention_parameters())
    assert len(unet.base_parameters()) + len(unet.frequency_attention_parameters()) == len(list(unet.parameters()))
    x, t, band, image = unet_inputs()
    unet(x, t, band, image, num_bands=4).square().mean().backward()
    assert all(p.grad is None for p in unet.base_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in unet.frequency_attention_parameters())


def test_unet_runs_under_bf16_autocast():
    unet = tiny_unet()
    unet.use_frequency_attention = True
    x, t, band, image = unet_inputs()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        eps = unet(x, t, band, image, num_bands=4)
    assert eps.shape == x.shape and torch.isfinite(eps.float()).all()


def test_default_architecture_fits_the_size_budget():
    model = default_motion_model(np.ones(16, np.float32))
    counts = model.parameter_counts()
    assert 1e6 <= counts["vae"] <= 3e6
    assert 5e6 <= counts["unet_base"] <= 15e6
    assert 2 * sum(counts.values()) < 60e6  # bytes in fp16
    assert model.latent_size == (20, 32)


# --- files ---------------------------------------------------------------------------------------


def test_motion_model_save_load_round_trip(tmp_path):
    model = tiny_motion_model(seed=3)
    model.vae.config.scale_factor = 0.731
    model.unet.use_frequency_attention = True
    path = save_motion_model(tmp_path, model, training={"steps": 12})
    assert path.endswith("motion_model.safetensors")
    loaded = load_motion_model(tmp_path)
    assert loaded.config == model.config and loaded.schedule == model.schedule
    assert loaded.vae.config == model.vae.config and loaded.unet.config == model.unet.config
    np.testing.assert_array_equal(loaded.scales, model.scales)
    assert loaded.training == {"steps": 12}
    for name, tensor in model.unet.state_dict().items():
        torch.testing.assert_close(loaded.unet.state_dict()[name], tensor, rtol=1e-3, atol=1e-4)
    x, t, band, image = unet_inputs(rows=4)
    loaded.unet.use_frequency_attention = True
    with torch.no_grad():
        torch.testing.assert_close(loaded.unet(x, t, band, image, num_bands=4),
                                   model.unet(x, t, band, image, num_bands=4), rtol=1e-2, atol=1e-2)


def test_loading_bad_files_raises_one_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="do not exist"):
        load_motion_model(tmp_path / "missing.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="damaged"):
        load_motion_model(corrupt)
    vae_file = tmp_path / "vae.safetensors"
    save_vae(vae_file, SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=4)))
    with pytest.raises(ValueError, match="holds no motion model"):
        load_motion_model(vae_file)
    truncated = tmp_path / "truncated.safetensors"
    data = open(save_motion_model(tmp_path / "good.safetensors", tiny_motion_model()), "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged"):
        load_motion_model(truncated)


def test_vae_save_load_round_trip(tmp_path):
    vae = SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=4, scale_factor=1.7))
    save_vae(tmp_path / "vae.safetensors", vae, training={"l1": 0.01})
    loaded = load_vae(tmp_path / "vae.safetensors")
    assert loaded.config == vae.config and loaded.training_info == {"l1": 0.01}
    x = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x)[0], vae.encode(x)[0], rtol=1e-2, atol=1e-2)


def test_model_config_reads_sizes_as_width_by_height():
    model = tiny_motion_model(size=(64, 40), num_bands=4)
    assert (model.width, model.height) == (64, 40)
    assert model.latent_size == (10, 16)
    assert isinstance(model.config, MotionModelConfig)
    assert count_parameters(model.vae) < 1e5
