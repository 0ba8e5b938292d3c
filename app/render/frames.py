"""Rendering every frame of a loop: photo + motion (+ flow) + RenderSettings -> uint8 frames, batch by batch.

Three renderers move the photo's pixels by the displacement field of each frame:
    splat  softmax splatting with W(p) importance and hole filling (app/render/splat.py), the default.
    net    the learned renderer, a module passed in as `net` with
           net.render(image (1, 3, H, W) float [0, 1], displacements (N, 2, H, W), importance (1, 1, H, W))
           -> (N, 3, H, W) float [0, 1].
    warp   backward warping (app/render/warp.py), the cheap baseline; always on the CPU.

Timing: a loop of a T-frame motion played `slowdown` times slower lasts round(T * slowdown) frames;
frame t shows the band-limited Fourier series at time t * T / round(T * slowdown), which is
t / slowdown whenever T * slowdown is a whole number (fractional times between the motion's own
frames are what slow motion needs). Frames run over t = 0 .. total - 1, so the frame after the last
would be frame 0 again: the last frame flows into the first.

A flow layer (app/core/flow_field.py) renders by symmetric splatting (app/render/flow.py) over the
same P = round(T * slowdown) frames, its velocity scaled by magnify and by T / P; T is the sway's
loop length, or, in a scene without sway, the flow's own loop length. The splat renderer blends the
forward and backward splats in one softmax buffer; net and warp blend their two renders linearly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from app.core.spectral import Motion, displacement_at, magnify, resize_motion, zero_motion

RENDERERS = ("splat", "net", "warp")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ALPHA = 1.0
# A batch holds at most this many output pixels (but always one frame): 4 frames at 1920x1080,
# 1 at 4000x3000, the whole default batch at the working size.
PIXELS_PER_BATCH = 4_000_000

# The budget of one output: beyond these a render is refused before it starts (one sentence).
MAX_OUTPUT_FRAMES = 36_000               # 20 minutes at 30 fps
MAX_OUTPUT_SIDE = 8192                   # pixels, either side
MAX_OUTPUT_PIXEL_FRAMES = 36_000 * 1920 * 1080  # frames x pixels: 20 minutes of 1080p
SLOWDOWN_RANGE = (0.1, 100.0)
MAGNIFY_RANGE = (0.0, 100.0)


@dataclass
class RenderSettings:
    """How to render a loop.

    renderer: "splat", "net" or "warp".
    num_loops: how many times the loop repeats in the output.
    slowdown: > 1 plays the motion that many times slower (more frames per loop).
    magnify: scales every displacement (0 freezes the photo, 2 doubles the motion).
    size: (width, height) of the output, or None for the photo's size.
    device: "auto" (CUDA when available), "cpu" or "cuda".
    alpha: softmax splatting importance scale: a pixel whose mean motion is m pixels gets weight
        exp(alpha * m), so with alpha = 1 a pixel moving one pixel more on average wins a collision
        by a factor e (moving things, like leaves, land in front of still background).
    batch_size: frames rendered together at most (fewer for big frames: PIXELS_PER_BATCH).
    """

    renderer: str = "splat"
    num_loops: int = 1
    slowdown: float = 1.0
    magnify: float = 1.0
    size: tuple[int, int] | None = None
    device: str = "auto"
    alpha: float = DEFAULT_ALPHA
    batch_size: int = 8


def resolve_device(name: str = "auto"):
    """torch.device for "auto" (CUDA if available, else CPU), "cpu" or "cuda" (see app/device.py)."""
    from app.device import torch_device

    return torch_device(name)


def scene_motion(motion: Motion | None, flow=None) -> Motion:
    """The sway of a scene; a scene with only a flow gets a still one with the flow's loop timing."""
    if motion is not None:
        return motion
    if flow is None:
        raise ValueError("Nothing to animate: the scene has neither motion nor flow.")
    return zero_motion(1, 1, num_bands=1, num_frames=flow.num_frames, fps=flow.fps)


