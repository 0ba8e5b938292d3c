"""The learned frame renderer (Generative Image Dynamics, Sec. 4): encode, softmax-splat, decode.

    image (B, 3, H, W) --encoder--> features at full, 1/2 and 1/4 resolution (32, 48, 64 channels)
    each scale's features (plus the RGB at full resolution) are softmax-splatted by the flow,
        resized to that scale and multiplied by the scale factor, with importance alpha * W(p)
        resized to the scale (W(p) = mean_t |F_t(p)|, alpha a learned scalar);
    a U-Net-like decoder goes coarse to fine over the splatted features and the hole masks, and
    outputs a correction added to the classical frame (the splatted RGB with its holes filled
    by pull-push). The last layer starts at zero, so an untrained network renders exactly what
    softmax splatting + hole filling renders, and training only has to learn the difference:
    sharper occlusion boundaries, disocclusions filled from context.

The networks are trained from scratch (no pretrained features); see app/train/renderer.py.
`render` encodes a photo once and renders N frames in one batch (what app/render/frames.py calls);
`forward` renders one frame per training example. Sizes that are not multiples of 4 are padded
(edge pixels repeated) and the output cropped back.

Weights travel as safetensors (fp16 on disk) with the architecture and alpha in the metadata:
`save_renderer` / `load_renderer`.
"""

from __future__ import annotations

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from app.render.splat import fill_holes, splat

FORMAT_NAME = "aeolus-learned-renderer"
FORMAT_VERSION = 1
DEFAULT_CONFIG = {"channels": [32, 48, 64], "alpha": 1.0}
SIZE_MULTIPLE = 4  # two halvings


# --- building blocks -----------------------------------------------------------------------------


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))): two 3x3 convolutions, same channels, no normalization."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Encoder(nn.Module):
    """RGB (B, 3, H, W) -> features [(B, c0, H, W), (B, c1, H/2, W/2), (B, c2, H/4, W/4)]."""

    def __init__(self, channels: list[int]):
        super().__init__()
        c0, c1, c2 = channels
        self.stage0 = nn.Sequential(conv3x3(3, c0), ResidualBlock(c0))
        self.stage1 = nn.Sequential(conv3x3(c0, c1, stride=2), ResidualBlock(c1))
        self.stage2 = nn.Sequential(conv3x3(c1, c2, stride=2), ResidualBlock(c2))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        feature0 = self.stage0(image * 2 - 1)
        feature1 = self.stage1(feature0)
        feature2 = self.stage2(feature1)
        return [feature0, feature1, feature2]


class Decoder(nn.Module):
    """Splatted features and hole masks, coarse to fine -> RGB correction (B, 3, H, W).

    Inputs per scale: 1/4: features (c2) + holes; 1/2: features (c1) + holes + upsampled coarser
    output; full: splatted RGB (3) + filled RGB (3) + features (c0) + holes + upsampled coarser output.
    """

    def __init__(self, channels: list[int]):
        super().__init__()
        c0, c1, c2 = channels
        self.coarse = nn.Sequential(conv3x3(c2 + 1, c2), ResidualBlock(c2))
        self.middle = nn.Sequential(conv3x3(c1 + 1 + c2, c1), ResidualBlock(c1))
        self.fine = nn.Sequential(conv3x3(3 + 3 + c0 + 1 + c1, c0), ResidualBlock(c0))
        self.to_rgb = conv3x3(c0, 3)
        nn.init.zeros_(self.to_rgb.weight)  # untrained: output = the filled splat
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, splatted: list[torch.Tensor], holes: list[torch.Tensor],
                splatted_rgb: torch.Tensor, filled_rgb: torch.Tensor) -> torch.Tensor:
        x = self.coarse(torch.cat([splatted[2], holes[2]], dim=1))  # (N, c2, H/4, W/4)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.middle(torch.cat([splatted[1], holes[1], x], dim=1))  # (N, c1, H/2, W/2)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.fine(torch.cat([splatted_rgb, filled_rgb, splatted[0], holes[0], x], dim=1))  # (N, c0, H, W)
        return self.to_rgb(F.relu(x))


# --- the renderer --------------------------------------------------------------------------------


