"""The pixel-space motion prior: diffusion over the normalized spectral volume at low resolution.

Why a second kind of model. On this project's data (a few hundred windows from ~30 clips) the latent
model's slice VAE was the bottleneck (reconstruction 7-10x worse than the paper's) and its U-Net,
denoising one band at a time, learned to ignore the photo. Motion is smooth, so a low-resolution
spectral volume loses little, and a photo-guided (edge-aware) upsampling puts the motion's edges
back on the photo's edges (joint bilateral upsampling). Measured against the latent model in models/MOTION_MODEL_CARD.md.

Representation. Bands 1..K-1 of the spectrum, frequency-normalized (app.core.normalize: per-band
95th-percentile scale, sign*sqrt) and multiplied by data_scale (1 / their standard deviation over
the training set: most pixels barely move, so normalized values have a std of ~0.16, and without
it the noise drowns the signal at almost every step), stacked as channels: x (N, 4 (K-1), h, w), channel 4 (k-1) + c
for band k and part c in (Re x, Im x, Re y, Im y). Band 0 is not predicted: it follows from the
others (Frame 0 is the photo, app.core.spectral.anchor_first_frame). All bands of a pixel are
denoised together, so the convolutions coordinate the frequencies (the role the paper gives to its
attention across the K slices). With config.envelope the diffusion also runs on K-1 channels of
each band's magnitude per pixel (with_envelope): a target whose mean depends on the photo.

Network (PixelMotionNet). A U-Net (the ResBlocks of app.diffusion.unet) over x, conditioned on
  - the timestep (sinusoidal + MLP) in every block,
  - the photo at twice the model size through a small convolutional pyramid whose features are
    concatenated at the input and added at every level (a photo-free network cannot lower the loss
    much, so the photo cannot be ignored); unconditional rows (classifier-free guidance, dropout
    p = 0.1 in training) get a learned null feature at every level instead.
It predicts v = sqrt(a) eps - sqrt(1 - a) x0; eps_from_v turns that into the eps the DDIM sampler
(app.diffusion.sampler) expects, so sampling, CFG and loop guidance are shared with the latent model.

API
    PixelModelConfig(width=80, height=48, num_bands=16, num_frames=150, fps=30.0, channels=(48, 96, 192),
                     image_channels=32, schedule="cosine")
    PixelMotionNet(config).forward(x, t, image, drop_image=None) -> v
    PixelMotionModel(net, scales, config, training)  .to(device) .eval() .alphas_cumprod
    save_pixel_model(path, model) / load_pixel_model(path, device) / is_pixel_model_file(path)
    predict_pixel_motion(image uint8 (H, W, 3), model, num_steps, guidance, loop, seed, device,
                         callback, preview, preview_every, ...) -> Motion at the photo's size
    guided_upsample(motion, photo uint8) -> Motion at the photo's size, edges following the photo
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from app.diffusion.bundle import ModelGrid
from app.diffusion.schedule import NoiseSchedule, alpha_bar_at
from app.diffusion.unet import ResBlock, SpatialSelfAttention, timestep_embedding, zero_module
from app.diffusion.vae import group_norm

FORMAT_NAME = "aeolus-pixel-motion-model"
FORMAT_VERSION = 1


@dataclass
class PixelModelConfig:
    """Model grid (width x height), what it predicts, and the network's widths."""

    width: int = 80
    height: int = 48
    num_bands: int = 16
    num_frames: int = 150
    fps: float = 30.0
    channels: tuple = (48, 96, 192)
    image_channels: int = 32
    schedule: str = "cosine"
    num_train_steps: int = 1000
    data_scale: float = 1.0  # diffusion runs on normalized bands * data_scale (unit variance in training)
    guidance: float = 1.75  # classifier-free guidance weight of band 1 that sampling uses unless told otherwise
    guidance_top: float | None = None  # weight of the top band K-1 (geometric in between); None: every band `guidance`
    envelope: bool = False  # also diffuse each band's magnitude per pixel (K-1 channels; see with_envelope)
    envelope_mean: float = 0.0  # the magnitudes' mean and standard deviation over the training set (diffusion units)
    envelope_std: float = 1.0

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        multiple = 2 ** (len(self.channels) - 1)
        if not 1 <= len(self.channels) <= 5 or min(self.channels) < 8 or max(self.channels) > 2048:
            raise ValueError(f"Unusable network widths {self.channels}.")
        if self.width % multiple or self.height % multiple or not 8 <= self.width <= 1024 or not 8 <= self.height <= 1024:
            raise ValueError(f"The model grid {self.width}x{self.height} must be 8..1024 px and a multiple of {multiple}.")
        if not 2 <= self.num_bands <= self.num_frames // 2 + 1:
            raise ValueError(f"{self.num_bands} bands do not fit {self.num_frames} frames.")
        for weight in (self.guidance, self.guidance_top):
            if weight is not None and not 0 < weight <= 50:
                raise ValueError(f"A guidance weight of {weight} is out of range (0, 50].")
        if not 0 < self.envelope_std <= 1000 or not abs(self.envelope_mean) <= 1000:
            raise ValueError("The envelope statistics are out of range.")
        if not 0 < self.data_scale <= 1000 or not 0 < self.fps <= 1000 or not 8 <= self.image_channels <= 1024 or not 2 <= self.num_train_steps <= 100000:
            raise ValueError("The model settings are out of range.")

    @property
    def motion_channels(self) -> int:
        """Channels that decode to the motion: 4 per band 1..K-1."""
        return 4 * (self.num_bands - 1)

    @property
    def diffused_channels(self) -> int:
        """Channels the diffusion runs on: the motion's, then K-1 envelope channels when config.envelope."""
        return self.motion_channels + (self.num_bands - 1 if self.envelope else 0)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the photo the network sees: twice the model grid."""
        return 2 * self.width, 2 * self.height

    def to_dict(self) -> dict:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data


def band_guidance(config: PixelModelConfig, guidance: float | None = None,
                  guidance_top: float | None = None) -> np.ndarray:
    """The classifier-free guidance weight of each band 1..K-1, float64 (K-1,).

    Band 1 gets `guidance` (None: the model's own, config.guidance), the top band `guidance_top`
    (None: the model's own tilt, guidance * config.guidance_top / config.guidance), the bands in
    between a geometric interpolation. Strong guidance of the slow bands makes the motion follow
    the photo; the same weight on the fast bands makes it jitter (docs/evaluation.md, MOTION_MODEL_CARD.md).
    """
    low = config.guidance if guidance is None else float(guidance)
    if guidance_top is not None:
        high = float(guidance_top)
    elif config.guidance_top is None:
        high = low
    else:
        high = low * config.guidance_top / config.guidance
    if low < 0 or high < 0:
        raise ValueError("Guidance weights cannot be negative.")
    position = np.arange(config.num_bands - 1) / max(1, config.num_bands - 2)  # 0 at band 1, 1 at band K-1
    if low == high or low == 0 or high == 0:
        return low + (high - low) * position  # (linear where a geometric mean is undefined)
    return low * (high / low) ** position


# --- the network ---------------------------------------------------------------------------------


class ImagePyramid(nn.Module):
    """Photo (N, 3, 2h, 2w) in [0, 1] -> one feature map per U-Net level (N, C_l, h / 2^l, w / 2^l)."""

    def __init__(self, widths: tuple, image_channels: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, image_channels, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(image_channels, image_channels, 3, stride=2, padding=1), nn.SiLU(),
                                  nn.Conv2d(image_channels, image_channels, 3, padding=1), nn.SiLU())
        self.downs = nn.ModuleList([nn.Sequential(nn.Conv2d(image_channels, image_channels, 3, stride=2, padding=1),
                                                  nn.SiLU(), nn.Conv2d(image_channels, image_channels, 3, padding=1),
                                                  nn.SiLU()) for _ in widths[1:]])
        self.to_level = nn.ModuleList([nn.Conv2d(image_channels, width, 1) for width in widths])

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(image * 2.0 - 1.0)
        levels = [h]
        for down in self.downs:
            h = down(h)
            levels.append(h)
        return levels  # raw features; projected per level by to_level


class PixelMotionNet(nn.Module):
    """v-prediction U-Net over stacked normalized bands, conditioned on the photo and the timestep."""

    def __init__(self, config: PixelModelConfig):
        super().__init__()
        self.config = config
        widths, image_channels = config.channels, config.image_channels
        embedding_dim = 4 * widths[0]
        self.time_mlp = nn.Sequential(nn.Linear(widths[0], embedding_dim), nn.SiLU(),
                                      nn.Linear(embedding_dim, embedding_dim))
        self.image = ImagePyramid(widths, image_channels)
        self.null_image = nn.ParameterList([nn.Parameter(torch.zeros(image_channels)) for _ in widths])
        self.conv_in = nn.Conv2d(config.diffused_channels + image_channels + 3, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            self.down_blocks.append(nn.ModuleList([ResBlock(previous, width, embedding_dim),
                                                   ResBlock(width, width, embedding_dim)]))
            self.downsamples.append(nn.Conv2d(width, width, 3, stride=2, padding=1)
                                    if level < len(widths) - 1 else nn.Identity())
            previous = width
        self.mid1 = ResBlock(previous, previous, embedding_dim)
        self.mid_attention = SpatialSelfAttention(previous, 32)
        self.mid2 = ResBlock(previous, previous, embedding_dim)
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            self.up_blocks.append(nn.ModuleList([ResBlock(previous + width, width, embedding_dim),
                                                 ResBlock(width, width, embedding_dim)]))
            self.upsamples.append(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                                nn.Conv2d(width, widths[level - 1], 3, padding=1))
                                  if level > 0 else nn.Identity())
            previous = widths[level - 1] if level > 0 else width
        self.norm_out = group_norm(previous)
        self.conv_out = zero_module(nn.Conv2d(previous, config.diffused_channels, 3, padding=1))

    def _conditions(self, image, drop_image, rows: int, like: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Per-level photo features (null where dropped) and the photo itself at the model grid."""
        height, width = like.shape[-2:]
        raw = self.image(image.to(like.dtype))
        small = F.interpolate(image.to(like.dtype), size=(height, width), mode="area") * 2.0 - 1.0  # (N, 3, h, w)
        if drop_image is None:
            drop_image = torch.zeros(rows, dtype=torch.bool, device=like.device)
        keep = (~drop_image.to(like.device)).to(like.dtype).reshape(-1, 1, 1, 1)
        features = []
        for level, h in enumerate(raw):
            null = self.null_image[level].to(like.dtype)[None, :, None, None]
            features.append(h * keep + null * (1 - keep))
        return features, small * keep

    def forward(self, x: torch.Tensor, t: torch.Tensor, image: torch.Tensor,
                drop_image: torch.Tensor | None = None) -> torch.Tensor:
        """v (N, 4 (K-1), h, w) for noisy x (same shape), steps t (N,), photos (N, 3, 2h, 2w) in [0, 1]."""
        rows = x.shape[0]
        if image.shape[0] != rows:
            image = image.expand(rows, -1, -1, -1)
        features, small = self._conditions(image, drop_image, rows, x)
        embedding = self.time_mlp(timestep_embedding(t.reshape(-1).expand(rows) if t.numel() == 1 else t,
                                                     self.config.channels[0]).to(x.dtype))
        h = self.conv_in(torch.cat([x, features[0], small], dim=1))
        skips = []
        for level, (blocks, downsample) in enumerate(zip(self.down_blocks, self.downsamples)):
            h = blocks[0](h, embedding)
            h = h + self.image.to_level[level](features[level])
            h = blocks[1](h, embedding)
            skips.append(h)
            h = downsample(h)
        h = self.mid2(self.mid_attention(self.mid1(h, embedding)), embedding)
        for blocks, upsample in zip(self.up_blocks, self.upsamples):
            h = blocks[0](torch.cat([h, skips.pop()], dim=1), embedding)
            h = blocks[1](h, embedding)
            h = upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def eps_from_v(v: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(a) v + sqrt(1 - a) x_t, for v = sqrt(a) eps - sqrt(1 - a) x0."""
    return alpha.sqrt() * v + (1 - alpha).sqrt() * x


X0_LIMIT = 3.0  # normalized coefficients: 95% of the data lie within +-1 (sign * sqrt of |S| / p95 scale)


def eps_with_clamped_x0(v: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, limit: float = X0_LIMIT) -> torch.Tensor:
    """The eps of a v prediction whose clean estimate x0 = sqrt(a) x - sqrt(1 - a) v is clamped to +-limit.

    Near the end of the cosine schedule alpha_bar is ~1e-8, and the sampler's x0 = (x - sqrt(1 - a)
    eps) / sqrt(a) would multiply any error of eps by 1e4; computing x0 from v and clamping it to
    the range normalized data occupy keeps the first steps bounded.
    """
    x0 = (alpha.sqrt() * x - (1 - alpha).sqrt() * v).clamp(-limit, limit)
    return (x - alpha.sqrt() * x0) / (1 - alpha).sqrt().clamp_min(1e-6)


def v_target(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return alpha.sqrt() * noise - (1 - alpha).sqrt() * x0


# --- the bundle and its file ---------------------------------------------------------------------


@dataclass
class PixelMotionModel(ModelGrid):
    """A trained pixel-space prior: network, per-band scales (K,), config, training record."""

    net: PixelMotionNet
    scales: np.ndarray
    config: PixelModelConfig
    training: dict = field(default_factory=dict)

    def __post_init__(self):
        self.scales = np.asarray(self.scales, np.float32)
        if self.scales.shape != (self.config.num_bands,) or not np.all(np.isfinite(self.scales)) or np.any(self.scales <= 0):
            raise ValueError(f"Expected {self.config.num_bands} positive finite band scales.")

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return NoiseSchedule(self.config.schedule, self.config.num_train_steps).alphas_cumprod()

    @property
    def guidance(self) -> float:
        """The classifier-free guidance weight this model samples with by default."""
        return self.config.guidance

    def to(self, device) -> "PixelMotionModel":
        self.net.to(device)
        return self

    def eval(self) -> "PixelMotionModel":
        self.net.eval()
        return self

    def parameter_counts(self) -> dict:
        return {"net": sum(p.numel() for p in self.net.parameters())}


def save_pixel_model(path: str, model: PixelMotionModel) -> str:
    """Write the model as one fp16 safetensors file (atomic); returns the path."""
    from app.diffusion.weights import write_safetensors

    metadata = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION),
                "config": json.dumps(model.config.to_dict()),
                "scales": json.dumps([float(s) for s in model.scales]),
                "training": json.dumps(model.training)}
    state = {name: (tensor.detach().to("cpu", torch.float16) if tensor.is_floating_point() else tensor.detach().cpu())
             .contiguous() for name, tensor in model.net.state_dict().items()}
    return write_safetensors(path, state, metadata)


def _metadata(path: str) -> dict:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        return handle.metadata() or {}


def is_pixel_model_file(path: str) -> bool:
    """Whether a safetensors file holds a pixel-space motion model (False for anything unreadable)."""
    try:
        return _metadata(path).get("format") == FORMAT_NAME
    except Exception:  # noqa: BLE001 - any unreadable file is simply not one
        return False


def load_pixel_model(path: str, device="cpu") -> PixelMotionModel:
    """Read a pixel model file; every problem is a ValueError with one sentence naming the file."""
    from safetensors.torch import load_file

    name = os.path.basename(str(path))
    try:
        metadata = _metadata(path)
        if metadata.get("format") != FORMAT_NAME:
            raise ValueError("wrong format")
        config_data = json.loads(metadata["config"])
        config = PixelModelConfig(**config_data)
        scales = np.asarray(json.loads(metadata["scales"]), np.float32)
        training = json.loads(metadata.get("training", "{}"))
        state = load_file(path)
        net = PixelMotionNet(config)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        model = PixelMotionModel(net, scales, config, training)
    except Exception as error:  # noqa: BLE001 - one sentence for any broken file
        raise ValueError(f"'{name}' is not a usable pixel motion model ({str(error).splitlines()[0][:200]}).") from None
    return model.to(device).eval()


# --- prediction ----------------------------------------------------------------------------------


def band_magnitudes(x: torch.Tensor, num_bands: int) -> torch.Tensor:
    """|band| per pixel of stacked bands (B, 4 (K-1), h, w) -> (B, K-1, h, w): the norm of (Re x, Im x, Re y, Im y)."""
    batch, _, height, width = x.shape
    return x[:, :4 * (num_bands - 1)].reshape(batch, num_bands - 1, 4, height, width).norm(dim=2)


def with_envelope(x: torch.Tensor, config: PixelModelConfig) -> torch.Tensor:
    """Stacked bands (B, 4 (K-1), h, w) in diffusion units -> what the diffusion runs on (B, C, h, w).

    With config.envelope, K-1 channels follow the bands: each band's magnitude per pixel,
    standardized with the training set's mean and deviation. The bands' phases are random, so the
    conditional mean of the bands is ~0 whatever the photo and the denoising loss gains almost
    nothing from the photo; the magnitudes have a mean that depends on it (where and how fast things
    move), which the network must take from the photo. Sampling denoises both together and decodes
    the bands only.
    """
    if not config.envelope:
        return x
    magnitudes = band_magnitudes(x, config.num_bands)
    return torch.cat([x, (magnitudes - config.envelope_mean) / config.envelope_std], dim=1)


def stacked_to_spectrum(x: torch.Tensor, scales, num_bands: int) -> torch.Tensor:
    """Normalized stacked bands (B, 4 (K-1), h, w) -> complex spectrum (B, K, 2, h, w), band 0 zero."""
    from app.core.normalize import denormalize_spectrum_torch

    batch, _, height, width = x.shape
    bands = x[:, :4 * (num_bands - 1)].reshape(batch, num_bands - 1, 4, height, width)  # (envelope channels dropped)
    bands = torch.cat([torch.zeros_like(bands[:, :1]), bands], dim=1)  # (B, K, 4, h, w)
    return denormalize_spectrum_torch(bands, scales)


def spectrum_to_stacked(spectrum: np.ndarray, scales) -> np.ndarray:
    """Complex (K, 2, h, w) -> normalized stacked bands 1..K-1, float32 (4 (K-1), h, w)."""
    from app.core.normalize import normalize_spectrum

    normalized = normalize_spectrum(spectrum, scales)[1:]  # (K-1, 4, h, w)
    return normalized.reshape(-1, *normalized.shape[-2:])


def model_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo as float32 (height, width, 3) in [0, 1] (area resize when shrinking)."""
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected an RGB image, uint8 (H, W, 3); got {image.dtype} {image.shape}.")
    shrinking = image.shape[0] * image.shape[1] > width * height
    resized = cv2.resize(np.ascontiguousarray(image), (width, height),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized.astype(np.float32) / 255.0


def joint_bilateral_upsample(coarse: np.ndarray, guide: np.ndarray, sigma_range: float = 0.08,
                             sigma_space: float = 1.0, radius: int = 1) -> np.ndarray:
    """Upsample channels (C, h, w) to the guide's (H, W) grid, weighting coarse samples by the photo.

    Joint bilateral upsampling (Kopf et al. 2007): a fine pixel p takes the coarse samples q around
    it, weighted by a spatial Gaussian (sigma_space coarse pixels) times a range Gaussian of the
    guide's difference |I(p) - I(q)| (sigma_range, guide in [0, 1], I(q) the guide averaged over q's
    footprint): motion stays on the side of an edge whose colour it came from.
    """
    import cv2

    channels, height, width = coarse.shape
    fine_height, fine_width = guide.shape
    guide_coarse = cv2.resize(guide, (width, height), interpolation=cv2.INTER_AREA)
    ys = (np.arange(fine_height) + 0.5) * height / fine_height - 0.5  # fine centres in coarse pixels
    xs = (np.arange(fine_width) + 0.5) * width / fine_width - 0.5
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    numerator = np.zeros((channels, fine_height, fine_width), np.float32)
    denominator = np.zeros((fine_height, fine_width), np.float32)
    for dy in range(-radius, radius + 2):
        qy = np.clip(y0 + dy, 0, height - 1)
        for dx in range(-radius, radius + 2):
            qx = np.clip(x0 + dx, 0, width - 1)
            spatial = np.exp(-((ys - qy)[:, None] ** 2 + (xs - qx)[None, :] ** 2) / (2 * sigma_space ** 2))
            difference = guide - guide_coarse[qy][:, qx]
            weight = (spatial * np.exp(-difference ** 2 / (2 * sigma_range ** 2))).astype(np.float32)  # (H, W)
            numerator += coarse[:, qy][:, :, qx] * weight
            denominator += weight
    return numerator / np.maximum(denominator, 1e-12)


GUIDED_MAX_SIDE = 768  # guided upsampling runs at most at this size; larger photos get a plain resize after


def guided_upsample(motion, photo: np.ndarray):
    """Resize a low-resolution motion to the photo's size with edges that follow the photo.

    Bilinear upsampling blurs the motion across object borders (a branch's sway leaks into the sky);
    joint bilateral upsampling guided by the photo keeps it on its side of the edge. Displacements
    scale with the grid. Runs at <= GUIDED_MAX_SIDE px, then a plain resize.
    """
    import cv2

    from app.core.spectral import Motion, resize_motion

    photo_height, photo_width = photo.shape[:2]
    factor = min(1.0, GUIDED_MAX_SIDE / max(photo_height, photo_width))
    work_height, work_width = max(1, round(photo_height * factor)), max(1, round(photo_width * factor))
    if work_height <= motion.height or work_width <= motion.width:
        return resize_motion(motion, photo_height, photo_width)
    guide = cv2.resize(np.ascontiguousarray(photo), (work_width, work_height), interpolation=cv2.INTER_AREA)
    guide = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    planes = motion.spectrum.reshape(-1, motion.height, motion.width)  # (2K, h, w)
    stacked = np.concatenate([planes.real, planes.imag]).astype(np.float32)  # (4K, h, w)
    upsampled = joint_bilateral_upsample(stacked, guide)  # (4K, H, W)
    half = planes.shape[0]
    spectrum = (upsampled[:half] + 1j * upsampled[half:]).reshape(motion.num_bands, 2, work_height, work_width)
    scale = np.array([work_width / motion.width, work_height / motion.height], np.float32)[None, :, None, None]
    upsampled_motion = Motion((spectrum * scale).astype(np.complex64), motion.num_frames, motion.fps)
    return resize_motion(upsampled_motion, photo_height, photo_width)


def predict_pixel_motion(image: np.ndarray, model: PixelMotionModel, num_steps: int = 25, guidance: float | None = None,
                         loop: bool = False, seed: int = 0, device="cpu", callback=None,
                         loop_weight: float = 200.0, recurrence: int = 2, eta: float = 0.0, preview=None,
                         preview_every: int = 5, guidance_top: float | None = None):
    """Sample a spectral volume for a photo; a Motion at the photo's size (see predict_motion).
    guidance: band 1's weight, guidance_top the top band's (band_guidance; None: the model's own)."""
    from app.core.spectral import Motion
    from app.diffusion.guidance import loop_guided_denoiser
    from app.diffusion.sampler import cfg_denoiser, ddim_sample, with_preview

    photo = np.asarray(image)
    config = model.config
    pixels = model_image(photo, *config.image_size)
    model.to(device).eval()
    net = model.net
    scales = torch.as_tensor(model.scales, dtype=torch.float32, device=device)
    alphas_cumprod = model.alphas_cumprod
    image_tensor = torch.from_numpy(pixels.transpose(2, 0, 1).copy())[None].to(device)  # (1, 3, 2h, 2w)
    shape = (1, config.diffused_channels, config.height, config.width)

    def model_call(x, t, conditional):
        alpha = alpha_bar_at(alphas_cumprod, t, x)
        v = net(x, t, image_tensor.expand(x.shape[0], -1, -1, -1), drop_image=~conditional)
        return eps_with_clamped_x0(v, x, alpha, X0_LIMIT * config.data_scale)

    def decode(x):
        return stacked_to_spectrum(x / config.data_scale, scales, config.num_bands)

    weights = band_guidance(config, guidance, guidance_top)  # (K-1,)
    if np.all(weights == weights[0]):
        weight = float(weights[0])
    else:  # one weight per channel: channel 4 (k-1) + c belongs to band k, envelope channel 4 (K-1) + k - 1 too
        per_channel = np.concatenate([np.repeat(weights, 4)] + ([weights] if config.envelope else []))
        weight = torch.tensor(per_channel, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
    denoise = cfg_denoiser(model_call, weight)
    if loop:
        denoise = loop_guided_denoiser(denoise, decode, config.num_frames, alphas_cumprod, weight_u=loop_weight)

    def to_motion(x) -> Motion:
        spectrum = decode(x)[0].cpu().numpy()  # (K, 2, h, w)
        return guided_upsample(Motion(spectrum, config.num_frames, config.fps), photo)

    on_step = with_preview(callback, preview, preview_every, to_motion)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        x = ddim_sample(denoise, shape, alphas_cumprod, num_steps, generator=generator, eta=eta, callback=on_step,
                        recurrence_steps=recurrence if loop else 1, device=device)
        return to_motion(x)


def count_parameters(model: PixelMotionModel) -> int:
    return sum(p.numel() for p in model.net.parameters())

