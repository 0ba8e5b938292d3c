"""Forward splatting: pushing the pixels (or features) of an image along displacement fields.

This module owns the core operation of the frame renderer (Generative Image Dynamics, Sec. 4):
every source pixel p lands at p + F(p) and is shared among the 4 pixels around that point with
bilinear weights. Where several source pixels land on the same spot they are blended by a weight:

    sum      no weight, no normalization: conserves mass (total output == total input)
    avg      weight 1
    linear   weight = importance
    softmax  weight = exp(importance - max importance); the paper's importance is
             alpha * W(p) with W(p) = mean_t |F_t(p)|, so moving pixels cover still ones

Output pixels that nothing lands on are holes; `fill_holes` fills them by pull-push.
`backward_warp_torch` is the cheap, smeary reference the benchmark compares against.

Pure torch: the same code runs on CPU and CUDA. Everything is batched over N frames, and a
single source image (batch 1) is shared by all N displacement fields without copying it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from app.core.spectral import Motion, motion_to_texture

__all__ = [
    "SPLAT_MODES",
    "splat",
    "importance_from_motion",
    "mean_motion_magnitude",
    "fill_holes",
    "splat_frames",
    "backward_warp_torch",
]

SPLAT_MODES = ("sum", "avg", "linear", "softmax")

# Softmax weights are exp(importance - max) with the exponent clamped from below at this value:
# a pixel far less important than the most important one still covers the spots nothing else
# reaches (instead of underflowing to 0 and leaving a hole), yet loses to it by a factor of e^50.
SOFTMAX_MIN_EXPONENT = -50.0

# The accumulation buffer has this many extra pixels on every side. Targets are clamped into
# [-MARGIN, size], so every tap of a point that lands off-screen falls into the margin, which is
# cut away at the end: no per-tap bounds masks are needed.
MARGIN = 2

# On CPU, frames are splatted (and filled) a few at a time, about this many pixels per pass, so
# each pass's buffers stay in cache: at 512x288, one frame per pass measured about twice as fast
# per frame as 10 frames per pass; at 256x160, 2 per pass was best. GPUs take the whole batch.
CPU_PIXELS_PER_PASS = 100_000

# Rows of the motion processed at once by mean_motion_magnitude (bounds its memory).
ROWS_PER_CHUNK = 32


# --- forward splatting ---------------------------------------------------------------------------


def splat(source: torch.Tensor, flow: torch.Tensor, mode: str = "softmax",
          importance: torch.Tensor | None = None, return_holes: bool = False):
    """Forward-splat source (N or 1, C, H, W) by flow (N, 2, H, W) pixels, x then y.

    Source pixel p lands at p + flow(p). importance (N or 1, 1, H, W) weighs the pixels in the
    "linear" (as is) and "softmax" (as exp) modes; None means equal weights. Non-finite flow sends
    a pixel off-screen; taps outside the image are dropped. Pixels whose accumulated weight is
    exactly 0 are holes (0 in the output).

    Returns output (N, C, H, W) float32 (float64 for a float64 source), and with return_holes
    also holes, bool (N, 1, H, W).
    """
    if mode not in SPLAT_MODES:
        raise ValueError(f"Unknown splat mode '{mode}'; expected one of {', '.join(SPLAT_MODES)}.")
    if importance is not None:
        importance = torch.as_tensor(importance)
    _check_shapes(source, flow, importance)
    num_frames, _, height, width = flow.shape
    channels = source.shape[1]
    compute_dtype = torch.float64 if source.dtype == torch.float64 else torch.float32
    source = source.to(compute_dtype)
    flow = flow.to(device=source.device, dtype=compute_dtype)

    # What each source pixel carries: its colour times its weight, then the weight itself.
    pixel_weight = _pixel_weight(mode, importance, source)  # (N or 1, 1, H, W) or None
    if pixel_weight is None and return_holes:
        pixel_weight = torch.ones_like(source[:, :1])  # "sum": count bilinear coverage only
    if pixel_weight is None:
        carried = source  # (B, C, H, W)
    else:
        weighted = source * pixel_weight  # (B, C, H, W), B = 1 when both source and weight are shared
        carried = torch.cat([weighted, pixel_weight.expand_as(weighted[:, :1])], dim=1)
    carried_channels = carried.shape[1]  # C or C + 1
    # Channels first, then frames, then pixels: (C', B, H*W), the layout index_add_ along dim 1 wants.
    carried = carried.transpose(0, 1).reshape(carried_channels, -1, height * width)

    frames_per_pass = _frames_per_pass(source.device, num_frames, height, width)
    output = source.new_empty(num_frames, channels, height, width)
    holes = torch.empty(num_frames, 1, height, width, dtype=torch.bool, device=source.device)
    for start in range(0, num_frames, frames_per_pass):
        frames = slice(start, start + frames_per_pass)
        carried_here = carried if carried.shape[1] == 1 else carried[:, frames]
        accumulated = _accumulate(carried_here, flow[frames])  # (C', n, H, W)
        if pixel_weight is None:  # "sum" without holes
            output[frames] = accumulated.transpose(0, 1)
            continue
        total_weight = accumulated[channels:]  # (1, n, H, W)
        covered = total_weight > 0
        colour = accumulated[:channels]
        if mode != "sum":
            colour = colour / torch.where(covered, total_weight, torch.ones_like(total_weight))
        output[frames] = colour.transpose(0, 1)
        holes[frames] = ~covered.transpose(0, 1)
    if return_holes:
        return output, holes
    return output


def _frames_per_pass(device: torch.device, num_frames: int, height: int, width: int) -> int:
    """How many frames one pass handles: all on GPUs, about CPU_PIXELS_PER_PASS pixels' worth on CPU."""
    if device.type != "cpu":
        return max(num_frames, 1)
    return max(1, CPU_PIXELS_PER_PASS // (height * width))


def _accumulate(carried: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Scatter carried (C', 1 or n, H*W) along flow (n, 2, H, W) with bilinear taps -> (C', n, H, W) sums."""
    carried_channels = carried.shape[0]
    num_frames, _, height, width = flow.shape
    top_left_index, tap_weights = _bilinear_taps(flow)  # (n*H*W,), 4 x (1, n, H*W)
    padded_width = width + 2 * MARGIN
    padded_height = height + 2 * MARGIN
    tap_shifts = (0, 1, padded_width, padded_width + 1)  # top-left, top-right, bottom-left, bottom-right

    accumulated = carried.new_zeros(carried_channels, num_frames * padded_height * padded_width)
    for shift, tap_weight in zip(tap_shifts, tap_weights):
        contribution = (carried * tap_weight).reshape(carried_channels, -1)  # (C', n*H*W)
        accumulated.index_add_(1, top_left_index + shift, contribution)
    accumulated = accumulated.view(carried_channels, num_frames, padded_height, padded_width)
    return accumulated[:, :, MARGIN:MARGIN + height, MARGIN:MARGIN + width]


def _check_shapes(source: torch.Tensor, flow: torch.Tensor, importance: torch.Tensor | None) -> None:
    """Raise ValueError with one sentence when the shapes do not fit together."""
    if source.dim() != 4:
        raise ValueError(f"source must be (N, C, H, W); got shape {tuple(source.shape)}.")
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (N, 2, H, W); got shape {tuple(flow.shape)}.")
    if source.shape[2:] != flow.shape[2:]:
        raise ValueError(f"source {tuple(source.shape)} and flow {tuple(flow.shape)} differ in size.")
    if source.shape[0] not in (1, flow.shape[0]):
        raise ValueError(
            f"source has {source.shape[0]} frames and flow {flow.shape[0]}; expected as many or 1.")
    if importance is not None:
        expected = (flow.shape[0], 1) + tuple(flow.shape[2:])
        if importance.dim() != 4 or importance.shape[1] != 1 or importance.shape[2:] != flow.shape[2:] \
                or importance.shape[0] not in (1, flow.shape[0]):
            raise ValueError(f"importance must be {expected} or (1, 1, H, W); got {tuple(importance.shape)}.")


def _pixel_weight(mode: str, importance: torch.Tensor | None, source: torch.Tensor):
    """Weight of each source pixel, (N or 1, 1, H, W), or None for "sum". Non-finite importance -> 0."""
    if mode == "sum":
        return None
    if mode == "avg" or importance is None:
        return torch.ones_like(source[:, :1])
    importance = importance.to(device=source.device, dtype=source.dtype)
    finite = torch.isfinite(importance)
    if mode == "linear":
        return torch.where(finite, importance, torch.zeros_like(importance))
    # softmax: subtract each frame's largest finite importance so exp never overflows
    lowest = torch.full_like(importance, torch.finfo(importance.dtype).min)
    finite_importance = torch.where(finite, importance, lowest)
    largest = finite_importance.amax(dim=(1, 2, 3), keepdim=True)  # (N or 1, 1, 1, 1)
    exponent = (importance - largest).clamp(min=SOFTMAX_MIN_EXPONENT)
    return torch.where(finite, torch.exp(exponent), torch.zeros_like(importance))


def _bilinear_taps(flow: torch.Tensor):
    """Top-left tap index into the padded (N, H+2M, W+2M) buffer, (N*H*W,) int64, and 4 tap weights.

    Tap weights are (1, N, H*W) each, in the order top-left, top-right, bottom-left, bottom-right.
    """
    num_frames, _, height, width = flow.shape
    rows = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    columns = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    # Non-finite targets go off-screen; clamping keeps every tap of an off-screen point in the margin.
    target_x = torch.nan_to_num(columns + flow[:, 0], nan=-MARGIN, posinf=width, neginf=-MARGIN)
    target_y = torch.nan_to_num(rows + flow[:, 1], nan=-MARGIN, posinf=height, neginf=-MARGIN)
    target_x = target_x.clamp(-MARGIN, width)  # (N, H, W)
    target_y = target_y.clamp(-MARGIN, height)
    left = torch.floor(target_x)
    top = torch.floor(target_y)
    right_fraction = (target_x - left).view(1, num_frames, height * width)
    bottom_fraction = (target_y - top).view(1, num_frames, height * width)
    left_fraction = 1 - right_fraction
    top_fraction = 1 - bottom_fraction

    padded_width = width + 2 * MARGIN
    frame_size = (height + 2 * MARGIN) * padded_width
    frame_start = torch.arange(num_frames, device=flow.device).view(num_frames, 1, 1) * frame_size
    top_left_index = (top.long() + MARGIN) * padded_width + (left.long() + MARGIN) + frame_start
    tap_weights = (
        top_fraction * left_fraction,
        top_fraction * right_fraction,
        bottom_fraction * left_fraction,
        bottom_fraction * right_fraction,
    )
    return top_left_index.view(-1), tap_weights


# --- importance from motion ----------------------------------------------------------------------


def mean_motion_magnitude(motion: Motion) -> np.ndarray:
    """W(p) = mean over the T frames of |F_t(p)|: float32 (H, W), computed a band of rows at a time."""
    magnitude = np.empty((motion.height, motion.width), np.float32)
    for top in range(0, motion.height, ROWS_PER_CHUNK):
        rows = slice(top, top + ROWS_PER_CHUNK)
        strip = Motion(motion.spectrum[:, :, rows], motion.num_frames, motion.fps)
        motion_texture = motion_to_texture(strip)  # (T, 2, rows, W)
        magnitude[rows] = np.sqrt(np.square(motion_texture).sum(axis=1)).mean(axis=0)
    return magnitude


def importance_from_motion(motion_texture_or_mean_magnitude, alpha: float) -> torch.Tensor:
    """Softmax-splatting importance alpha * W(p), float32 (1, 1, H, W).

    Accepts a motion texture (T, 2, H, W), a mean-magnitude map (H, W) (numpy or torch), or a Motion.
    """
    value = motion_texture_or_mean_magnitude
    if isinstance(value, Motion):
        value = mean_motion_magnitude(value)
    value = torch.as_tensor(value)
    if value.dim() == 4 and value.shape[1] == 2:
        value = value.float()
        mean_magnitude = torch.sqrt(value[:, 0] ** 2 + value[:, 1] ** 2).mean(dim=0)  # (H, W)
    elif value.dim() == 2:
        mean_magnitude = value.float()
    else:
        raise ValueError("Expected a motion texture (T, 2, H, W) or a mean magnitude (H, W); "
                         f"got shape {tuple(value.shape)}.")
    return (float(alpha) * mean_magnitude)[None, None].contiguous()


# --- hole filling --------------------------------------------------------------------------------


def fill_holes(image: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Fill the holes (N, 1, H, W) bool of image (N, C, H, W) by pull-push; other pixels stay exact.

    Pull: halve the resolution, summing premultiplied colour and validity weight over 2x2 blocks
    and capping the weight at 1, until a level has no empty pixel (at worst 1x1). Push: from the
    coarsest level down, each pixel keeps its own colour in proportion to its weight and takes the
    rest from the bilinearly upsampled coarser level; at full resolution only holes take it.
    """
    if holes.shape != image.shape[:1] + (1,) + image.shape[2:]:
        raise ValueError(f"holes {tuple(holes.shape)} must be (N, 1, H, W) for image {tuple(image.shape)}.")
    if not bool(holes.any()):
        return image  # the same tensor: nothing to fill
    valid = (~holes).to(image.dtype)  # (N, 1, H, W)
    # Each pyramid level packs premultiplied colour and weight: (N, C + 1, h, w).
    pyramid = [torch.cat([image.masked_fill(holes, 0), valid], dim=1)]
    while True:
        block_sums = _sum_2x2(pyramid[-1])  # (N, C + 1, ceil(h / 2), ceil(w / 2))
        weight = block_sums[:, -1:]
        pyramid.append(block_sums / weight.clamp(min=1))  # weight capped at 1, colour scaled alike
        if max(weight.shape[2:]) == 1 or not bool((weight == 0).any()):
            break

    coarsest = pyramid[-1]
    filled = coarsest[:, :-1] / coarsest[:, -1:].clamp(min=1e-12)  # (or 0 where all was a hole)
    for level in pyramid[-2:0:-1]:
        height, width = level.shape[2:]
        upsampled = _upsample_2x(filled)[:, :, :height, :width]
        filled = level[:, :-1] + (1 - level[:, -1:]) * upsampled
    height, width = image.shape[2:]
    upsampled = _upsample_2x(filled)[:, :, :height, :width]  # (N, C, H, W)
    return torch.where(holes, upsampled, image)


def _sum_2x2(image: torch.Tensor) -> torch.Tensor:
    """Sums over 2x2 blocks, (N, C, h, w) -> (N, C, ceil(h / 2), ceil(w / 2)); odd sizes pad with 0."""
    height, width = image.shape[2:]
    if height % 2 or width % 2:
        image = F.pad(image, (0, width % 2, 0, height % 2))
    row_pairs = image[:, :, 0::2] + image[:, :, 1::2]
    return row_pairs[:, :, :, 0::2] + row_pairs[:, :, :, 1::2]


def _upsample_2x(image: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling (N, C, h, w) -> (N, C, 2h, 2w).

    Equals F.interpolate(scale_factor=2, mode="bilinear", align_corners=False), several times
    faster on CPU: each output pixel is 3/4 its coarse pixel + 1/4 the nearer neighbour, per axis.
    """
    count, channels, height, width = image.shape
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")  # (N, C, h + 2, w + 2)
    centre = padded[:, :, 1:-1]
    rows = image.new_empty(count, channels, height, 2, width + 2)
    torch.lerp(centre, padded[:, :, :-2], 0.25, out=rows[:, :, :, 0])  # upper output row
    torch.lerp(centre, padded[:, :, 2:], 0.25, out=rows[:, :, :, 1])  # lower output row
    rows = rows.view(count, channels, 2 * height, width + 2)
    centre = rows[:, :, :, 1:-1]
    result = image.new_empty(count, channels, 2 * height, width, 2)
    torch.lerp(centre, rows[:, :, :, :-2], 0.25, out=result[..., 0])  # left output column
    torch.lerp(centre, rows[:, :, :, 2:], 0.25, out=result[..., 1])  # right output column
    return result.view(count, channels, 2 * height, 2 * width)


# --- rendering helpers ---------------------------------------------------------------------------


def splat_frames(image: torch.Tensor, displacements: torch.Tensor, importance: torch.Tensor | None,
                 mode: str = "softmax", fill: bool = True) -> torch.Tensor:
    """Render N frames (N, C, H, W) of image (C, H, W) or (1, C, H, W) moved by displacements (N, 2, H, W).

    Splats (and fills) a few frames at a time on CPU, so each frame's buffers stay in cache.
    """
    if image.dim() == 3:
        image = image[None]  # (1, C, H, W)
    displacements = torch.as_tensor(displacements, device=image.device)
    num_frames, _, height, width = displacements.shape
    frames_per_pass = _frames_per_pass(image.device, num_frames, height, width)
    frames = []
    for start in range(0, num_frames, frames_per_pass):
        frame_range = slice(start, start + frames_per_pass)
        importance_here = importance[frame_range] if importance is not None and importance.shape[0] > 1 \
            else importance
        chunk, holes = splat(image, displacements[frame_range], mode=mode, importance=importance_here,
                             return_holes=True)  # (n, C, H, W), (n, 1, H, W)
        frames.append(fill_holes(chunk, holes) if fill else chunk)
    return torch.cat(frames) if len(frames) > 1 else frames[0]


def backward_warp_torch(image: torch.Tensor, displacements: torch.Tensor) -> torch.Tensor:
    """Backward warp with grid_sample: frame(p) = image(p - F(p)), (N, C, H, W); the speed reference.

    image (C, H, W) or (1 or N, C, H, W), displacements (N, 2, H, W) pixels; reflects at the border.
    """
    if image.dim() == 3:
        image = image[None]
    num_frames, _, height, width = displacements.shape
    displacements = displacements.to(device=image.device, dtype=image.dtype)
    rows = torch.arange(height, device=image.device, dtype=image.dtype).view(1, height, 1)
    columns = torch.arange(width, device=image.device, dtype=image.dtype).view(1, 1, width)
    # Normalized coordinates in [-1, 1], pixel centres at the ends (align_corners=True).
    sample_x = (columns - displacements[:, 0]) * (2 / max(width - 1, 1)) - 1  # (N, H, W)
    sample_y = (rows - displacements[:, 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack([sample_x, sample_y], dim=-1)  # (N, H, W, 2)
    image = image.expand(num_frames, -1, -1, -1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
