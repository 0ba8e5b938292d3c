"""The motion envelope: how strongly every band moves at every pixel of a photo, predicted directly.

Why. Trained on this project's few hundred windows on a CPU, the pixel prior's samples have usable
phases, directions and spatial structure, but their strength is off by 10-100x per band and clip
(models/MOTION_MODEL_CARD.md: bands 1-4 of the bundled willow, a training photo, come out at
0.01-0.2x). Where a band moves, and how much, is nearly deterministic given the photo (it changes
little between windows of one clip, while the phases change completely), so a small network that
regresses it from the photo learns it from the same windows in minutes. Sampling then rescales each
band of the diffusion sample to the predicted envelope (apply_envelope): the diffusion supplies the
phase, direction and fine structure, the envelope supplies where and how strongly.

Target. For normalized stacked bands n (4 (K-1), h, w) (app.diffusion.pixel's representation) the
power of band k at pixel p is P_k(p) = sum over its 4 parts (Re x, Im x, Re y, Im y) of n^2; the
network predicts log(P_k(p) + EPS) at the model grid from the photo at twice that size.

API
    EnvelopeConfig(num_bands=16, channels=32)
    EnvelopeNet(config)(photo (N, 3, 2h, 2w) in [0, 1]) -> log power (N, K-1, h, w)
    band_log_power(stacked (N, 4 (K-1), h, w)) -> (N, K-1, h, w)
    apply_envelope(stacked, log_power) -> stacked whose band powers follow exp(log_power) - EPS
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-3  # floor of the band power in normalized units (a pixel that barely moves)


@dataclass
class EnvelopeConfig:
    num_bands: int = 16
    channels: int = 32

    def __post_init__(self):
        if not 2 <= self.num_bands <= 1000 or not 4 <= self.channels <= 512:
            raise ValueError("The envelope settings are out of range.")

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.SiLU())


class EnvelopeNet(nn.Module):
    """A small U-Net: photo (N, 3, 2h, 2w) -> log band power (N, K-1, h, w), with a global context
    vector (the whole photo's pooled features) added at the bottleneck, so the scene sets the level."""

    def __init__(self, config: EnvelopeConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.stem = nn.Sequential(_conv(3, c), _conv(c, c, stride=2))              # (c, h, w)
        self.down1 = nn.Sequential(_conv(c, 2 * c, stride=2), _conv(2 * c, 2 * c))  # (2c, h/2, w/2)
        self.down2 = nn.Sequential(_conv(2 * c, 4 * c, stride=2), _conv(4 * c, 4 * c))  # (4c, h/4, w/4)
        self.context = nn.Sequential(nn.Linear(4 * c, 4 * c), nn.SiLU(), nn.Linear(4 * c, 4 * c))
        self.up2 = _conv(4 * c + 2 * c, 2 * c)
        self.up1 = _conv(2 * c + c, c)
        self.head = nn.Conv2d(c, config.num_bands - 1, 3, padding=1)

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        level0 = self.stem(photo * 2.0 - 1.0)
        level1 = self.down1(level0)
        level2 = self.down2(level1)
        level2 = level2 + self.context(level2.mean(dim=(2, 3)))[:, :, None, None]
        h = F.interpolate(level2, size=level1.shape[-2:], mode="bilinear", align_corners=False)
        h = self.up2(torch.cat([h, level1], dim=1))
        h = F.interpolate(h, size=level0.shape[-2:], mode="bilinear", align_corners=False)
        h = self.up1(torch.cat([h, level0], dim=1))
        return self.head(h)


def band_log_power(stacked: torch.Tensor) -> torch.Tensor:
    """Normalized stacked bands (N, 4 (K-1), h, w) -> log(band power + EPS) (N, K-1, h, w)."""
    batch, channels, height, width = stacked.shape
    power = stacked.reshape(batch, channels // 4, 4, height, width).square().sum(dim=2)
    return torch.log(power + EPS)


def apply_envelope(stacked: torch.Tensor, log_power: torch.Tensor) -> torch.Tensor:
    """Rescale every band of a sample (N, 4 (K-1), h, w) to the envelope's power (N, K-1, h, w).

    The gain divides by the sample's own power averaged over 3x3 pixels, so the sample's phases,
    directions and pixel-to-pixel structure stay and only its level follows the envelope.
    """
    batch, channels, height, width = stacked.shape
    bands = stacked.reshape(batch, channels // 4, 4, height, width)
    power = bands.square().sum(dim=2)  # (N, K-1, h, w)
    local = F.avg_pool2d(power, 3, stride=1, padding=1, count_include_pad=False)
    target = (log_power.exp() - EPS).clamp_min(0.0)
    gain = (target / local.clamp_min(1e-8)).sqrt()
    return (bands * gain[:, :, None]).reshape(stacked.shape)
