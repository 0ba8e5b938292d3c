"""DDIM sampling as a plain function, and classifier-free guidance as a denoiser wrapper.

API
    ddim_sample(denoise, shape, alphas_cumprod, num_steps, generator=None, eta=0.0, callback=None,
                x_init=None, recurrence_steps=1, device="cpu", dtype=torch.float32) -> x0
        denoise(x (N, ...), t (N,) int64) -> eps (N, ...)
        callback(step, num_steps, x, x0_pred) -> bool | None; True cancels (raises SamplingCancelled)
    cfg_denoiser(model_call, guidance_weight) -> denoise
        model_call(x (M, ...), t (M,), conditional (M,) bool) -> eps: one batched call, cond and uncond rows
    SamplingCancelled                          raised by ddim_sample when the callback returns True

Denoisers predict the noise eps (app.diffusion.unet): x0_pred = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t).
Guidance (CFG, loop guidance in app.diffusion.guidance) composes around the model call; the sampler
knows nothing about it. Steps follow schedule.ddim_timesteps (any count from 1 to T).

Reproducibility: all noise (x_T, eta > 0, self-recurrence) is drawn from `generator` on its own
device (a CPU generator by default) and then moved to `device`, so one seed gives the same
starting noise on CPU and CUDA.

Self-recurrence (universal guidance, used by loop guidance): with recurrence_steps = r > 1, each
step from t to t_prev is taken r times; between takes, x_{t_prev} is noised back to t with the
forward process, x_t = sqrt(a_t / a_prev) x_{t_prev} + sqrt(1 - a_t / a_prev) z. r = 1 is plain DDIM.
The callback runs once per step, after its last take.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from app.diffusion.schedule import ddim_timesteps

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SamplingCancelled(Exception):
    """The sampling callback asked to stop."""


def draw_noise(shape, generator: torch.Generator | None, device, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device (CPU without one), moved to device."""
    source = generator.device if generator is not None else torch.device("cpu")
    noise = torch.randn(tuple(shape), generator=generator, device=source, dtype=torch.float32)
    return noise.to(device=device, dtype=dtype)


def with_preview(callback, preview, preview_every: int, to_motion):
    """A sampler callback that also calls preview(to_motion(x0_pred)) every `preview_every` steps
    and at the last (a live preview of the clean estimate), then the caller's callback (its return
    value, True to cancel, passes through)."""

    def on_step(step, total, x, x0_pred):
        if preview is not None and (step % max(1, preview_every) == 0 or step == total):
            with torch.no_grad():
                preview(to_motion(x0_pred))
        return callback(step, total, x, x0_pred) if callback is not None else None

    return on_step


def ddim_sample(denoise: Denoiser, shape, alphas_cumprod: torch.Tensor, num_steps: int,
                generator: torch.Generator | None = None, eta: float = 0.0, callback=None,
                x_init: torch.Tensor | None = None, recurrence_steps: int = 1, device="cpu",
                dtype=torch.float32) -> torch.Tensor:
    """DDIM from x_T (noise from generator, or x_init) to x_0 in num_steps steps.

    eta = 0 is deterministic DDIM, eta = 1 DDPM-like. Returns x_0 (shape, on device). Raises
    SamplingCancelled when callback(step, num_steps, x, x0_pred) returns True (step counts 1..num_steps).
    """
    if recurrence_steps < 1:
        raise ValueError(f"recurrence_steps must be at least 1; got {recurrence_steps}.")
    alphas = alphas_cumprod.detach().to("cpu", torch.float64)
    timesteps = ddim_timesteps(num_steps, len(alphas))  # (num_steps,) descending
    if x_init is not None:
        if tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init has shape {tuple(x_init.shape)}; expected {tuple(shape)}.")
        x = x_init.detach().clone()
    else:
        x = draw_noise(shape, generator, device, dtype)
    rows = x.shape[0]

    for i, t in enumerate(timesteps.tolist()):
        alpha = float(alphas[t])
        alpha_prev = float(alphas[timesteps[i + 1]]) if i + 1 < num_steps else 1.0
        sigma = eta * math.sqrt((1 - alpha_prev) / (1 - alpha) * (1 - alpha / alpha_prev))
        t_batch = torch.full((rows,), t, dtype=torch.long, device=x.device)
        for take in range(recurrence_steps):
            eps = denoise(x, t_batch).to(x.dtype)
            x0_pred = (x - math.sqrt(1 - alpha) * eps) / math.sqrt(alpha)
            x_prev = math.sqrt(alpha_prev) * x0_pred + math.sqrt(max(1 - alpha_prev - sigma ** 2, 0.0)) * eps
            if sigma > 0:
                x_prev = x_prev + sigma * draw_noise(x.shape, generator, x.device, x.dtype)
            if take + 1 < recurrence_steps:  # noise back to t and take the step again
                ratio = alpha / alpha_prev
                x = math.sqrt(ratio) * x_prev + math.sqrt(1 - ratio) * draw_noise(x.shape, generator, x.device,
                                                                                  x.dtype)
        x = x_prev
        if callback is not None and callback(i + 1, num_steps, x, x0_pred):
            raise SamplingCancelled(f"Sampling cancelled after step {i + 1} of {num_steps}.")
    return x


def cfg_denoiser(model_call, guidance_weight: float) -> Denoiser:
    """Classifier-free guidance: eps = eps_u + w (eps_c - eps_u), cond and uncond in one batched call.

    model_call(x, t, conditional) gets the batch twice, [x; x], with conditional True for the first
    half. w = 1 is the conditional model alone (one unbatched call); w = 0 the unconditional one.
    A tensor w broadcast against eps (e.g. (1, C, 1, 1)) weighs each channel on its own.
    """
    weight = guidance_weight if torch.is_tensor(guidance_weight) else float(guidance_weight)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if not torch.is_tensor(weight) and weight == 1.0:
            return model_call(x, t, torch.ones(rows, dtype=torch.bool, device=x.device))
        conditional = torch.cat([torch.ones(rows, dtype=torch.bool), torch.zeros(rows, dtype=torch.bool)])
        both = model_call(torch.cat([x, x]), torch.cat([t, t]), conditional.to(x.device))
        eps_conditional, eps_unconditional = both[:rows], both[rows:]
        return eps_unconditional + weight * (eps_conditional - eps_unconditional)

    return denoise