def frames_per_loop(motion: Motion, settings: RenderSettings) -> int:
    """round(T * slowdown): the frames one loop takes."""
    low, high = SLOWDOWN_RANGE
    if not (np.isfinite(settings.slowdown) and low <= settings.slowdown <= high):
        raise ValueError(f"The slow-motion factor must be from {low:g} to {high:g}; got {settings.slowdown}.")
    count = int(round(motion.num_frames * settings.slowdown))
    if count < 1:
        raise ValueError(f"slowdown {settings.slowdown} leaves no frame of a {motion.num_frames}-frame loop.")
    return count


def frame_count(motion: Motion | None, settings: RenderSettings, flow=None) -> int:
    """Frames rendered in all: round(T * slowdown) * num_loops (T of scene_motion(motion, flow))."""
    motion = scene_motion(motion, flow)
    if not 1 <= int(settings.num_loops) <= MAX_OUTPUT_FRAMES:
        raise ValueError(f"The number of loops must be from 1 to {MAX_OUTPUT_FRAMES:,}; got {settings.num_loops}.")
    return frames_per_loop(motion, settings) * int(settings.num_loops)


def loop_seconds(motion: Motion, settings: RenderSettings) -> float:
    """How long one loop plays: T * slowdown / fps seconds."""
    return motion.num_frames * float(settings.slowdown) / motion.fps


def at_frame_rate(motion: Motion, settings: RenderSettings, frame_rate: float):
    """(settings, fps) that render each loop at about frame_rate and play it in exactly loop_seconds.

    The loop gets round(loop_seconds * frame_rate) frames, evenly spaced over the loop, and the
    returned playback fps is that count over the loop's duration (not frame_rate itself), so a
    5 s loop at 12 fps is 60 frames of 5 s, and at 7 fps 35 frames of 5 s.
    """
    if not frame_rate > 0:
        raise ValueError(f"The frame rate must be positive; got {frame_rate}.")
    duration = loop_seconds(motion, settings)
    per_loop = max(1, int(round(duration * frame_rate)))
    return replace(settings, slowdown=per_loop / motion.num_frames), per_loop / duration


