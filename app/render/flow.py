"""Rendering the flow layer: a seamless loop of a photo moved along a static velocity field.

Symmetric splatting (Holynski et al., CVPR 2021, Sec. 3.3): frame t of a P-frame loop splats the
photo forward along F_t (the integration of M for t frames) with weight 1 - t/P and backward along
G_{P-t} (the integration of -M for P - t frames) with weight t/P, both into one buffer with the
softmax pixel weights of app/render/splat.py, then normalizes and fills holes. At t = 0 only the
forward splat counts and F_0 = 0; at t = P only the backward one and G_0 = 0: both are the photo,
so the frame after the last is the first.

Rendered loops sample the flow half a frame off the whole steps (frame t shows flow time t + 1/2,
FLOW_PHASE): then no frame is the untouched photo, every frame is resampled alike, and the wrap from
the last frame to the first is one step like any other (a loop that starts on the sharp photo
jumps in sharpness at the seam).

The oscillation layer (a spectral volume) adds its displacement O_t(p) to both: the source pixel p
lands at p + O_t(p) + F_t(p) (forward) and p + O_t(p) + G_{P-t}(p) (backward), so trees sway over a
flowing river. Everything is torch: the same code on CPU and CUDA.
"""

from __future__ import annotations

import numpy as np
import torch

from app.core.flow_field import Trajectory, checkpoint_spacing, loop_weights
from app.render.splat import SOFTMAX_MIN_EXPONENT, fill_holes, splat

__all__ = ["FLOW_PHASE", "LIVE_MAX_SIDE", "FlowLoop", "FlowPlayer", "softmax_weights", "splat_symmetric"]

FLOW_PHASE = 0.5
LIVE_MAX_SIDE = 320  # live views integrate the flow on a grid at most this long (bench gl: flow-fields)


class FlowLoop:
    """Forward and backward displacements of a P-frame flow loop, for any frame t in [0, P].

    velocity: torch (2, H, W), pixels per output frame, on the rendering device.
    """

    def __init__(self, velocity: torch.Tensor, period: int):
        if int(period) < 1:
            raise ValueError(f"A flow loop needs at least 1 frame; got {period}.")
        self.period = int(period)
        every = checkpoint_spacing(self.period)
        self.forward = Trajectory(velocity, every)
        self.backward = Trajectory(-velocity, every)

    def fields(self, t: float):
        """(F_t, G_{P-t}) torch (2, H, W) each, and the backward share t / P, for t in [0, P] (may be fractional)."""
        if not 0 <= t <= self.period:
            raise ValueError(f"Flow time {t} is outside the loop [0, {self.period}].")
        _, backward_share = loop_weights(t, self.period)
        return self.forward.at_time(t), self.backward.at_time(self.period - t), backward_share


def softmax_weights(importance: torch.Tensor) -> torch.Tensor:
    """exp(importance - max), the exponent clamped at SOFTMAX_MIN_EXPONENT: (1, 1, H, W)."""
    exponent = (importance - importance.amax()).clamp(min=SOFTMAX_MIN_EXPONENT)
    return torch.exp(exponent)


def splat_symmetric(image: torch.Tensor, pixel_weight: torch.Tensor, forward: torch.Tensor,
                    backward: torch.Tensor, backward_share: torch.Tensor, fill: bool = True) -> torch.Tensor:
    """Joint softmax splat of image (1, C, H, W) along forward and backward displacements (n, 2, H, W).

    pixel_weight (1, 1, H, W) are the softmax weights; backward_share (n,) the weight t/P of the
    backward splat of each frame (1 - t/P for the forward one). Returns (n, C, H, W) float.
    """
    channels = image.shape[1]
    carried = torch.cat([image * pixel_weight, pixel_weight], dim=1)  # (1, C + 1, H, W)
    share = backward_share.to(image.dtype).view(-1, 1, 1, 1)  # (n, 1, 1, 1)
    # splatting is linear in what is carried, so each frame's share scales its whole accumulation
    total = splat(carried, forward, mode="sum") * (1 - share) + splat(carried, backward, mode="sum") * share
    weight = total[:, channels:]  # (n, 1, H, W)
    holes = weight <= 0
    colour = total[:, :channels] / torch.where(holes, torch.ones_like(weight), weight)
    return fill_holes(colour, holes) if fill else colour


class FlowPlayer:
    """The flow layer's clock for a live view: the current frame's fields as numpy, on the CPU.

    velocity: float32 (2, H, W) pixels per frame; period: the loop's frames; fps: its rate.
    The phase runs over [0, period) like Playback's (seconds * fps / slowdown per advance).
    max_side: the fields are integrated on a grid at most this long (the flow is smooth; a quarter
    of the pixels is a quarter of the work) and resized back to H x W; None integrates at H x W.
    """

    def __init__(self, velocity, period: int, fps: float, max_side: int | None = None):
        from app.core.flow_field import FlowField, resize_flow

        self.velocity = np.ascontiguousarray(velocity, np.float32)
        self.size = self.velocity.shape[1:]  # (H, W)
        height, width = self.size
        scale = 1.0 if max_side is None else min(1.0, max_side / max(height, width))
        grid = (max(2, int(round(height * scale))), max(2, int(round(width * scale))))
        small = resize_flow(FlowField(self.velocity, max(2, int(period)), fps), *grid).velocity
        self.period = int(period)
        self.fps = float(fps)
        self.phase = 0.0
        self.loop = FlowLoop(torch.from_numpy(np.ascontiguousarray(small)), self.period)

    def advance(self, seconds: float, slowdown: float = 1.0) -> None:
        self.phase = (self.phase + float(seconds) * self.fps / float(slowdown)) % self.period

    def fields(self, phase: float | None = None):
        """(forward, backward) float32 (2, H, W) and the backward share at phase (default: the player's)."""
        phase = self.phase if phase is None else float(phase) % self.period
        with torch.inference_mode():
            forward, backward, share = self.loop.fields(phase)
        return self._full_size(forward.numpy()), self._full_size(backward.numpy()), share

    def _full_size(self, field: np.ndarray) -> np.ndarray:
        """A (2, h, w) displacement on the integration grid -> (2, H, W), pixels of H x W."""
        import cv2

        height, width = self.size
        if field.shape[1:] == (height, width):
            return field
        scale = (width / field.shape[2], height / field.shape[1])
        return np.stack([cv2.resize(field[axis], (width, height), interpolation=cv2.INTER_LINEAR)
                         * np.float32(scale[axis]) for axis in range(2)])