def _pad_to_multiple(tensor: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom and right, repeating edge pixels, to multiples of `multiple`."""
    height, width = tensor.shape[2:]
    pad_bottom, pad_right = -height % multiple, -width % multiple
    if pad_bottom == 0 and pad_right == 0:
        return tensor
    return F.pad(tensor, (0, pad_right, 0, pad_bottom), mode="replicate")


def _downscale_flow(flow: torch.Tensor, factor: int) -> torch.Tensor:
    """Flow (N, 2, H, W) pixels -> (N, 2, H/f, W/f) in pixels of the smaller grid (mean, then / f)."""
    return F.avg_pool2d(flow, factor) / factor if factor > 1 else flow


def _downscale_map(values: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/f, W/f) by block means."""
    return F.avg_pool2d(values, factor) if factor > 1 else values


class LearnedRenderer(nn.Module):
    """Feature-pyramid encoder + softmax splatting per scale + synthesis decoder.

    config: {"channels": [c0, c1, c2], "alpha": initial importance scale}. alpha is learned.
    """

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        channels = list(self.config["channels"])
        if len(channels) != 3:
            raise ValueError(f"The renderer needs 3 channel counts (full, 1/2, 1/4); got {channels}.")
        self.encoder = Encoder(channels)
        self.decoder = Decoder(channels)
        self.alpha = nn.Parameter(torch.tensor(float(self.config["alpha"])))

    # One shared path for training and rendering: features of 1 or N images, N flows.
    def _synthesize(self, image: torch.Tensor, features: list[torch.Tensor], flow: torch.Tensor,
                    weight: torch.Tensor) -> torch.Tensor:
        """image (1 or N, 3, H, W), its features, flow (N, 2, H, W), weight (1 or N, 1, H, W); padded sizes."""
        importance = self.alpha.float() * weight.float()  # (1 or N, 1, H, W)
        splatted, holes = [], []
        for level, feature in enumerate(features):
            factor = 2 ** level
            source = torch.cat([image, feature.float()], dim=1) if level == 0 else feature.float()
            level_flow = _downscale_flow(flow.float(), factor)
            level_importance = _downscale_map(importance, factor)
            moved, level_holes = splat(source, level_flow, mode="softmax", importance=level_importance,
                                       return_holes=True)
            splatted.append(moved)
            holes.append(level_holes.to(moved.dtype))
        splatted_rgb = splatted[0][:, :3]  # (N, 3, H, W)
        splatted[0] = splatted[0][:, 3:]
        # fill_holes is inference code (not differentiable): fill the holes without gradient.
        hole_mask = holes[0] > 0.5
        filled_rgb = torch.where(hole_mask, fill_holes(splatted_rgb.detach(), hole_mask), splatted_rgb)
        correction = self.decoder(splatted, holes, splatted_rgb, filled_rgb)
        return (filled_rgb + correction.float()).clamp(0, 1)

    def forward(self, image0: torch.Tensor, flow: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """image0 (B, 3, H, W) [0, 1], flow (B, 2, H, W) pixels, weight W(p) (B, 1, H, W) -> (B, 3, H, W)."""
        height, width = image0.shape[2:]
        image0, flow, weight = (_pad_to_multiple(x) for x in (image0, flow, weight))
        features = self.encoder(image0)
        frames = self._synthesize(image0, features, flow, weight)
        return frames[:, :, :height, :width]

    @torch.no_grad()
    def render(self, image: torch.Tensor, displacements: torch.Tensor,
               importance: torch.Tensor | None = None) -> torch.Tensor:
        """image (1, 3, H, W) [0, 1], displacements (N, 2, H, W), importance (1, 1, H, W) -> (N, 3, H, W).

        The photo is encoded once; all N frames are splatted and decoded in one batch. importance
        is W(p) (app/render/frames.py passes alpha * W with its own alpha, 1 by default); the
        network multiplies it by its learned alpha. None: every pixel weighs the same.
        """
        if image.dim() == 3:
            image = image[None]
        height, width = image.shape[2:]
        displacements = displacements.to(device=image.device, dtype=torch.float32)
        if importance is None:
            importance = torch.zeros_like(image[:, :1])
        importance = importance.to(device=image.device, dtype=torch.float32)
        image, displacements, importance = (_pad_to_multiple(x) for x in (image, displacements, importance))
        features = self.encoder(image)  # batch 1, shared by every frame
        frames = self._synthesize(image, features, displacements, importance)
        return frames[:, :, :height, :width]


# --- weights on disk -----------------------------------------------------------------------------


def save_renderer(path: str | os.PathLike, model: LearnedRenderer, meta: dict | None = None) -> None:
    """Write the model as safetensors: fp16 weights, metadata with the config, alpha and `meta`."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().to("cpu", torch.float16).contiguous()
             for name, tensor in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "version": str(FORMAT_VERSION),
        "config": json.dumps(model.config),
        "alpha": repr(float(model.alpha.detach())),  # exact, the fp16 tensor is rounded
        "training": json.dumps(meta or {}),
    }
    from app.atomic import atomic_path

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, suffix=".safetensors") as temp_path:
        save_file(state, temp_path, metadata=metadata)


def read_renderer_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a renderer file: format, config (dict), alpha (float), training (dict)."""
    from safetensors import safe_open

    path = str(path)
    if not os.path.isfile(path):
        raise ValueError(f"The renderer weights '{path}' do not exist.")
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
    except Exception:
        raise ValueError(f"The renderer weights '{path}' are damaged or not a safetensors file.") from None
    if metadata.get("format") != FORMAT_NAME:
        raise ValueError(f"'{path}' holds no learned renderer (it is some other safetensors file).")
    try:
        return {"format": metadata["format"], "version": int(metadata.get("version", 1)),
                "config": json.loads(metadata["config"]), "alpha": float(metadata["alpha"]),
                "training": json.loads(metadata.get("training", "{}"))}
    except (KeyError, ValueError):
        raise ValueError(f"The renderer weights '{path}' have damaged metadata.") from None


def load_renderer(path: str | os.PathLike, device: str | torch.device = "cpu") -> LearnedRenderer:
    """Read a renderer saved by save_renderer; float32 on `device`, in eval mode.

    Raises ValueError with one sentence when the file is missing, damaged or of another kind.
    """
    from safetensors.torch import load_file

    metadata = read_renderer_metadata(path)
    try:
        state = load_file(str(path), device="cpu")
    except Exception:
        raise ValueError(f"The renderer weights '{path}' are damaged or not a safetensors file.") from None
    model = LearnedRenderer(metadata["config"])
    state = {name: tensor.float() for name, tensor in state.items()}
    state["alpha"] = torch.tensor(metadata["alpha"])
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise ValueError(f"The renderer weights '{path}' do not fit the architecture in its metadata.") from None
    model.training_info = metadata["training"]
    return model.to(device).eval()