def _check_settings(settings: RenderSettings, net) -> None:
    """Raise ValueError (one sentence) for settings that cannot render."""
    if settings.renderer not in RENDERERS:
        raise ValueError(f"Unknown renderer '{settings.renderer}'; choose splat, net or warp.")
    if settings.renderer == "net" and net is None:
        raise ValueError("No learned renderer is loaded; choose the splat or warp renderer.")
    if int(settings.batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {settings.batch_size}.")
    if settings.size is not None:
        width, height = settings.size
        if not (1 <= int(width) <= MAX_OUTPUT_SIDE and 1 <= int(height) <= MAX_OUTPUT_SIDE):
            raise ValueError(f"The output size must be from 1 to {MAX_OUTPUT_SIDE} pixels a side; "
                             f"got {width}x{height}.")
    low, high = MAGNIFY_RANGE
    if not (np.isfinite(settings.magnify) and low <= settings.magnify <= high):
        raise ValueError(f"The magnification must be from {low:g} to {high:g}; got {settings.magnify}.")


def check_output_budget(num_frames: int, width: int, height: int) -> None:
    """ValueError with one sentence when an output of num_frames frames of width x height pixels is
    beyond the budget (MAX_OUTPUT_FRAMES, MAX_OUTPUT_SIDE, MAX_OUTPUT_PIXEL_FRAMES)."""
    if num_frames > MAX_OUTPUT_FRAMES:
        raise ValueError(f"The output would have {num_frames:,} frames; the limit is {MAX_OUTPUT_FRAMES:,}.")
    if max(width, height) > MAX_OUTPUT_SIDE:
        raise ValueError(f"The output would be {width}x{height} pixels; the limit is {MAX_OUTPUT_SIDE} a side.")
    if num_frames * width * height > MAX_OUTPUT_PIXEL_FRAMES:
        raise ValueError(f"The output ({num_frames:,} frames of {width}x{height}) is beyond the budget of "
                         f"{MAX_OUTPUT_PIXEL_FRAMES // (1920 * 1080):,} frames of 1080p.")


def frames_per_batch(settings: RenderSettings, height: int, width: int) -> int:
    """Frames rendered together at height x width: batch_size, capped at PIXELS_PER_BATCH pixels."""
    return max(1, min(int(settings.batch_size), PIXELS_PER_BATCH // max(1, height * width)))


def resize_field(field: np.ndarray, height: int, width: int) -> np.ndarray:
    """A displacement field float32 (2, h, w) resampled to (2, height, width); pixel units scale with it."""
    import cv2

    source_height, source_width = field.shape[1:]
    if (source_height, source_width) == (height, width):
        return field
    shrinking = height * width < source_height * source_width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = np.empty((2, height, width), np.float32)
    for channel, scale in ((0, width / source_width), (1, height / source_height)):
        cv2.resize(np.ascontiguousarray(field[channel], np.float32), (width, height), dst=resized[channel],
                   interpolation=interpolation)
        resized[channel] *= np.float32(scale)
    return resized


def _resize_image(image: np.ndarray, size) -> np.ndarray:
    """uint8 (H, W, 3) resized to size = (width, height) by app.data.images.resize_image; None keeps it."""
    from app.data.images import resize_image

    if size is None or tuple(size) == (image.shape[1], image.shape[0]):
        return image
    return resize_image(image, (int(size[0]), int(size[1])))


def _to_uint8(batch) -> np.ndarray:
    """float (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3) numpy."""
    import torch

    return (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def render_loop(image: np.ndarray, motion: Motion | None, settings: RenderSettings | None = None,
                progress=None, cancel=None, net=None, flow=None):
    """Generator of uint8 (H', W', 3) frames of the loop; settings are checked before it starts.

    The image is resized to settings.size; the motion stays on its own grid, magnified, and each
    batch's displacements are resized to the image (displacements scale with it). The splatting
    importance W(p) is computed once from the mean motion magnitude and resized likewise.
    flow: an optional FlowField rendered with the sway (motion may then be None); with a flow the
    motion is resized to the output once, as the flow renderer works at that size.
    progress(done, total) after each batch; cancel() before each batch: True ends the generator.
    For "net", the module is moved to the chosen device.
    """
    settings = settings or RenderSettings()
    motion = scene_motion(motion, flow)
    _check_settings(settings, net)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"The photo must be uint8 (H, W, 3); got {image.dtype} {image.shape}.")
    device = resolve_device(settings.device)
    total = frame_count(motion, settings)
    width, height = settings.size if settings.size is not None else (image.shape[1], image.shape[0])
    check_output_budget(total, int(width), int(height))

    image = _resize_image(image, settings.size)
    height, width = image.shape[:2]
    if flow is not None:
        motion = resize_motion(motion, height, width)
    motion = magnify(motion, settings.magnify)  # on the motion's own grid (the output's with a flow)
    period = frames_per_loop(motion, settings)
    slowdown = period / motion.num_frames  # exact period
    if flow is not None:
        from app.core.flow_field import resize_flow, scale_flow

        flow = scale_flow(resize_flow(flow, height, width), settings.magnify / slowdown)  # px per output frame
    return _render(image, motion, settings, device, total, slowdown, progress, cancel, net, flow, period)


def _render(image, motion, settings, device, total, slowdown, progress, cancel, net, flow=None, period=None):
    """The generator behind render_loop."""
    import cv2
    import torch

    height, width = image.shape[:2]
    if flow is not None:
        render_batch = _flow_renderer(image, motion, flow, settings, device, period, slowdown, net)
    elif settings.renderer == "warp":
        render_batch = _warp_renderer(image)
    else:
        from app.render.splat import importance_from_motion, mean_motion_magnitude

        image_tensor = torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1)[None].float().div(255).to(device)  # (1, 3, H, W)
        magnitude = mean_motion_magnitude(motion)  # (h, w) on the motion's grid, in its pixels
        if magnitude.shape != (height, width):
            magnitude = cv2.resize(magnitude, (width, height), interpolation=cv2.INTER_LINEAR)
            magnitude *= np.float32(np.sqrt(width * height / (motion.width * motion.height)))
        importance = importance_from_motion(magnitude, settings.alpha).to(device)  # (1, 1, H, W)
        if settings.renderer == "splat":
            render_batch = _splat_renderer(image_tensor, importance, device)
        else:
            render_batch = _net_renderer(net, image_tensor, importance, device)

    batch = frames_per_batch(settings, height, width)
    done = 0
    for start in range(0, total, batch):
        if cancel is not None and cancel():
            return
        times = range(start, min(start + batch, total))
        displacements = np.stack([resize_field(displacement_at(motion, t, slowdown), height, width)
                                  for t in times])  # (N, 2, H, W)
        frames = render_batch(displacements) if flow is None else render_batch(displacements, times)  # uint8 (N, H, W, 3)
        done += len(times)
        if progress is not None:
            progress(done, total)
        yield from frames


def _flow_renderer(image, motion, flow, settings, device, period, slowdown, net):
    """Sway plus flow: displacements (N, 2, H, W) and frame numbers -> uint8 (N, H, W, 3).

    The splat renderer blends the forward and backward splats of each frame in one softmax buffer;
    net and warp render both and blend them linearly by the same shares.
    """
    import torch

    from app.render.flow import FLOW_PHASE, FlowLoop, softmax_weights, splat_symmetric
    from app.render.splat import importance_from_motion, mean_motion_magnitude

    velocity = torch.from_numpy(flow.velocity).to(device)  # (2, H, W), pixels per output frame
    loop = FlowLoop(velocity, period)
    speed = flow.speed() * np.float32(slowdown)  # pixels per frame of the motion's own timing
    importance = importance_from_motion(mean_motion_magnitude(motion) + speed, settings.alpha).to(device)
    if settings.renderer == "splat":
        image_tensor = torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1)[None].float().div(255).to(device)  # (1, 3, H, W)
        pixel_weight = softmax_weights(importance)  # (1, 1, H, W)
    elif settings.renderer == "warp":
        single = _warp_renderer(image)
    else:
        image_tensor = torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1)[None].float().div(255).to(device)
        single = _net_renderer(net, image_tensor, importance, device)

    def render_batch(displacements, times):
        fields = [loop.fields(t % period + FLOW_PHASE) for t in times]
        sway = torch.from_numpy(displacements).to(device)  # (N, 2, H, W)
        forward = sway + torch.stack([fields_t[0] for fields_t in fields])
        backward = sway + torch.stack([fields_t[1] for fields_t in fields])
        share = torch.tensor([fields_t[2] for fields_t in fields], device=device)  # (N,)
        if settings.renderer == "splat":
            with torch.inference_mode():
                return _to_uint8(splat_symmetric(image_tensor, pixel_weight, forward, backward, share))
        forward_frames = np.asarray(single(forward.cpu().numpy()), np.float32)  # (N, H, W, 3)
        backward_frames = np.asarray(single(backward.cpu().numpy()), np.float32)
        share = share.cpu().numpy().reshape(-1, 1, 1, 1)
        return np.round(forward_frames * (1 - share) + backward_frames * share).astype(np.uint8)

    return render_batch


def _warp_renderer(image):
    """Backward warping on the CPU: displacements (N, 2, H, W) -> uint8 (N, H, W, 3)."""
    from app.render.warp import backward_warp

    def render_batch(displacements):
        return [backward_warp(image, displacement) for displacement in displacements]

    return render_batch


def _splat_renderer(image_tensor, importance, device):
    """Softmax splatting with hole filling: displacements (N, 2, H, W) -> uint8 (N, H, W, 3)."""
    import torch

    from app.render.splat import splat_frames

    def render_batch(displacements):
        with torch.inference_mode():
            flows = torch.from_numpy(displacements).to(device)
            return _to_uint8(splat_frames(image_tensor, flows, importance, mode="softmax", fill=True))

    return render_batch


def _net_renderer(net, image_tensor, importance, device):
    """The learned renderer: displacements (N, 2, H, W) -> uint8 (N, H, W, 3)."""
    import torch

    if hasattr(net, "to"):
        net.to(device)
    if hasattr(net, "eval"):
        net.eval()

    def render_batch(displacements):
        with torch.inference_mode():
            flows = torch.from_numpy(displacements).to(device)
            return _to_uint8(net.render(image_tensor, flows, importance))

    return render_batch
