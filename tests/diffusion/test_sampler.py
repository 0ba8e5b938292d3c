"""Noise schedules, DDIM, classifier-free guidance, loop self-guidance and predict_motion."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.loop import loop_seam_torch
from app.core.normalize import denormalize_spectrum_torch
from app.core.spectral import Motion
from app.diffusion.guidance import loop_guided_denoiser
from app.diffusion.predict import predict_motion
from app.diffusion.sampler import SamplingCancelled, cfg_denoiser, ddim_sample
from app.diffusion.schedule import (
    SCHEDULE_KINDS, NoiseSchedule, add_noise, alpha_bar_at, ddim_timesteps, make_alphas_cumprod,
)
from app.diffusion.weights import tiny_motion_model

ALPHAS = NoiseSchedule().alphas_cumprod()


@pytest.fixture(scope="module")
def tiny():
    return tiny_motion_model(seed=0, size=(64, 40), num_bands=4)


def tiny_model_call(model, image):
    """model_call(x, t, conditional) of the tiny model for one (1, 3, H, W) image."""
    bands = torch.arange(model.num_bands)

    def model_call(x, t, conditional):
        repeats = x.shape[0] // model.num_bands
        return model.unet(x, t, bands.repeat(repeats), image.expand(repeats, -1, -1, -1),
                          num_bands=model.num_bands, drop_image=~conditional)

    return model_call


def tiny_image(model, seed=1):
    return torch.rand(1, 3, model.height, model.width, generator=torch.Generator().manual_seed(seed))


def latent_shape(model):
    return (model.num_bands, 4, *model.latent_size)


# --- schedules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_alphas_cumprod_decrease_from_one_toward_zero(kind):
    alphas = make_alphas_cumprod(kind, 1000)
    assert alphas.shape == (1000,) and alphas.dtype == torch.float64
    assert bool((alphas[1:] < alphas[:-1]).all()) and 0.99 < float(alphas[0]) < 1 and 0 <= float(alphas[-1]) < 0.01


@settings(max_examples=40, deadline=None)
@given(num_steps=st.integers(1, 1000))
def test_ddim_timesteps_are_distinct_descending_and_start_at_the_end(num_steps):
    steps = ddim_timesteps(num_steps)
    assert steps.shape == (num_steps,) and int(steps[0]) == 999 and int(steps[-1]) >= 0
    assert bool((steps[1:] < steps[:-1]).all())


def test_thousand_steps_visit_every_training_step():
    assert torch.equal(ddim_timesteps(1000), torch.arange(999, -1, -1))
    with pytest.raises(ValueError):
        ddim_timesteps(0)


def test_add_noise_is_the_forward_process():
    x0, noise = torch.randn(3, 4, 5, 6), torch.randn(3, 4, 5, 6)
    t = torch.tensor([0, 500, 999])
    alpha = alpha_bar_at(ALPHAS, t, x0)
    torch.testing.assert_close(add_noise(x0, noise, t, ALPHAS), alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise)


# --- DDIM ----------------------------------------------------------------------------------------


def oracle_denoiser(x0):
    """The eps that a perfect model would predict for a known clean sample x0."""

    def denoise(x, t):
        alpha = alpha_bar_at(ALPHAS, t, x)
        return (x - alpha.sqrt() * x0) / (1 - alpha).sqrt()

    return denoise


@settings(max_examples=25, deadline=None)
@given(num_steps=st.integers(1, 1000), eta=st.sampled_from([0.0, 1.0]), recurrence=st.sampled_from([1, 2]))
def test_ddim_with_an_oracle_recovers_x0_for_any_step_count(num_steps, eta, recurrence):
    x0 = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(num_steps))
    sample = ddim_sample(oracle_denoiser(x0), x0.shape, ALPHAS, num_steps, torch.Generator().manual_seed(0),
                         eta=eta, recurrence_steps=recurrence)
    torch.testing.assert_close(sample, x0, rtol=0, atol=1e-4)


@pytest.mark.parametrize("num_steps", [1, 1000])
def test_ddim_with_an_oracle_recovers_x0_at_the_extreme_step_counts(num_steps):
    x0 = torch.randn(2, 4, 3, 5)
    sample = ddim_sample(oracle_denoiser(x0), x0.shape, ALPHAS, num_steps, torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample, x0, rtol=0, atol=1e-4)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_is_reproducible_per_seed_and_differs_across_seeds(tiny, eta):
    denoise = cfg_denoiser(tiny_model_call(tiny, tiny_image(tiny)), 1.75)
    with torch.no_grad():
        def sample(seed):
            return ddim_sample(denoise, latent_shape(tiny), tiny.alphas_cumprod, 4,
                               torch.Generator().manual_seed(seed), eta=eta)

        first, again, other = sample(0), sample(0), sample(1)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_x_init_replaces_the_starting_noise():
    x0 = torch.randn(1, 4, 3, 3)
    start = torch.randn(1, 4, 3, 3)
    seen = []

    def denoise(x, t):
        seen.append(x.clone())
        return oracle_denoiser(x0)(x, t)

    ddim_sample(denoise, start.shape, ALPHAS, 3, x_init=start)
    assert torch.equal(seen[0], start)


def test_callback_runs_once_per_step_and_can_cancel():
    x0 = torch.randn(1, 4, 3, 3)
    calls = []
    ddim_sample(oracle_denoiser(x0), x0.shape, ALPHAS, 7, torch.Generator().manual_seed(0),
                callback=lambda step, total, x, x0_pred: calls.append((step, total, x.shape, x0_pred.shape)),
                recurrence_steps=2)
    assert [c[0] for c in calls] == list(range(1, 8)) and all(c[1] == 7 for c in calls)
    assert all(c[2] == c[3] == x0.shape for c in calls)

    steps = []
    with pytest.raises(SamplingCancelled):
        ddim_sample(oracle_denoiser(x0), x0.shape, ALPHAS, 7, torch.Generator().manual_seed(0),
                    callback=lambda step, total, x, x0_pred: steps.append(step) or step == 3)
    assert steps == [1, 2, 3]


# --- classifier-free guidance --------------------------------------------------------------------


def test_cfg_with_weight_one_equals_the_conditional_model(tiny):
    model_call = tiny_model_call(tiny, tiny_image(tiny))
    x = torch.randn(latent_shape(tiny))
    t = torch.full((tiny.num_bands,), 600)
    everyone = torch.ones(tiny.num_bands, dtype=torch.bool)
    with torch.no_grad():
        conditional = model_call(x, t, everyone)
        unconditional = model_call(x, t, ~everyone)
        torch.testing.assert_close(cfg_denoiser(model_call, 1.0)(x, t), conditional)
        torch.testing.assert_close(cfg_denoiser(model_call, 0.0)(x, t), unconditional, rtol=1e-5, atol=1e-5)
        guided = cfg_denoiser(model_call, 1.75)(x, t)
    torch.testing.assert_close(guided, unconditional + 1.75 * (conditional - unconditional), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(conditional, unconditional)


def test_cfg_with_a_weight_per_channel_guides_each_channel_by_its_own_weight():
    def model_call(x, t, conditional):  # conditional rows: x, unconditional rows: 0
        return torch.where(conditional[:, None, None, None], x, torch.zeros_like(x))

    x = torch.randn(2, 3, 4, 4)
    weights = torch.tensor([0.0, 1.0, 5.0]).reshape(1, 3, 1, 1)
    guided = cfg_denoiser(model_call, weights)(x, torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(guided, x * weights)  # eps_u + w (eps_c - eps_u), channel by channel


def test_cfg_makes_one_batched_model_call():
    calls = []

    def model_call(x, t, conditional):
        calls.append((x.shape[0], conditional.tolist()))
        return torch.where(conditional[:, None], x, -x)

    x = torch.randn(3, 2)
    torch.testing.assert_close(cfg_denoiser(model_call, 2.0)(x, torch.zeros(3, dtype=torch.long)), 3 * x)
    assert calls == [(6, [True] * 3 + [False] * 3)]


# --- loop self-guidance --------------------------------------------------------------------------


def seams_of_samples(model, weight_u, seeds, num_steps=6):
    """Seam of the decoded spectrum of one sample per seed, with loop guidance of weight u (0: none)."""
    height, width, num_bands = model.height, model.width, model.num_bands
    scales = torch.as_tensor(model.scales)

    def decode(latents):
        normalized = model.vae.decode_latents(latents, size=(height, width))
        return denormalize_spectrum_torch(normalized.reshape(-1, num_bands, *normalized.shape[1:]), scales)

    denoise = cfg_denoiser(tiny_model_call(model, tiny_image(model)), 1.75)
    if weight_u:
        denoise = loop_guided_denoiser(denoise, decode, model.config.num_frames, model.alphas_cumprod, weight_u)
    seams = []
    with torch.no_grad():
        for seed in seeds:
            latents = ddim_sample(denoise, latent_shape(model), model.alphas_cumprod, num_steps,
                                  torch.Generator().manual_seed(seed), recurrence_steps=2)
            seams.append(float(loop_seam_torch(decode(latents), model.config.num_frames)))
    return np.array(seams)


def test_loop_guidance_lowers_the_seam_of_a_random_model(tiny):
    seeds = [0, 1]
    unguided = seams_of_samples(tiny, 0.0, seeds)
    paper_weight = seams_of_samples(tiny, 200.0, seeds)
    strong = seams_of_samples(tiny, 2e4, seeds)
    print(f"seam unguided {unguided}, u=200 {paper_weight}, u=2e4 {strong}")
    assert np.all(paper_weight < unguided)
    assert np.all(strong < 0.8 * unguided)


# --- predict_motion ------------------------------------------------------------------------------


def photo(height=53, width=71, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_predict_motion_returns_a_motion_at_the_photo_size(tiny):
    motion = predict_motion(photo(), tiny, num_steps=3, seed=0)
    assert isinstance(motion, Motion)
    assert motion.spectrum.shape == (4, 2, 53, 71) and motion.spectrum.dtype == np.complex64
    assert motion.num_frames == tiny.config.num_frames and motion.fps == tiny.config.fps
    assert np.all(np.isfinite(motion.spectrum)) and np.abs(motion.spectrum).max() > 0


def test_predict_motion_is_deterministic_per_seed(tiny):
    first = predict_motion(photo(), tiny, num_steps=2, seed=5)
    again = predict_motion(photo(), tiny, num_steps=2, seed=5)
    other = predict_motion(photo(), tiny, num_steps=2, seed=6)
    np.testing.assert_array_equal(first.spectrum, again.spectrum)
    assert not np.allclose(first.spectrum, other.spectrum)


def test_predict_motion_with_loop_guidance_runs(tiny):
    motion = predict_motion(photo(40, 64), tiny, num_steps=2, seed=0, loop=True, recurrence=2)
    assert motion.spectrum.shape == (4, 2, 40, 64) and np.all(np.isfinite(motion.spectrum))


def test_predict_motion_cancels_through_the_callback(tiny):
    steps = []
    with pytest.raises(SamplingCancelled):
        predict_motion(photo(), tiny, num_steps=5, callback=lambda step, total, x, x0: steps.append(step) or step == 2)
    assert steps == [1, 2]


def test_predict_motion_rejects_a_non_rgb_image(tiny):
    with pytest.raises(ValueError, match="RGB"):
        predict_motion(np.zeros((10, 10), np.uint8), tiny, num_steps=1)


def test_predict_motion_previews_every_few_steps_and_ends_on_the_result():
    import numpy as np

    from app.diffusion.predict import predict_motion
    from app.diffusion.weights import tiny_motion_model

    model = tiny_motion_model(seed=0, num_bands=4)
    image = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    previews = []
    motion = predict_motion(image, model, num_steps=6, guidance=1.0, seed=1, preview=previews.append,
                            preview_every=3)
    assert len(previews) == 2 and (previews[0].height, previews[0].width) == (30, 50)
    np.testing.assert_allclose(previews[-1].spectrum, motion.spectrum)
