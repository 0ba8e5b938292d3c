"""The slice VAE: one normalized frequency slice (4 channels) <-> a small 4-channel latent.

API
    VAEConfig(channels=(16, 32, 64, 128), downsample_factor=8, blocks_per_level=1, latent_channels=4,
              in_channels=4, scale_factor=1.0)                        plain data, stored with a model
    SliceVAE(config)
        .encode(x (B, 4, H, W)) -> (mean, logvar), each (B, 4, ceil(H/f), ceil(W/f)), unscaled
        .decode(z (B, 4, h, w), size=None) -> (B, 4, h*f, w*f), cropped to size=(H, W) when given
        .forward(x, sample_posterior=True, generator=None) -> VAEOutput(reconstruction, mean, logvar, kl)
        .encode_latents(x, sample=False, generator=None) -> mean (or a sample) * scale_factor
        .decode_latents(z, size=None) -> decode(z / scale_factor, size)
        .latent_size(height, width) -> (h, w)
    vae_loss(x, reconstruction, mean, logvar) -> {"loss", "l1", "gradient", "kl"}
    estimate_latent_scale(vae, batches) -> float     1 / std of the latent means over some data

What goes in: a slice of the normalized spectral volume (app.core.normalize), channels
(Re x, Im x, Re y, Im y) of one band k, at the model size (160 x 256 for the shipped models). All
bands share one VAE. Sizes that are not multiples of f are padded (edge values repeated) and the
decoder output cropped back when `size` is given.

The diffusion model works on `encode_latents` / `decode_latents`: latents multiplied by
`config.scale_factor`, which the VAE training script sets at the end from data
(`estimate_latent_scale`) so that the latents the U-Net sees have about unit variance.

Architecture: a convolutional encoder/decoder of GroupNorm-SiLU residual blocks, one stride-2
convolution per halving (log2 f of them) and nearest-neighbour upsampling + convolution on the way
back; no attention (motion fields are smooth; convolutions carry it). channels[i] is the width at
resolution 1/2^i; when f needs more levels than channels lists, the last width repeats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from app.diffusion.settings import settings_dict, settings_from_dict

L1_WEIGHT = 1.0
GRADIENT_WEIGHT = 0.2
KL_WEIGHT = 1e-6
GRADIENT_SCALES = 3  # full, 1/2 and 1/4 resolution


@dataclass
class VAEConfig:
    """Architecture of a SliceVAE (and its latent scale, set once the VAE is trained)."""

    channels: tuple = (16, 32, 64, 128)  # width at full, 1/2, 1/4, 1/8 resolution
    downsample_factor: int = 8  # 4 or 8
    blocks_per_level: int = 1
    latent_channels: int = 4
    in_channels: int = 4
    scale_factor: float = 1.0

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if self.downsample_factor not in (1, 2, 4, 8, 16):
            raise ValueError(f"The VAE downsampling factor must be a power of two up to 16 (4 or 8); "
                             f"got {self.downsample_factor}.")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"The VAE needs at least one positive channel width; got {self.channels}.")

    @property
    def num_levels(self) -> int:
        return int(math.log2(self.downsample_factor)) + 1

    @property
    def level_channels(self) -> tuple:
        """Width at each resolution level, the last listed width repeated as needed."""
        widths = list(self.channels[: self.num_levels])
        return tuple(widths + [self.channels[-1]] * (self.num_levels - len(widths)))

    def to_dict(self) -> dict:
        return settings_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VAEConfig":
        return settings_from_dict(cls, data, "VAE")


class VAEOutput(NamedTuple):
    reconstruction: torch.Tensor  # (B, 4, H, W)
    mean: torch.Tensor            # (B, 4, h, w), unscaled
    logvar: torch.Tensor          # (B, 4, h, w)
    kl: torch.Tensor              # scalar, mean over latent elements


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels (fewer for narrow layers)."""
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a (1x1 projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class Encoder(nn.Module):
    """(B, 4, H, W) -> (B, 2 * latent_channels, H/f, W/f): mean and logvar stacked."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = config.level_channels
        self.conv_in = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)
        self.levels = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            stage = nn.Module()
            stage.blocks = nn.ModuleList(
                [ResBlock(previous if i == 0 else width, width) for i in range(config.blocks_per_level)])
            last = level == len(widths) - 1
            stage.downsample = nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1)
            self.levels.append(stage)
            previous = width
        self.mid = nn.ModuleList([ResBlock(previous, previous), ResBlock(previous, previous)])
        self.norm_out = group_norm(previous)
        self.conv_out = nn.Conv2d(previous, 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.levels:
            for block in stage.blocks:
                h = block(h)
            h = stage.downsample(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    """(B, latent_channels, h, w) -> (B, 4, h*f, w*f)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = config.level_channels
        self.conv_in = nn.Conv2d(config.latent_channels, widths[-1], 3, padding=1)
        self.mid = nn.ModuleList([ResBlock(widths[-1], widths[-1]), ResBlock(widths[-1], widths[-1])])
        self.levels = nn.ModuleList()
        previous = widths[-1]
        for level in reversed(range(len(widths))):
            width = widths[level]
            stage = nn.Module()
            stage.blocks = nn.ModuleList(
                [ResBlock(previous if i == 0 else width, width) for i in range(config.blocks_per_level + 1)])
            stage.upsample = Upsample(width) if level > 0 else nn.Identity()
            self.levels.append(stage)
            previous = width
        self.norm_out = group_norm(previous)
        self.conv_out = nn.Conv2d(previous, config.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for stage in self.levels:
            for block in stage.blocks:
                h = block(h)
            h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class SliceVAE(nn.Module):
    """KL-regularized autoencoder of one normalized frequency slice."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    @property
    def factor(self) -> int:
        return self.config.downsample_factor

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the latent of an H x W slice."""
        return -(-height // self.factor), -(-width // self.factor)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 4, H, W) -> mean, logvar (B, 4, ceil(H/f), ceil(W/f)), before the latent scale."""
        height, width = x.shape[-2:]
        h, w = self.latent_size(height, width)
        pad_bottom, pad_right = h * self.factor - height, w * self.factor - width
        if pad_bottom or pad_right:
            x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
        moments = self.encoder(x)  # (B, 8, h, w)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(B, 4, h, w) -> (B, 4, h*f, w*f), cropped to size = (H, W) when given."""
        out = self.decoder(z)
        if size is not None:
            out = out[..., : size[0], : size[1]]
        return out

    def forward(self, x: torch.Tensor, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> VAEOutput:
        mean, logvar = self.encode(x)
        z = sample_latent(mean, logvar, generator) if sample_posterior else mean
        reconstruction = self.decode(z, size=x.shape[-2:])
        return VAEOutput(reconstruction, mean, logvar, kl_divergence(mean, logvar))

    def encode_latents(self, x: torch.Tensor, sample: bool = False,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """The diffusion model's latents of slices x: the posterior mean (or a sample) * scale_factor."""
        mean, logvar = self.encode(x)
        z = sample_latent(mean, logvar, generator) if sample else mean
        return z * self.config.scale_factor

    def decode_latents(self, z: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Slices (B, 4, H, W) of diffusion latents z (B, 4, h, w)."""
        return self.decode(z / self.config.scale_factor, size=size)


def sample_latent(mean: torch.Tensor, logvar: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """mean + std * noise; the noise is drawn on the generator's device then moved."""
    if generator is None:
        noise = torch.randn_like(mean)
    else:
        noise = torch.randn(mean.shape, generator=generator, device=generator.device, dtype=torch.float32)
        noise = noise.to(device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over latent elements (scalar)."""
    mean, logvar = mean.float(), logvar.float()
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along x and y of (B, C, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_consistency(x: torch.Tensor, reconstruction: torch.Tensor, num_scales: int = GRADIENT_SCALES):
    """Mean L1 between the spatial gradients of x and of the reconstruction, averaged over scales.

    Scale s compares both after 2^s x 2^s average pooling (skipped once a side would drop below 2).
    """
    terms = []
    for scale in range(num_scales):
        if scale > 0:
            if min(x.shape[-2:]) < 4:
                break
            x = F.avg_pool2d(x, 2, ceil_mode=True)
            reconstruction = F.avg_pool2d(reconstruction, 2, ceil_mode=True)
        x_dx, x_dy = _gradients(x)
        r_dx, r_dy = _gradients(reconstruction)
        terms.append((x_dx - r_dx).abs().mean() + (x_dy - r_dy).abs().mean())
    return torch.stack(terms).mean()


def vae_loss(x: torch.Tensor, reconstruction: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> dict:
    """L1 + 0.2 * multi-scale gradient consistency + 1e-6 * KL (the paper's weights).

    Every term is a mean per element (KL per latent element), so the weights do not depend on the
    batch or image size. Returns {"loss", "l1", "gradient", "kl"} (scalar tensors; "loss" for backward).
    """
    x, reconstruction = x.float(), reconstruction.float()
    l1 = (x - reconstruction).abs().mean()
    gradient = gradient_consistency(x, reconstruction)
    kl = kl_divergence(mean, logvar)
    loss = L1_WEIGHT * l1 + GRADIENT_WEIGHT * gradient + KL_WEIGHT * kl
    return {"loss": loss, "l1": l1.detach(), "gradient": gradient.detach(), "kl": kl.detach()}


@torch.no_grad()
def estimate_latent_scale(vae: SliceVAE, batches: Iterable[torch.Tensor]) -> float:
    """1 / std of the (unscaled) latent means of some slices (B, 4, H, W): the scale_factor to store.

    Set it with `vae.config.scale_factor = estimate_latent_scale(vae, batches)` at the end of VAE
    training; the latents the U-Net then sees have about unit variance.
    """
    total, total_square, count = 0.0, 0.0, 0
    for batch in batches:
        parameter = next(vae.parameters())
        mean, _ = vae.encode(batch.to(device=parameter.device, dtype=parameter.dtype))
        mean = mean.double()
        total += float(mean.sum())
        total_square += float(mean.square().sum())
        count += mean.numel()
    if count == 0:
        raise ValueError("Cannot estimate the latent scale from no data.")
    variance = max(total_square / count - (total / count) ** 2, 1e-12)
    return float(1.0 / math.sqrt(variance))
