"""DDPM noise schedules: alpha_bar_t over the training steps, and the DDIM sub-sequence of steps.

API
    NoiseSchedule(kind="scaled_linear", num_train_steps=1000)    plain data, travels with a model
        .alphas_cumprod() -> float64 (T,) tensor on the CPU
    make_alphas_cumprod(kind, num_train_steps) -> float64 (T,)   kinds: scaled_linear | linear | cosine
    ddim_timesteps(num_steps, num_train_steps=1000) -> int64 (num_steps,), descending from T - 1
    alpha_bar_at(alphas_cumprod, t (N,), like) -> (N, 1, 1, 1) in like's dtype and device
    add_noise(x0, noise, t (N,), alphas_cumprod) -> x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise

Kinds: "scaled_linear" is Latent Diffusion's schedule (betas linear in sqrt from 0.00085 to 0.012),
the default; "linear" is DDPM's (betas 1e-4 to 0.02); "cosine" is Nichol & Dhariwal's (s = 0.008).
The model predicts the noise eps (see app.diffusion.unet), so x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

SCHEDULE_KINDS = ("scaled_linear", "linear", "cosine")


def make_alphas_cumprod(kind: str = "scaled_linear", num_train_steps: int = 1000) -> torch.Tensor:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s) for t = 0 .. T-1: float64 (T,), decreasing."""
    if num_train_steps < 1:
        raise ValueError(f"A noise schedule needs at least one step; got {num_train_steps}.")
    if kind == "scaled_linear":
        betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, num_train_steps, dtype=np.float64) ** 2
    elif kind == "linear":
        betas = np.linspace(1e-4, 0.02, num_train_steps, dtype=np.float64)
    elif kind == "cosine":
        s = 0.008
        steps = np.arange(num_train_steps + 1, dtype=np.float64) / num_train_steps
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
    else:
        raise ValueError(f"Unknown noise schedule '{kind}': use one of {', '.join(SCHEDULE_KINDS)}.")
    return torch.from_numpy(np.cumprod(1.0 - betas))


@dataclass(frozen=True)
class NoiseSchedule:
    """Which schedule a model was trained with (stored in its metadata)."""

    kind: str = "scaled_linear"
    num_train_steps: int = 1000

    def alphas_cumprod(self) -> torch.Tensor:
        return make_alphas_cumprod(self.kind, self.num_train_steps)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NoiseSchedule":
        return cls(kind=str(data["kind"]), num_train_steps=int(data["num_train_steps"]))


def ddim_timesteps(num_steps: int, num_train_steps: int = 1000) -> torch.Tensor:
    """num_steps training steps to visit, descending, evenly spaced and always starting at T - 1.

    "Trailing" spacing: round(T - i * T / n) - 1 for i = 0 .. n-1, so 1 step is [T-1] and T steps
    visit every step. The sampler goes from each entry to the next, and from the last to t = -1
    (alpha_bar = 1, the clean sample).
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"The number of sampling steps must be between 1 and {num_train_steps}; got {num_steps}.")
    steps = np.round(np.arange(num_train_steps, 0, -num_train_steps / num_steps)).astype(np.int64) - 1
    return torch.from_numpy(steps[:num_steps].copy())


def alpha_bar_at(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar of each row's timestep, shaped (N, 1, ..., 1) to broadcast over like (N, ...)."""
    values = alphas_cumprod.to(device=t.device)[t.detach().long()]  # (N,), no host sync on CUDA
    values = values.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The forward process q(x_t | x_0): sqrt(a_t) x0 + sqrt(1 - a_t) noise, per row of t (N,)."""
    alpha_bar = alpha_bar_at(alphas_cumprod, t, x0)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
