"""The viewport's Qt-free half: the playback clock, the overlay math and the CPU frame renderer.

Playback turns time and the mouse into the K complex band factors a renderer consumes:

    factors = (band_factors(K, T, phase) + q) * gains

phase advances with real time * fps / slowdown, q are the modal coordinates of a ModalSimulator
(app/core/modal.py) while a poke is alive, and gains are the document's band gains * magnitude.
The overlays are uint8 (H, W, 4) pictures of the motion's RMS displacement (by Parseval, from the
per-band power maps). PreviewFrameRenderer draws a frame without OpenGL. The widgets are in viewport.py.
"""

from __future__ import annotations

import time

import numpy as np

from app.core.spectral import Motion, band_factors, scale_bands

OVERLAYS = ("none", "magnitude", "mask")
MASK_THRESHOLD_PX = 0.1  # a pixel whose RMS displacement is above this counts as moving
MAX_FRAME_SECONDS = 0.1  # a late frame advances time by at most this much
FPS_WINDOW_SECONDS = 1.0


# --- overlays -------------------------------------------------------------------------------------


def band_power_maps(motion: Motion) -> np.ndarray:
    """(K, H, W) float32: |S_x,k|^2 + |S_y,k|^2 per band, the ingredients of the RMS map."""
    return np.square(np.abs(motion.spectrum)).sum(axis=1).astype(np.float32)


def rms_displacement_map(band_power: np.ndarray, gains, num_frames: int) -> np.ndarray:
    """(H, W) RMS displacement over the loop in pixels, by Parseval: sqrt(sum_k c_k g_k^2 P_k) / T.

    c_k = 1 for the DC band, 2 for the others (each stands for itself and its mirror frequency).
    """
    gains = np.asarray(gains, np.float64).reshape(-1)
    weights = np.where(np.arange(len(gains)) == 0, 1.0, 2.0) * np.square(np.abs(gains))  # (K,)
    power = np.einsum("k,khw->hw", weights.astype(np.float32), band_power, optimize=False)  # (H, W)
    return np.sqrt(np.maximum(power, 0.0)) / float(num_frames)


