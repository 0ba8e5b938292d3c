"""The motion envelope: its target, how it rescales a sample, its place in the model file and in
prediction."""

import numpy as np
import pytest
import torch

from app.diffusion.envelope import EPS, EnvelopeConfig, EnvelopeNet, apply_envelope, band_log_power
from app.diffusion.pixel import load_pixel_model, predict_pixel_motion, save_pixel_model
from test_pixel import photo, tiny_pixel_model


def test_band_log_power_sums_the_four_parts_of_each_band():
    stacked = torch.randn(2, 12, 5, 6)  # 3 bands
    expected = np.log((stacked.numpy().reshape(2, 3, 4, 5, 6) ** 2).sum(axis=2) + EPS)
    np.testing.assert_allclose(band_log_power(stacked).numpy(), expected, rtol=1e-5)


def test_apply_envelope_sets_the_power_and_keeps_every_direction():
    bands = torch.randn(1, 3, 4, 6, 8)
    bands = bands / bands.norm(dim=2, keepdim=True)  # unit power at every pixel: the local mean is 1 too
    target = torch.rand(1, 3, 6, 8) * 4.0
    out = apply_envelope(bands.reshape(1, 12, 6, 8), torch.log(target + EPS)).reshape(1, 3, 4, 6, 8)
    np.testing.assert_allclose(out.square().sum(dim=2).numpy(), target.numpy(), rtol=1e-4, atol=1e-6)
    cosine = (out * bands).sum(dim=2) / out.norm(dim=2).clamp_min(1e-12)
    np.testing.assert_allclose(cosine.numpy(), 1.0, atol=1e-5)


def test_apply_envelope_keeps_the_samples_relative_structure_within_3x3_pixels():
    bands = torch.ones(1, 1, 4, 3, 3)
    bands[0, 0, :, 1, 1] = 2.0  # the centre moves twice as much as its neighbours
    out = apply_envelope(bands.reshape(1, 4, 3, 3), torch.zeros(1, 1, 3, 3)).reshape(1, 1, 4, 3, 3)
    power = out.square().sum(dim=2)[0, 0]
    # 4x before; the gain divides by a 3x3 mean (centre 12/9, edge 9/6), so 4 * 1.5 / (4 / 3) = 4.5
    # after: the louder pixel stays louder by about as much (a per-pixel rescale would make it 1)
    assert float(power[1, 1] / power[0, 1]) == pytest.approx(4.5, rel=1e-4)


def with_envelope(model, seed=0):
    torch.manual_seed(seed)
    model.envelope = EnvelopeNet(EnvelopeConfig(num_bands=model.config.num_bands, channels=8)).eval()
    return model


def test_a_model_file_keeps_its_envelope(tmp_path):
    model = with_envelope(tiny_pixel_model())
    path = str(tmp_path / "pixel.safetensors")
    save_pixel_model(path, model)
    loaded = load_pixel_model(path)
    assert loaded.envelope is not None
    first = predict_pixel_motion(photo(0), model, num_steps=3, seed=1)
    second = predict_pixel_motion(photo(0), loaded, num_steps=3, seed=1)
    np.testing.assert_allclose(first.spectrum, second.spectrum, atol=0.05 * np.abs(first.spectrum).max())
    save_pixel_model(path, tiny_pixel_model())
    assert load_pixel_model(path).envelope is None


def test_prediction_follows_the_envelope():
    """An envelope that says 'the left half moves, the right half is still' makes it so."""
    model = with_envelope(tiny_pixel_model())
    head = model.envelope.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(np.log(0.5))
    loud = predict_pixel_motion(photo(0), model, num_steps=3, seed=1)
    with torch.no_grad():
        head.bias.fill_(np.log(2 * EPS))
    quiet = predict_pixel_motion(photo(0), model, num_steps=3, seed=1)
    without = predict_pixel_motion(photo(0), tiny_pixel_model(), num_steps=3, seed=1)
    power = [np.square(np.abs(m.spectrum[1:])).sum() for m in (loud, quiet, without)]
    assert power[0] > 100 * power[1]
    assert not np.allclose(loud.spectrum, without.spectrum)


def test_the_mean_power_loss_is_minimal_at_the_mean_power():
    from app.train.envelope import mean_power_loss

    observed = torch.log(torch.tensor([0.1, 1.0, 4.0]) + 0.0)  # three windows of one pixel
    candidates = torch.linspace(-3, 3, 601)
    losses = [float(mean_power_loss(torch.full((3,), float(c)), observed)) for c in candidates]
    best = float(candidates[int(np.argmin(losses))].exp())
    assert best == pytest.approx(np.mean([0.1, 1.0, 4.0]), rel=0.02)  # 1.7, where an L1 of logs gives 1.0
