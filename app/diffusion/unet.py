"""The denoising U-Net over latent frequency slices, with frequency attention across the K bands.

API
    UNetConfig(channels=(64, 128, 256), blocks_per_level=2, image_channels=32, image_downsample=8,
               max_bands=16, head_channels=32, self_attention=True, dropout=0.0, latent_channels=4)
    MotionUNet(config)
        .forward(x (N, 4, h, w), t (N,), band (N,), image=None, num_bands=None, drop_image=None) -> eps (N, 4, h, w)
        .use_frequency_attention: bool            False: every slice is denoised on its own (stage 1)
        .freeze_base()                            stage 2: only the frequency attention trains
        .frequency_attention_parameters() / .base_parameters()

Inputs. N = B * K rows, example b's slices in rows b*K .. b*K + K-1 (band ids in `band`), or any
batch of independent slices (stage 1: random single slices, num_bands=None). t: training step
(0 .. T-1). image: float RGB in [0, 1] at the VAE's input size (the latent size times
image_downsample), either one per row (N, 3, H, W) or one per example (N / num_bands, 3, H, W),
which is encoded once and shared by the example's K slices. image=None is the unconditional
model; drop_image (N,) bool marks rows to treat as unconditional (classifier-free dropout in
training, the unconditional half of a batched CFG call in sampling).

Output: the model predicts the noise eps (not v); app.diffusion.sampler's DDIM matches this.

Conditioning choices. The image goes through a small learned encoder (3x3 convolutions, one
stride-2 convolution per halving, image_channels features at the latent size) whose features are
concatenated with the noisy latent at the input; unconditional rows get a learned null feature
vector instead (broadcast over space). The timestep (sinusoidal + MLP) and the band index (a
learned embedding, added to it) feed every residual block.

Architecture. Levels of residual blocks (GroupNorm, SiLU, 3x3 conv, embedding added between the
two convs), stride-2 downsampling, skip connections by concatenation, one self-attention layer
at the lowest resolution (a few hundred tokens at most). Sizes are padded (edge values repeated) to
a multiple of 2^(levels-1) and the output cropped back.

Frequency attention (stage 2). A FrequencyAttention layer follows the blocks of every level but the
first, on both sides, and the middle block: (B*K, C, h, w) -> (B, K, C, h, w) -> attention over the
K axis at each pixel, with a learned band position embedding; the output projection starts at zero,
so inserting the layers leaves a trained stage-1 network's output unchanged. They exist in every
MotionUNet (and its checkpoint); they run only when use_frequency_attention is True and num_bands
is given. Stage 2 training feeds whole examples (N = B * K, num_bands = K) with one t per example
repeated over its K slices, as in sampling, where all slices share the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from app.diffusion.settings import settings_dict, settings_from_dict
from app.diffusion.vae import group_norm


@dataclass
class UNetConfig:
    """Architecture of a MotionUNet."""

    channels: tuple = (64, 128, 256)  # width at each resolution level
    blocks_per_level: int = 2
    image_channels: int = 32          # image encoder features concatenated with the latent
    image_downsample: int = 8         # image size / latent size: the VAE's factor
    max_bands: int = 16               # band indices 0 .. max_bands-1
    head_channels: int = 32           # attention heads = channels // head_channels
    self_attention: bool = True       # spatial self-attention at the lowest resolution
    dropout: float = 0.0
    latent_channels: int = 4

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) < 1:
            raise ValueError("The U-Net needs at least one resolution level.")
        if self.image_downsample < 1 or self.image_downsample & (self.image_downsample - 1):
            raise ValueError(f"image_downsample must be a power of two; got {self.image_downsample}.")

    def to_dict(self) -> dict:
        return settings_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "UNetConfig":
        return settings_from_dict(cls, data, "U-Net")


# --- building blocks -----------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (N, dim) of timesteps t (N,), computed in float32."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]  # (N, half)
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def zero_module(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + embedding projection, GroupNorm-SiLU-dropout-conv (zero-init), + shortcut."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, out_channels)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embedding(F.silu(embedding))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


def _attention(tokens: torch.Tensor, qkv: nn.Linear, out: nn.Linear, num_heads: int) -> torch.Tensor:
    """Multi-head self-attention of tokens (S, L, C) -> (S, L, C)."""
    sequences, length, channels = tokens.shape
    q, k, v = qkv(tokens).reshape(sequences, length, 3, num_heads, channels // num_heads).permute(2, 0, 3, 1, 4)
    attended = F.scaled_dot_product_attention(q, k, v)  # (S, heads, L, C/heads)
    return out(attended.transpose(1, 2).reshape(sequences, length, channels))


class SpatialSelfAttention(nn.Module):
    """Self-attention over the h*w positions of each slice; zero-init output, residual."""

    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.num_heads = max(1, channels // head_channels)
        self.norm = group_norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (N, h*w, C)
        attended = _attention(tokens, self.qkv, self.out, self.num_heads)
        return x + attended.transpose(1, 2).reshape(n, c, h, w)


class FrequencyAttention(nn.Module):
    """Attention across the K bands of an example at each pixel; zero-init output, residual.

    (B*K, C, h, w) -> tokens (B*h*w, K, C) + band position embedding -> attention -> back.
    """

    def __init__(self, channels: int, max_bands: int, head_channels: int):
        super().__init__()
        self.num_heads = max(1, channels // head_channels)
        self.norm = nn.LayerNorm(channels)
        self.band_position = nn.Embedding(max_bands, channels)
        nn.init.normal_(self.band_position.weight, std=0.02)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = zero_module(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, band: torch.Tensor, num_bands: int) -> torch.Tensor:
        n, c, h, w = x.shape
        b = n // num_bands
        tokens = x.reshape(b, num_bands, c, h * w).permute(0, 3, 1, 2)  # (B, h*w, K, C)
        tokens = self.norm(tokens) + self.band_position(band.reshape(b, num_bands))[:, None]
        attended = _attention(tokens.reshape(b * h * w, num_bands, c), self.qkv, self.out, self.num_heads)
        attended = attended.reshape(b, h * w, num_bands, c).permute(0, 2, 3, 1).reshape(n, c, h, w)
        return x + attended


class ImageEncoder(nn.Module):
    """RGB (N, 3, H, W) in [0, 1] -> features (N, out_channels, H/f, W/f): one stride-2 conv per halving."""

    def __init__(self, out_channels: int, downsample: int, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.SiLU()]
        for _ in range(int(math.log2(downsample))):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU()]
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, out_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image * 2.0 - 1.0)


# --- the network ---------------------------------------------------------------------------------


class MotionUNet(nn.Module):
    """eps-prediction U-Net over latent slices, conditioned on the image, timestep and band index."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = config = config or UNetConfig()
        widths = config.channels
        embedding_dim = 4 * widths[0]
        self.use_frequency_attention = False

        self.time_mlp = nn.Sequential(nn.Linear(widths[0], embedding_dim), nn.SiLU(),
                                      nn.Linear(embedding_dim, embedding_dim))
        self.band_embedding = nn.Embedding(config.max_bands, embedding_dim)
        nn.init.normal_(self.band_embedding.weight, std=0.02)
        self.image_encoder = ImageEncoder(config.image_channels, config.image_downsample)
        self.null_image = nn.Parameter(torch.zeros(config.image_channels))
        self.conv_in = nn.Conv2d(config.latent_channels + config.image_channels, widths[0], 3, padding=1)

        def res(cin, cout):
            return ResBlock(cin, cout, embedding_dim, config.dropout)

        # encoder: blocks per level, skip saved after the level, then downsample
        self.down = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            stage = nn.Module()
            stage.blocks = nn.ModuleList([res(previous if i == 0 else width, width)
                                          for i in range(config.blocks_per_level)])
            last = level == len(widths) - 1
            stage.downsample = nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1)
            self.down.append(stage)
            previous = width

        # middle, at the lowest resolution
        self.mid_block1 = res(previous, previous)
        self.mid_attention = SpatialSelfAttention(previous, config.head_channels) if config.self_attention else None
        self.mid_block2 = res(previous, previous)

        # decoder: concat the level's skip, blocks, then upsample
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            stage = nn.Module()
            stage.blocks = nn.ModuleList([res(previous + width if i == 0 else width, width)
                                          for i in range(config.blocks_per_level)])
            stage.upsample = (nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                            nn.Conv2d(width, widths[level - 1], 3, padding=1))
                              if level > 0 else nn.Identity())
            self.up.append(stage)
            previous = widths[level - 1] if level > 0 else width

        self.norm_out = group_norm(previous)
        self.conv_out = zero_module(nn.Conv2d(previous, config.latent_channels, 3, padding=1))

        # stage 2: attention across bands after every level but the first, and in the middle
        self.frequency_layers = nn.ModuleDict()
        for level in range(1, len(widths)):
            self.frequency_layers[f"down{level}"] = FrequencyAttention(widths[level], config.max_bands,
                                                                       config.head_channels)
            self.frequency_layers[f"up{level}"] = FrequencyAttention(widths[level], config.max_bands,
                                                                     config.head_channels)
        self.frequency_layers["mid"] = FrequencyAttention(widths[-1], config.max_bands, config.head_channels)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.config.channels) - 1)

    # --- parameter groups for the two training stages ---

    def frequency_attention_parameters(self) -> list[nn.Parameter]:
        return list(self.frequency_layers.parameters())

    def base_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("frequency_layers.")]

    def freeze_base(self) -> None:
        """Stage 2: base frozen (requires_grad False), frequency attention on and trainable."""
        for parameter in self.base_parameters():
            parameter.requires_grad_(False)
        for parameter in self.frequency_attention_parameters():
            parameter.requires_grad_(True)
        self.use_frequency_attention = True

    # --- forward ---

    def _image_features(self, image, drop_image, rows: int, num_bands, size, reference) -> torch.Tensor:
        """Conditioning features (N, image_channels, h, w): encoded image or the null vector per row."""
        null = self.null_image.to(reference.dtype)[None, :, None, None].expand(rows, -1, *size)
        if image is None:
            return null
        features = self.image_encoder(image.to(reference.dtype))  # (N or B, C, h', w')
        if features.shape[-2:] != size:
            features = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        if features.shape[0] != rows:
            if not num_bands or features.shape[0] * num_bands != rows:
                raise ValueError(f"{image.shape[0]} images do not fit {rows} slices "
                                 f"({num_bands} bands per example).")
            features = features.repeat_interleave(num_bands, dim=0)
        if drop_image is not None:
            features = torch.where(drop_image.to(features.device).reshape(-1, 1, 1, 1), null.to(features.dtype),
                                   features)
        return features

    def forward(self, x: torch.Tensor, t: torch.Tensor, band: torch.Tensor, image: torch.Tensor | None = None,
                num_bands: int | None = None, drop_image: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise eps (N, 4, h, w) of noisy latent slices x (N, 4, h, w); see the module docstring."""
        rows, _, height, width = x.shape
        if num_bands is not None and rows % num_bands:
            raise ValueError(f"{rows} slices are not a whole number of {num_bands}-band examples.")
        if not band.is_cuda and (int(band.max()) >= self.config.max_bands or int(band.min()) < 0):
            raise ValueError(f"Band indices must lie in 0 .. {self.config.max_bands - 1}.")
        multiple = self.size_multiple
        padded_height, padded_width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        features = self._image_features(image, drop_image, rows, num_bands, (height, width), x)
        h = torch.cat([x, features.to(x.dtype)], dim=1)  # (N, 4 + C_img, h, w)
        if (padded_height, padded_width) != (height, width):
            h = F.pad(h, (0, padded_width - width, 0, padded_height - height), mode="replicate")

        embedding = self.time_mlp(timestep_embedding(t.reshape(-1).expand(rows) if t.numel() == 1 else t,
                                                     self.config.channels[0]).to(x.dtype))
        embedding = embedding + self.band_embedding(band.long()).to(embedding.dtype)  # (N, E)
        frequency = self.use_frequency_attention and num_bands is not None and num_bands > 1

        def coordinate(h, key):
            return self.frequency_layers[key](h, band, num_bands) if frequency else h

        h = self.conv_in(h)
        skips = []
        for level, stage in enumerate(self.down):
            for block in stage.blocks:
                h = block(h, embedding)
            if level > 0:
                h = coordinate(h, f"down{level}")
            skips.append(h)
            h = stage.downsample(h)

        h = self.mid_block1(h, embedding)
        if self.mid_attention is not None:
            h = self.mid_attention(h)
        h = coordinate(h, "mid")
        h = self.mid_block2(h, embedding)

        for stage, level in zip(self.up, reversed(range(len(self.down)))):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in stage.blocks:
                h = block(h, embedding)
            if level > 0:
                h = coordinate(h, f"up{level}")
            h = stage.upsample(h)

        eps = self.conv_out(F.silu(self.norm_out(h)))
        return eps[..., :height, :width]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