def overlay_rgba(rms: np.ndarray, mode: str) -> np.ndarray | None:
    """uint8 (H, W, 4) overlay for mode "magnitude" (heat colours) or "mask" (cyan); None for "none"."""
    if mode == "none":
        return None
    if mode not in OVERLAYS:
        raise ValueError(f"Unknown overlay '{mode}'; choose none, magnitude or mask.")
    height, width = rms.shape
    rgba = np.zeros((height, width, 4), np.float32)
    if mode == "magnitude":
        scale = float(np.percentile(rms, 99.5)) if rms.size else 0.0
        level = np.clip(rms / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(rms)
        rgba[..., 0] = np.clip(3 * level, 0, 1)
        rgba[..., 1] = np.clip(3 * level - 1, 0, 1)
        rgba[..., 2] = np.clip(3 * level - 2, 0, 1)
        rgba[..., 3] = 0.15 + 0.55 * level
    else:
        moving = rms > MASK_THRESHOLD_PX
        rgba[moving] = (0.0, 0.9, 1.0, 0.4)
    return (rgba * 255).round().astype(np.uint8)


def blend(frame: np.ndarray, rgba: np.ndarray | None) -> np.ndarray:
    """Alpha-blend an RGBA overlay over a uint8 (H, W, 3) frame."""
    if rgba is None:
        return frame
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    mixed = frame.astype(np.float32) * (1 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return mixed.round().astype(np.uint8)


def composite(top: np.ndarray | None, bottom: np.ndarray | None) -> np.ndarray | None:
    """Alpha-composite two uint8 (H, W, 4) overlays (either may be None)."""
    if top is None:
        return bottom
    if bottom is None or bottom.shape != top.shape:
        return top
    top_alpha = top[..., 3:4].astype(np.float32) / 255.0
    bottom_alpha = bottom[..., 3:4].astype(np.float32) / 255.0
    alpha = top_alpha + bottom_alpha * (1 - top_alpha)
    colour = (top[..., :3] * top_alpha + bottom[..., :3] * bottom_alpha * (1 - top_alpha)) / np.maximum(alpha, 1e-6)
    return np.concatenate([colour, alpha * 255.0], axis=-1).round().clip(0, 255).astype(np.uint8)


# --- time and pokes -------------------------------------------------------------------------------


class Playback:
    """The loop's clock plus the modal simulator: time and mouse in, band factors out."""

    def __init__(self):
        self.motion: Motion | None = None
        self.gains = np.ones(1, np.float32)
        self.slowdown = 1.0
        self.phase = 0.0  # position in the loop, in the motion's frames, [0, T)
        self.playing = True
        self.simulator = None
        self.grab_origin: tuple[float, float] | None = None

    def set_motion(self, motion: Motion | None) -> None:
        self.motion = motion
        self.gains = np.ones(motion.num_bands if motion is not None else 1, np.float32)
        self.phase = 0.0
        self.drop_poke()

    def set_gains(self, gains) -> None:
        gains = np.asarray(gains, np.float32).reshape(-1)
        if not np.array_equal(gains, self.gains):
            self.gains = gains.copy()
            self.drop_poke()  # its modes just changed shape

    def set_slowdown(self, slowdown: float) -> None:
        if float(slowdown) != self.slowdown:
            self.slowdown = float(slowdown)
            self.drop_poke()  # the springs' stiffness follows the speed

    @property
    def poking(self) -> bool:
        return self.simulator is not None

    def drop_poke(self) -> None:
        self.simulator = None
        self.grab_origin = None

    def advance(self, seconds: float) -> bool:
        """Move time on by `seconds`; True when a poke has just settled (and was dropped)."""
        if self.motion is None:
            return False
        if self.playing:
            self.phase = (self.phase + seconds * self.motion.fps / self.slowdown) % self.motion.num_frames
        if self.simulator is None:
            return False
        self.simulator.step(max(0.0, float(seconds)))
        if self.grab_origin is None and self.simulator.is_settled():
            self.simulator = None
            return True
        return False

    def band_factors(self) -> np.ndarray | None:
        """complex64 (K,) factors of the base motion for the current frame."""
        if self.motion is None:
            return None
        factors = band_factors(self.motion.num_bands, self.motion.num_frames, self.phase).astype(np.complex128)
        if self.simulator is not None:
            factors = factors + self.simulator.band_factors()
        return (factors * self.gains).astype(np.complex64)

    # mouse, in image pixels

    def _ensure_simulator(self) -> None:
        if self.simulator is None:
            from app.core.modal import ModalParameters, ModalSimulator

            edited = scale_bands(self.motion, self.gains)
            self.simulator = ModalSimulator(edited, ModalParameters(stiffness=1.0 / self.slowdown))

    def press(self, x: float, y: float) -> None:
        """Grab the scene at (x, y)."""
        if self.motion is None:
            return
        self._ensure_simulator()
        self.grab_origin = (float(x), float(y))
        self.simulator.grab(x, y, 0.0, 0.0)

    def drag(self, x: float, y: float) -> None:
        """Pull the grabbed point towards (x, y)."""
        if self.grab_origin is None or self.simulator is None:
            return
        origin_x, origin_y = self.grab_origin
        self.simulator.grab(origin_x, origin_y, float(x) - origin_x, float(y) - origin_y)

    def release(self) -> None:
        """Let go: the scene swings back and dies out."""
        if self.grab_origin is None or self.simulator is None:
            return
        self.simulator.release()
        self.grab_origin = None


# --- CPU frames -----------------------------------------------------------------------------------


def fields_from_factors(factors, spectrum) -> np.ndarray:
    """Re(factors @ spectrum): complex (N, K) factors, complex (K, X) spectrum -> float32 (N, X).

    The same sum displacement_at evaluates, written as a plain einsum (no BLAS): on a busy 2-core
    machine numpy's threaded BLAS stalls next to torch's thread pool, a single-threaded loop does not.
    """
    factors = np.atleast_2d(np.asarray(factors, np.complex64))
    spectrum = np.asarray(spectrum, np.complex64)
    real = np.einsum("nk,kx->nx", factors.real, np.ascontiguousarray(spectrum.real), optimize=False)
    imaginary = np.einsum("nk,kx->nx", factors.imag, np.ascontiguousarray(spectrum.imag), optimize=False)
    return (real - imaginary).astype(np.float32)


class PreviewFrameRenderer:
    """Band factors -> frame without OpenGL.

    With CUDA: the quality path, softmax splatting + hole filling on the GPU (the export's
    renderer). Without: backward warping on the CPU, frame(p) = image(p - F(p)), fast enough to play.
    F = Re sum_k w_k S_k in both.
    """

    def __init__(self, image: np.ndarray, motion: Motion, device: str | None = None):
        self.image = np.ascontiguousarray(image)
        self.height, self.width = image.shape[:2]
        self.spectrum = np.ascontiguousarray(motion.spectrum.reshape(motion.num_bands, -1))  # (K, 2HW)
        self.device = device or preview_device()
        if self.device == "cuda":
            import torch

            from app.render.splat import importance_from_motion, mean_motion_magnitude

            self.image_tensor = torch.from_numpy(self.image.copy()).permute(2, 0, 1)[None].float().div(255).cuda()
            self.importance = importance_from_motion(mean_motion_magnitude(motion), 1.0).cuda()  # (1, 1, H, W)

    def displacement(self, factors) -> np.ndarray:
        """float32 (2, H, W) displacement field for complex (K,) band factors."""
        return fields_from_factors(factors, self.spectrum).reshape(2, self.height, self.width)

    def render(self, factors, flow=None) -> np.ndarray:
        """The frame for band factors; flow: None or the flow layer's (forward, backward, share)."""
        if self.device == "cuda":
            return self._render_splat(factors, flow)
        from app.render.warp import backward_warp

        sway = self.displacement(factors)
        if flow is None:
            return backward_warp(self.image, sway)
        forward, backward, share = flow
        mixed = (backward_warp(self.image, sway + forward).astype(np.float32) * (1 - share)
                 + backward_warp(self.image, sway + backward).astype(np.float32) * share)
        return mixed.round().astype(np.uint8)

    def _render_splat(self, factors, flow=None) -> np.ndarray:
        import torch

        from app.render.splat import splat_frames

        with torch.inference_mode():
            sway = torch.from_numpy(self.displacement(factors))[None].cuda()  # (1, 2, H, W)
            if flow is None:
                frame = splat_frames(self.image_tensor, sway, self.importance)[0]  # (3, H, W)
            else:
                from app.render.flow import softmax_weights, splat_symmetric

                forward, backward, share = flow
                frame = splat_symmetric(self.image_tensor, softmax_weights(self.importance),
                                        sway + torch.from_numpy(forward).cuda(), sway + torch.from_numpy(backward).cuda(),
                                        torch.tensor([share], device="cuda"))[0]
            return (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def preview_device() -> str:
    """'cuda' when torch sees a GPU (quality preview), else 'cpu' (app/device.py)."""
    from app.device import resolve_device

    return resolve_device("auto")


class FpsCounter:
    """Frames per second over the last FPS_WINDOW_SECONDS; tick() returns a value once per window."""

    def __init__(self):
        self.started = time.perf_counter()
        self.frames = 0

    def tick(self) -> float | None:
        self.frames += 1
        elapsed = time.perf_counter() - self.started
        if elapsed < FPS_WINDOW_SECONDS:
            return None
        fps = self.frames / elapsed
        self.started, self.frames = time.perf_counter(), 0
        if elapsed > 2 * FPS_WINDOW_SECONDS:
            return None  # frames stopped for a while (paused, hidden): not a rate worth showing
        return fps


class Clock:
    """Seconds since the last call, at most MAX_FRAME_SECONDS."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return min(seconds, MAX_FRAME_SECONDS)
