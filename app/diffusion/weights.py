"""The motion model bundle (VAE + U-Net + normalization scales + schedule) and its file format.

API
    MotionModelConfig(width=256, height=160, num_bands=16, num_frames=150, fps=30.0)
    MotionModel(vae, unet, scales (K,), config, schedule=NoiseSchedule(), training={})
        .alphas_cumprod, .num_bands, .width, .height, .latent_size, .to(device), .eval(), .parameter_counts()
    save_motion_model(path, model, training=None) -> str    path: a .safetensors file, or a folder
        (which gets motion_model.safetensors); returns the file written
    load_motion_model(path, device="cpu") -> MotionModel   float32, eval mode
    save_vae(path, vae, training=None) / load_vae(path, device="cpu") -> SliceVAE   (stage "vae" output)
    tiny_motion_model(seed=0, size=(64, 40), num_bands=4) -> MotionModel   random weights, for tests
    default_motion_model(scales, config=None, seed=0) -> MotionModel   untrained, the shipped architecture:
        VAEConfig() and UNetConfig() defaults (256 x 160 slices, f = 8, 20 x 32 latents; VAE 2.6 M,
        U-Net 10.8 M + 0.9 M frequency attention parameters: about 29 MB in fp16)

Why f = 8: one CFG step of the default U-Net over 16 slices costs ~2.8 s at 20 x 32 latents on
2 CPU cores, against ~11 s at 40 x 64 (f = 4); pick f = 4 (VAEConfig(downsample_factor=4,
channels=(32, 64, 128)) with UNetConfig(image_downsample=4)) if the f = 8 VAE reconstructs too coarsely.

Sizes are (width, height) like the dataset's 256 x 160; tensors are (..., height, width).

File: one safetensors file, tensors "vae.*" and "unet.*" (the U-Net's frequency attention included),
each stored fp16 when it converts to finite fp16 values, else fp32. The metadata holds JSON:
format, version, model (MotionModelConfig), vae (VAEConfig with its latent scale), unet
(UNetConfig), schedule, scales (exact floats) and training (free-form: data, command, steps, metrics).
Every problem reading a file is a ValueError with one sentence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from app.diffusion.bundle import ModelGrid
from app.diffusion.schedule import SCHEDULE_KINDS, NoiseSchedule
from app.diffusion.settings import settings_dict, settings_from_dict
from app.diffusion.unet import MotionUNet, UNetConfig, count_parameters
from app.diffusion.vae import SliceVAE, VAEConfig

FORMAT_NAME = "aeolus-motion-model"
VAE_FORMAT_NAME = "aeolus-slice-vae"
FORMAT_VERSION = 1
WEIGHTS_NAME = "motion_model.safetensors"



@dataclass
class MotionModelConfig:
    """What the model sees and predicts: a width x height image -> num_bands bands of a num_frames loop."""

    width: int = 256
    height: int = 160
    num_bands: int = 16
    num_frames: int = 150
    fps: float = 30.0

    def to_dict(self) -> dict:
        return settings_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MotionModelConfig":
        return settings_from_dict(cls, data, "model")


PAPER_GUIDANCE = 1.75


@dataclass
class MotionModel(ModelGrid):
    """Everything predict_motion needs: the networks, the per-band scales and the schedule."""

    vae: SliceVAE
    unet: MotionUNet
    scales: np.ndarray  # (K,) float32: normalization scale of each band
    config: MotionModelConfig = field(default_factory=MotionModelConfig)
    schedule: NoiseSchedule = field(default_factory=NoiseSchedule)
    training: dict = field(default_factory=dict)

    def __post_init__(self):
        self.scales = np.asarray(self.scales, np.float32).reshape(-1)
        if self.scales.shape[0] != self.config.num_bands:
            raise ValueError(f"The model has {self.config.num_bands} bands but {self.scales.shape[0]} scales.")
        if self.config.num_bands > self.unet.config.max_bands:
            raise ValueError(f"The U-Net knows {self.unet.config.max_bands} bands; the model needs "
                             f"{self.config.num_bands}.")

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.schedule.alphas_cumprod()

    @property
    def guidance(self) -> float:
        """The classifier-free guidance weight this model samples with by default (the paper's)."""
        return PAPER_GUIDANCE

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of one latent slice."""
        return self.vae.latent_size(self.height, self.width)

    def to(self, device) -> "MotionModel":
        self.vae.to(device)
        self.unet.to(device)
        return self

    def eval(self) -> "MotionModel":
        self.vae.eval()
        self.unet.eval()
        return self

    def parameter_counts(self) -> dict:
        return {"vae": count_parameters(self.vae),
                "unet_base": sum(p.numel() for p in self.unet.base_parameters()),
                "frequency_attention": sum(p.numel() for p in self.unet.frequency_attention_parameters())}


# --- files ---------------------------------------------------------------------------------------


def _disk_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """fp16 copy where every value stays finite in fp16, else fp32 (floats only; others untouched)."""
    tensor = tensor.detach().to("cpu").contiguous()
    if not tensor.is_floating_point():
        return tensor
    half = tensor.to(torch.float16)
    return half if bool(torch.isfinite(half).all()) else tensor.to(torch.float32)


def write_safetensors(path, state: dict, metadata: dict) -> str:
    """Write tensors and their metadata (str -> str) as one safetensors file, atomically
    (app.atomic: a temporary file beside it, then a rename); returns the path."""
    from safetensors.torch import save

    from app.atomic import atomic_write

    data = save(state, metadata=metadata)
    return atomic_write(path, lambda file: file.write(data), suffix=".safetensors")


def _read(path: str, format_name: str, what: str) -> tuple[dict, dict]:
    """(metadata, {tensor name: shape}) of a file of the given format, without reading any tensor;
    ValueError on any problem."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise ValueError(f"The {what} weights '{path}' do not exist.")
    try:
        with safe_open(path, framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            shapes = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except Exception:
        raise ValueError(f"The {what} weights '{path}' are damaged or not a safetensors file.") from None
    if metadata.get("format") != format_name:
        raise ValueError(f"'{path}' holds no {what} (it is some other safetensors file).")
    return metadata, shapes


def _read_tensors(path: str, what: str) -> dict:
    """Every tensor of a checked file, floating ones as float32; ValueError when the data is damaged
    or not finite."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as file:
            state = {name: file.get_tensor(name) for name in file.keys()}
    except Exception:
        raise ValueError(f"The {what} weights '{path}' are damaged or truncated.") from None
    state = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    if not all(bool(torch.isfinite(tensor).all()) for tensor in state.values() if tensor.is_floating_point()):
        raise ValueError(f"The {what} weights '{path}' contain non-finite values (NaN or infinity).")
    return state


# --- checking a file's metadata before building anything ------------------------------------------

# Whole-number settings and the ranges a real model stays within (section -> key -> (low, high)).
INT_RANGES = {
    "model": {"width": (8, 4096), "height": (8, 4096), "num_bands": (1, 128), "num_frames": (2, 3600)},
    "vae": {"downsample_factor": (1, 16), "blocks_per_level": (0, 16), "latent_channels": (1, 64),
            "in_channels": (1, 64)},
    "unet": {"blocks_per_level": (1, 16), "image_channels": (1, 1024), "image_downsample": (1, 64),
             "max_bands": (1, 128), "head_channels": (1, 4096), "latent_channels": (1, 64)},
    "schedule": {"num_train_steps": (1, 100_000)},
}
FLOAT_RANGES = {"model": {"fps": (1.0, 240.0)}, "vae": {"scale_factor": (1e-6, 1e6)},
                "unet": {"dropout": (0.0, 0.99)}}
CHANNEL_RANGE, MAX_LEVELS = (1, 4096), 8


def _section(metadata: dict, section: str, path: str, what: str) -> dict:
    """One JSON section of the metadata, every known setting checked against its range."""
    def bad(detail: str) -> ValueError:
        return ValueError(f"The {what} weights '{path}' have invalid metadata ({section}: {detail}).")

    try:
        data = json.loads(metadata[section])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"The {what} weights '{path}' have damaged or missing metadata ({section}).") from None
    if not isinstance(data, dict):
        raise bad("not a table of settings")
    for key, (low, high) in INT_RANGES.get(section, {}).items():
        value = data.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(f"{key} = {value!r}, expected a whole number from {low} to {high}")
    for key, (low, high) in FLOAT_RANGES.get(section, {}).items():
        value = data.get(key, low)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
            raise bad(f"{key} = {value!r}, expected a number from {low:g} to {high:g}")
    channels = data.get("channels", [CHANNEL_RANGE[0]])
    if (not isinstance(channels, list) or not 1 <= len(channels) <= MAX_LEVELS
            or not all(isinstance(c, int) and not isinstance(c, bool)
                       and CHANNEL_RANGE[0] <= c <= CHANNEL_RANGE[1] for c in channels)):
        raise bad(f"channels = {channels!r}, expected 1 to {MAX_LEVELS} widths from {CHANNEL_RANGE[0]} "
                  f"to {CHANNEL_RANGE[1]}")
    if section == "schedule" and data.get("kind") not in SCHEDULE_KINDS:
        raise bad(f"kind = {data.get('kind')!r}, expected one of {', '.join(SCHEDULE_KINDS)}")
    if section == "model" and data.get("num_bands", 1) > data.get("num_frames", 2) // 2 + 1:
        raise bad("more bands than the loop's frames allow")
    return data


def _check_shapes(build, shapes: dict, prefix: str, path: str, what: str) -> None:
    """Build the module on the meta device (no memory) and compare its tensors with the file's."""
    try:
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in build().state_dict().items()}
    except (ValueError, TypeError, ZeroDivisionError, RuntimeError) as error:
        raise ValueError(f"The {what} weights '{path}' have metadata that builds no model ({error}).") from None
    found = {name[len(prefix):]: shape for name, shape in shapes.items() if name.startswith(prefix)}
    if found != expected:
        raise ValueError(f"The {what} weights '{path}' do not fit the architecture in their metadata.")


def _load_state(module: torch.nn.Module, state: dict, path: str, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ValueError(f"The {what} weights '{path}' do not fit the architecture in their metadata.") from None


def _resolve(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        return os.path.join(path, WEIGHTS_NAME)
    return path


def save_motion_model(path, model: MotionModel, training: dict | None = None) -> str:
    """Write the bundle; path is a .safetensors file or a folder. Returns the file written."""
    path = _resolve(path)
    state = {f"vae.{name}": _disk_tensor(t) for name, t in model.vae.state_dict().items()}
    state.update({f"unet.{name}": _disk_tensor(t) for name, t in model.unet.state_dict().items()})
    metadata = {
        "format": FORMAT_NAME,
        "version": str(FORMAT_VERSION),
        "model": json.dumps(model.config.to_dict()),
        "vae": json.dumps(model.vae.config.to_dict()),
        "unet": json.dumps(model.unet.config.to_dict()),
        "schedule": json.dumps(model.schedule.to_dict()),
        "scales": json.dumps([float(s) for s in model.scales]),
        "training": json.dumps(training if training is not None else model.training),
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return write_safetensors(path, state, metadata)


def load_motion_model(path, device="cpu"):
    """Read a motion model file: a latent bundle written by save_motion_model (a file, or a folder
    holding motion_model.safetensors), or a pixel-space model (app.diffusion.pixel), by its format."""
    from app.diffusion.pixel import is_pixel_model_file, load_pixel_model

    path = _resolve(path)
    if is_pixel_model_file(path):
        return load_pixel_model(path, device)
    # The metadata is checked against sane ranges, and the tensors' shapes against the architecture
    # it describes, before any module is built or any tensor read.
    what = "motion model"
    metadata, shapes = _read(path, FORMAT_NAME, what)
    sections = {name: _section(metadata, name, path, what) for name in ("model", "vae", "unet", "schedule")}
    try:
        config = MotionModelConfig.from_dict(sections["model"])
        vae_config = VAEConfig.from_dict(sections["vae"])
        unet_config = UNetConfig.from_dict(sections["unet"])
        schedule = NoiseSchedule.from_dict(sections["schedule"])
        scales = np.asarray(json.loads(metadata["scales"]), np.float32)
        training = json.loads(metadata.get("training", "{}"))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"The {what} weights '{path}' have damaged or unknown metadata.") from None
    if scales.shape != (config.num_bands,) or not np.all(np.isfinite(scales)) or not np.all(scales > 0):
        raise ValueError(f"The {what} weights '{path}' have invalid band scales.")
    _check_shapes(lambda: SliceVAE(vae_config), shapes, "vae.", path, what)
    _check_shapes(lambda: MotionUNet(unet_config), shapes, "unet.", path, what)
    state = _read_tensors(path, what)
    try:
        vae, unet = SliceVAE(vae_config), MotionUNet(unet_config)
        model = MotionModel(vae, unet, scales, config, schedule, training)
    except (TypeError, ValueError) as error:
        raise ValueError(f"The {what} weights '{path}' have inconsistent metadata ({error}).") from None
    _load_state(vae, {k[4:]: v for k, v in state.items() if k.startswith("vae.")}, path, what)
    _load_state(unet, {k[5:]: v for k, v in state.items() if k.startswith("unet.")}, path, what)
    return model.to(device).eval()


def save_vae(path, vae: SliceVAE, training: dict | None = None) -> None:
    """Write a VAE alone (the output of VAE training), fp16 where it holds."""
    state = {name: _disk_tensor(t) for name, t in vae.state_dict().items()}
    metadata = {"format": VAE_FORMAT_NAME, "version": str(FORMAT_VERSION),
                "vae": json.dumps(vae.config.to_dict()), "training": json.dumps(training or {})}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_safetensors(path, state, metadata)


def load_vae(path, device="cpu") -> SliceVAE:
    """Read a VAE written by save_vae; float32 on device, eval mode."""
    path = os.fspath(path)
    metadata, shapes = _read(path, VAE_FORMAT_NAME, "VAE")
    try:
        vae_config = VAEConfig.from_dict(_section(metadata, "vae", path, "VAE"))
        training_info = json.loads(metadata.get("training", "{}"))
    except (KeyError, TypeError):
        raise ValueError(f"The VAE weights '{path}' have damaged or unknown metadata.") from None
    _check_shapes(lambda: SliceVAE(vae_config), {f"vae.{k}": v for k, v in shapes.items()}, "vae.", path, "VAE")
    state = _read_tensors(path, "VAE")
    vae = SliceVAE(vae_config)
    vae.training_info = training_info
    _load_state(vae, state, path, "VAE")
    return vae.to(device).eval()


def default_motion_model(scales, config: MotionModelConfig | None = None, seed: int = 0,
                         vae: SliceVAE | None = None) -> MotionModel:
    """An untrained model of the shipped architecture (or around a trained `vae`), deterministic per seed."""
    config = config or MotionModelConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = vae if vae is not None else SliceVAE(VAEConfig())
        unet = MotionUNet(UNetConfig(image_downsample=vae.config.downsample_factor,
                                     max_bands=max(16, config.num_bands)))
    return MotionModel(vae, unet, scales, config, NoiseSchedule())


# --- a tiny random model for tests ---------------------------------------------------------------


def tiny_motion_model(seed: int = 0, size: tuple[int, int] = (64, 40), num_bands: int = 4,
                      num_frames: int = 150, fps: float = 30.0) -> MotionModel:
    """A small randomly initialized model (size = (width, height)); deterministic per seed.

    The layers that normally start at zero (residual branches, output convolutions, the null image)
    get small random values so that the network's output depends on all of its inputs; the frequency
    attention keeps its zero output projection (inserting it changes nothing, as after stage 1).
    """
    width, height = size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = SliceVAE(VAEConfig(channels=(8, 16), downsample_factor=4, blocks_per_level=1))
        unet = MotionUNet(UNetConfig(channels=(16, 32), blocks_per_level=1, image_channels=8,
                                     image_downsample=4, max_bands=max(num_bands, 4), head_channels=8))
        with torch.no_grad():
            for parameter in unet.base_parameters():
                if not parameter.any():
                    parameter.normal_(0.0, 0.1)
            # a trained decoder's normalized outputs are O(1); a random one's are much smaller
            probe = vae.decode(torch.randn(8, 4, 10, 16))
            vae.decoder.conv_out.weight.mul_(0.7 / float(probe.std()))
            vae.decoder.conv_out.bias.mul_(0.7 / float(probe.std()))
            # and a trained U-Net's eps has about unit variance
            latents = torch.randn(2 * num_bands, 4, 10, 16)
            probe = unet(latents, torch.full((2 * num_bands,), 500), torch.arange(num_bands).repeat(2),
                         torch.rand(2, 3, 40, 64), num_bands=num_bands)
            unet.conv_out.weight.div_(float(probe.std()))
            unet.conv_out.bias.div_(float(probe.std()))
    scales = np.geomspace(100.0, 5.0, num_bands).astype(np.float32)  # |S_k| of a few-pixel sway over 150 frames
    config = MotionModelConfig(width=width, height=height, num_bands=num_bands, num_frames=num_frames, fps=fps)
    return MotionModel(vae, unet, scales, config, NoiseSchedule(), {"note": "random weights for tests"}).eval()
