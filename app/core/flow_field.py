"""The flow layer: a static velocity field for things that flow (water, clouds, smoke) and its loop.

Eulerian motion (Holynski et al., "Animating Pictures with Eulerian Motion Fields", CVPR 2021):
one velocity field M (2, H, W), pixels per frame, x then y, moves every pixel along its stream:

    F_0(p) = 0,   F_{t+1}(p) = F_t(p) + M(p + F_t(p))        M sampled bilinearly, clamped at the border

F_t(p) is where the photo's pixel p has travelled after t frames. A loop of N frames shows at
frame t the photo splatted forward along F_t with weight 1 - t/N and backward along G_{N-t}, the
integration of -M for N - t frames, with weight t/N (symmetric splatting, app/render/flow.py). At
t = 0 and at t = N both reduce to the still photo, so the loop closes by construction.

Artists do not paint M: they give hints (FlowHints), in the pixel coordinates of the photo:
    arrows   (x, y, dx, dy): the fluid at (x, y) moves by (dx, dy) pixels in one second (so the
             arrow's length is its speed); the arrow's drawn segment takes that velocity up to where the fluid ends.
    anchors  (x, y): points that stay still (a disc of ANCHOR_RADIUS_FRACTION of the long side).
    mask     float (h, w) in [0, 1], any size: where the fluid is; None means everywhere.
velocity_from_hints turns them into a dense M by a screened membrane (Laplace) interpolation solved
on the fluid mask only (Neumann at its edges, so velocities do not leak across dry land), on a
grid of at most SOLVE_MAX_SIDE pixels, upsampled, multiplied by the mask and zeroed at anchors.

Files: a flow .npz holds `velocity` (float32 (2, H, W)), `num_frames` (N) and `fps`.
No Qt here; integration runs in torch on any device.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field, replace

import numpy as np

DEFAULT_FLOW_FRAMES = 90  # a 3-second loop at 30 fps
DEFAULT_FLOW_FPS = 30.0
SOLVE_MAX_SIDE = 160  # the interpolation is solved on a grid this long at most, then upsampled
SCREENING = 1e-4  # pulls velocities towards 0 far (about 1 / sqrt(SCREENING) cells) from any hint
ANCHOR_RADIUS_FRACTION = 0.012  # anchor disc radius, of the photo's long side (6 px at 512)
MASK_THRESHOLD = 0.5  # a mask value above this is fluid


class FlowFileError(ValueError):
    """A flow file that cannot be read or is not a valid flow field (one clear sentence)."""


class FlowHintError(ValueError):
    """Hints that cannot make a flow (one clear sentence)."""


@dataclass(frozen=True, eq=False)
class FlowField:
    """A static velocity field and the loop it plays in.

    velocity: float32 (2, H, W), pixels per frame on the H x W grid, x then y.
    num_frames: N, the length of the loop in frames.
    fps: frames per second of the loop.
    """

    velocity: np.ndarray
    num_frames: int = DEFAULT_FLOW_FRAMES
    fps: float = DEFAULT_FLOW_FPS

    def __post_init__(self):
        velocity = np.asarray(self.velocity)
        if velocity.ndim != 3 or velocity.shape[0] != 2 or min(velocity.shape[1:]) < 1:
            raise ValueError(f"A velocity field must have shape (2, H, W); got {velocity.shape}.")
        if int(self.num_frames) < 2:
            raise ValueError(f"A flow loop needs at least 2 frames; got {self.num_frames}.")
        if not float(self.fps) > 0:
            raise ValueError(f"fps must be positive; got {self.fps}.")
        object.__setattr__(self, "velocity", velocity.astype(np.float32, copy=False))
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def height(self) -> int:
        return self.velocity.shape[1]

    @property
    def width(self) -> int:
        return self.velocity.shape[2]

    def speed(self) -> np.ndarray:
        """|M| in pixels per frame, float32 (H, W)."""
        return np.sqrt(np.square(self.velocity).sum(axis=0))


def uniform_flow(height: int, width: int, vx: float, vy: float, num_frames: int = DEFAULT_FLOW_FRAMES,
                 fps: float = DEFAULT_FLOW_FPS) -> FlowField:
    """Every pixel moves by (vx, vy) pixels per frame."""
    velocity = np.empty((2, height, width), np.float32)
    velocity[0], velocity[1] = vx, vy
    return FlowField(velocity, num_frames, fps)


def scale_flow(flow: FlowField, factor: float) -> FlowField:
    """Multiply every velocity by factor (the speed control)."""
    return replace(flow, velocity=flow.velocity * np.float32(factor))


def resize_flow(flow: FlowField, height: int, width: int) -> FlowField:
    """Resample the velocity to height x width; velocities scale with the grid."""
    import cv2

    if (height, width) == (flow.height, flow.width):
        return flow
    shrinking = height * width < flow.height * flow.width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    scale = (width / flow.width, height / flow.height)
    velocity = np.stack([cv2.resize(np.ascontiguousarray(flow.velocity[axis]), (width, height),
                                    interpolation=interpolation) * np.float32(scale[axis])
                         for axis in range(2)])  # (2, height, width)
    return replace(flow, velocity=velocity.astype(np.float32))


# --- hints -> dense velocity -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FlowHints:
    """What the artist gave: arrows, anchors and a fluid mask, in the coordinates of a width x height photo.

    arrows: float64 (n, 4) rows (x, y, dx, dy); (dx, dy) is the travel in one second at speed 1.
    anchors: float64 (m, 2) rows (x, y).
    mask: float32 (h, w) in [0, 1] at any size (resized to the grid), or None for everywhere.
    speed: multiplies every arrow.
    num_frames, fps: the loop.
    """

    width: int
    height: int
    arrows: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    anchors: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    mask: np.ndarray | None = None
    speed: float = 1.0
    num_frames: int = DEFAULT_FLOW_FRAMES
    fps: float = DEFAULT_FLOW_FPS

    def __post_init__(self):
        arrows = np.asarray(self.arrows, np.float64).reshape(-1, 4)
        anchors = np.asarray(self.anchors, np.float64).reshape(-1, 2)
        object.__setattr__(self, "arrows", arrows)
        object.__setattr__(self, "anchors", anchors)
        if self.mask is not None:
            mask = np.asarray(self.mask, np.float32)
            if mask.ndim != 2:
                raise FlowHintError(f"The fluid mask must be a grey (H, W) image; got shape {mask.shape}.")
            object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "speed", float(self.speed))

    def same_as(self, other: "FlowHints | None") -> bool:
        """Exactly the same hints (arrays compared element by element)."""
        if other is None:
            return False
        masks_equal = (self.mask is None and other.mask is None) or (
            self.mask is not None and other.mask is not None and self.mask.shape == other.mask.shape
            and bool(np.array_equal(self.mask, other.mask)))
        return (masks_equal and (self.width, self.height, self.speed, self.num_frames, self.fps)
                == (other.width, other.height, other.speed, other.num_frames, other.fps)
                and np.array_equal(self.arrows, other.arrows) and np.array_equal(self.anchors, other.anchors))


def anchor_radius(width: int, height: int) -> float:
    """Radius in pixels of the still disc around an anchor."""
    return max(1.5, ANCHOR_RADIUS_FRACTION * max(width, height))


def check_hints(hints: FlowHints) -> None:
    """Raise FlowHintError with one sentence for hints that cannot make a flow."""
    if hints.width < 2 or hints.height < 2:
        raise FlowHintError(f"The photo is too small for a flow ({hints.width}x{hints.height}).")
    if hints.num_frames < 2:
        raise FlowHintError(f"A flow loop needs at least 2 frames; got {hints.num_frames}.")
    if not hints.fps > 0 or not math.isfinite(hints.fps):
        raise FlowHintError(f"The loop's fps must be positive; got {hints.fps}.")
    if not math.isfinite(hints.speed) or hints.speed < 0:
        raise FlowHintError(f"The speed must be zero or positive; got {hints.speed}.")
    if len(hints.arrows) == 0:
        raise FlowHintError("Draw at least one arrow to show which way the fluid flows.")
    if not np.all(np.isfinite(hints.arrows)) or not np.all(np.isfinite(hints.anchors)):
        raise FlowHintError("An arrow or anchor has a coordinate that is not a number.")
    mask = None
    if hints.mask is not None:
        mask = _mask_at(hints.mask, hints.height, hints.width)
        if not np.any(mask > MASK_THRESHOLD):
            raise FlowHintError("The fluid mask has no pixels; paint where the fluid is.")
    for number, (x, y, dx, dy) in enumerate(hints.arrows, start=1):
        if not _inside(x, y, hints.width, hints.height):
            raise FlowHintError(f"Arrow {number} starts at ({x:g}, {y:g}), outside the "
                                f"{hints.width}x{hints.height} photo.")
        if math.hypot(dx, dy) < 1e-6:
            raise FlowHintError(f"Arrow {number} has zero length; drag to give it a direction and speed.")
        if mask is not None and mask[int(y), int(x)] <= MASK_THRESHOLD:
            raise FlowHintError(f"Arrow {number} starts outside the fluid mask; paint the fluid there or move it.")
    for number, (x, y) in enumerate(hints.anchors, start=1):
        if not _inside(x, y, hints.width, hints.height):
            raise FlowHintError(f"Anchor {number} at ({x:g}, {y:g}) is outside the "
                                f"{hints.width}x{hints.height} photo.")


def _inside(x: float, y: float, width: int, height: int) -> bool:
    return 0 <= x <= width - 1 and 0 <= y <= height - 1


def _mask_at(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """The mask, float32 (height, width) in [0, 1]."""
    import cv2

    mask = np.clip(np.asarray(mask, np.float32), 0, 1)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return mask


def velocity_from_hints(hints: FlowHints, height: int, width: int) -> np.ndarray:
    """Dense velocity float32 (2, height, width) in pixels per frame of that grid, from the hints."""
    check_hints(hints)
    scale = max(width, height) / SOLVE_MAX_SIDE
    solve_width = max(2, min(width, int(round(width / max(scale, 1)))))
    solve_height = max(2, min(height, int(round(height / max(scale, 1)))))
    coarse = _solve_velocity(hints, solve_height, solve_width)  # (2, h, w) in pixels of the hint photo
    import cv2

    grid_scale = (width / hints.width, height / hints.height)  # hint-photo pixels -> grid pixels
    velocity = np.stack([cv2.resize(coarse[axis], (width, height), interpolation=cv2.INTER_LINEAR)
                         * np.float32(grid_scale[axis]) for axis in range(2)])  # (2, H, W)
    if hints.mask is not None:
        velocity *= _mask_at(hints.mask, height, width)[None]
    velocity *= (~_anchor_discs(hints, height, width))[None]
    return velocity.astype(np.float32)


def flow_from_hints(hints: FlowHints, height: int, width: int) -> FlowField:
    """The FlowField of the hints on a height x width grid."""
    return FlowField(velocity_from_hints(hints, height, width), hints.num_frames, hints.fps)


def _anchor_discs(hints: FlowHints, height: int, width: int) -> np.ndarray:
    """bool (height, width): True within an anchor's disc."""
    still = np.zeros((height, width), bool)
    if len(hints.anchors) == 0:
        return still
    sx, sy = width / hints.width, height / hints.height
    radius = anchor_radius(hints.width, hints.height)
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    for x, y in hints.anchors:
        # distance measured in hint-photo pixels, so the disc is the same on any grid
        still |= ((columns + 0.5) / sx - 0.5 - x) ** 2 + ((rows + 0.5) / sy - 0.5 - y) ** 2 <= radius ** 2
        still[min(height - 1, max(0, int(round((y + 0.5) * sy - 0.5)))),
              min(width - 1, max(0, int(round((x + 0.5) * sx - 0.5))))] = True
    return still


def _solve_velocity(hints: FlowHints, height: int, width: int) -> np.ndarray:
    """Screened membrane interpolation of the arrow velocities on the fluid cells of a height x width grid.

    Unknowns: fluid cells. Arrow segments fix their cells to the arrow's velocity, anchors fix
    theirs to 0 (anchors win). Every other fluid cell satisfies
        sum over fluid neighbours (v_i - v_j) + SCREENING * v_i = 0,
    Neumann at the fluid's edge. Returns float32 (2, height, width), pixels per frame of the hint photo.
    """
    import scipy.sparse as sparse
    from scipy.sparse.linalg import splu

    sx, sy = width / hints.width, height / hints.height  # hint-photo pixels -> cells
    if hints.mask is not None:
        fluid = _mask_at(hints.mask, height, width) > 0.05  # keep thin streams on the coarse grid
    else:
        fluid = np.ones((height, width), bool)
    fixed = np.zeros((height, width), bool)
    fixed_value = np.zeros((2, height, width), np.float64)
    per_frame = hints.speed / hints.fps  # one second of travel -> one frame
    for x, y, dx, dy in hints.arrows:
        length = math.hypot(dx * sx, dy * sy)
        for step in np.linspace(0.0, 1.0, max(2, int(math.ceil(length)) + 1)):
            column = int(np.clip(round((x + step * dx + 0.5) * sx - 0.5), 0, width - 1))
            row = int(np.clip(round((y + step * dy + 0.5) * sy - 0.5), 0, height - 1))
            if not fluid[row, column] and step > 0.0:
                break  # the arrow's segment ends where the fluid does
            fluid[row, column] = True
            fixed[row, column] = True
            fixed_value[:, row, column] = (dx * per_frame, dy * per_frame)
    still = _anchor_discs(hints, height, width)
    fixed |= still & fluid
    fixed_value[:, still] = 0.0

    free = fluid & ~fixed
    unknown = -np.ones((height, width), np.int64)
    count = int(free.sum())
    unknown[free] = np.arange(count)
    degree = np.zeros(count)
    right = np.zeros((count, 2))
    link_rows, link_columns = [], []
    # Each 4-neighbour link between fluid cells, seen from both ends.
    for dr, dc in ((0, 1), (1, 0)):
        both = fluid[: height - dr, : width - dc] & fluid[dr:, dc:]
        first = np.argwhere(both)  # (L, 2) rows, columns of the first cell
        second = first + (dr, dc)
        for here, there in ((first, second), (second, first)):
            here_free = free[here[:, 0], here[:, 1]]
            here, there = here[here_free], there[here_free]
            i = unknown[here[:, 0], here[:, 1]]
            np.add.at(degree, i, 1.0)
            there_free = free[there[:, 0], there[:, 1]]
            link_rows.append(i[there_free])
            link_columns.append(unknown[there[there_free, 0], there[there_free, 1]])
            known = there[~there_free]
            np.add.at(right, i[~there_free], fixed_value[:, known[:, 0], known[:, 1]].T)
    velocity = np.zeros((2, height, width), np.float32)
    velocity[:, fixed] = fixed_value[:, fixed]
    if count:
        rows = np.concatenate(link_rows)
        columns = np.concatenate(link_columns)
        matrix = sparse.csc_matrix((-np.ones(len(rows)), (rows, columns)), shape=(count, count)) \
            + sparse.diags(degree + SCREENING, format="csc")
        solution = splu(matrix).solve(right)  # (count, 2)
        velocity[:, free] = solution.T
    return velocity


# --- integration -------------------------------------------------------------------------------


class Trajectory:
    """F_k of one velocity field for any k >= 0, F_{k+1}(p) = F_k(p) + M(p + F_k(p)).

    Keeps a checkpoint every `every` steps and the segment of fields last asked for, so reading
    k in any order costs at most about 2 steps per field and memory for about 2 sqrt(N) fields.
    velocity: torch (2, H, W) on any device.
    """

    def __init__(self, velocity, every: int = 8):
        import torch

        self.velocity = velocity[None]  # (1, 2, H, W)
        self.every = max(1, int(every))
        height, width = velocity.shape[1:]
        # grid_sample's normalized coordinates (align_corners=True): pixel i -> i * scale - 1
        self.scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], dtype=velocity.dtype,
                                  device=velocity.device).view(2, 1, 1)
        columns = torch.arange(width, device=velocity.device, dtype=velocity.dtype).view(1, width).expand(height, width)
        rows = torch.arange(height, device=velocity.device, dtype=velocity.dtype).view(height, 1).expand(height, width)
        self.base = torch.stack([columns, rows]) * self.scale - 1  # (2, H, W)
        # A pixel whose velocity is exactly 0 never leaves it: F_t = 0 there for every t. Multiplying
        # by this keeps that exact despite rounding in the normalized coordinates.
        self.moving = (velocity != 0).any(dim=0, keepdim=True).to(velocity.dtype)  # (1, H, W)
        self.checkpoints = {0: torch.zeros_like(velocity)}
        self.segment_start = None
        self.segment = []

    def step(self, displacement, fraction: float = 1.0):
        """F_{k+f} from F_k, both (2, H, W): F_k(p) + f M(p + F_k(p)), M sampled bilinearly, clamped at the border."""
        import torch.nn.functional as F

        grid = (self.base + displacement * self.scale).permute(1, 2, 0)[None]  # (1, H, W, 2)
        moved = F.grid_sample(self.velocity, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
        return (displacement + moved * fraction) * self.moving

    def at_time(self, t: float):
        """F_t for a fractional t >= 0: the last step is taken in part (F_k + f M(p + F_k))."""
        whole = int(math.floor(t))
        fraction = float(t) - whole
        if fraction < 1e-9:
            return self.at(whole)
        return self.step(self.at(whole), fraction)

    def at(self, k: int):
        """F_k, torch (2, H, W)."""
        if k < 0:
            raise ValueError(f"A trajectory has no frame {k}.")
        start = (k // self.every) * self.every
        if self.segment_start != start:
            base = max(c for c in self.checkpoints if c <= start)
            current = self.checkpoints[base]
            for index in range(base, start):
                current = self.step(current)
                if (index + 1) % self.every == 0:
                    self.checkpoints[index + 1] = current
            segment = [current]
            for _ in range(self.every - 1):
                segment.append(self.step(segment[-1]))
            self.segment_start, self.segment = start, segment
        return self.segment[k - start]


def displacement_after(velocity, steps: int):
    """F_steps of a velocity field (torch or numpy (2, H, W)) -> the same type, (2, H, W)."""
    import torch

    as_numpy = isinstance(velocity, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(velocity)) if as_numpy else velocity
    result = Trajectory(tensor, every=max(1, steps + 1)).at(steps)
    return result.numpy() if as_numpy else result


def loop_weights(t: float, num_frames: int) -> tuple[float, float]:
    """(forward, backward) blend weights of frame t in an N-frame loop: (1 - t/N, t/N)."""
    backward = (t % num_frames) / num_frames if t != num_frames else 1.0
    return 1.0 - backward, backward


def checkpoint_spacing(num_frames: int) -> int:
    """About sqrt(N): balances recomputation against memory."""
    return max(1, int(math.ceil(math.sqrt(num_frames))))


# --- files -------------------------------------------------------------------------------------


def save_flow(path: str, flow: FlowField) -> None:
    """Write a .npz (velocity, num_frames, fps) atomically."""
    from app.atomic import atomic_write

    atomic_write(path, lambda file: np.savez(file, velocity=flow.velocity, num_frames=np.int64(flow.num_frames),
                                             fps=np.float64(flow.fps)), suffix=".npz")


def flow_from_arrays(velocity, num_frames, fps, name: str) -> FlowField:
    """Validate loaded arrays into a FlowField; FlowFileError (one sentence) names the file."""
    velocity = np.asarray(velocity)
    if not np.issubdtype(velocity.dtype, np.floating) or velocity.ndim != 3 or velocity.shape[0] != 2 \
            or min(velocity.shape[1:]) < 1:
        raise FlowFileError(f"Flow file '{name}' holds a velocity of shape {velocity.shape} and type "
                            f"{velocity.dtype}; expected float (2, H, W).")
    if not np.all(np.isfinite(velocity)):
        raise FlowFileError(f"Flow file '{name}' contains non-finite values.")
    if num_frames < 2 or not np.isfinite(fps) or fps <= 0:
        raise FlowFileError(f"Flow file '{name}' has inconsistent timing ({num_frames} frames, {fps} fps).")
    return FlowField(velocity, num_frames, fps)


def load_flow(path: str) -> FlowField:
    """Read and validate a flow .npz; any problem raises FlowFileError with one sentence."""
    name = os.path.basename(str(path))
    if not os.path.isfile(path):
        raise FlowFileError(f"Flow file '{name}' does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"velocity", "num_frames", "fps"} - set(data.files)
            if missing:
                raise FlowFileError(f"Flow file '{name}' lacks {', '.join(sorted(missing))}.")
            velocity = data["velocity"]
            num_frames = int(data["num_frames"])
            fps = float(data["fps"])
    except FlowFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as error:
        raise FlowFileError(f"Flow file '{name}' is truncated or not a flow file ({error}).") from None
    return flow_from_arrays(velocity, num_frames, fps, name)


# --- hints as plain data (projects, example files) ------------------------------------------------


def hints_to_dict(hints: FlowHints) -> dict:
    """JSON-ready description of the hints, without the mask (stored beside it as an image or array)."""
    return {"width": hints.width, "height": hints.height,
            "arrows": [[float(value) for value in arrow] for arrow in hints.arrows],
            "anchors": [[float(value) for value in anchor] for anchor in hints.anchors],
            "speed": hints.speed, "num_frames": hints.num_frames, "fps": hints.fps}


def hints_from_dict(values: dict, mask: np.ndarray | None = None) -> FlowHints:
    """Hints from hints_to_dict's output (and a mask); FlowHintError (one sentence) when it does not fit."""
    try:
        return FlowHints(width=int(values["width"]), height=int(values["height"]),
                         arrows=np.asarray(values.get("arrows") or [], np.float64).reshape(-1, 4),
                         anchors=np.asarray(values.get("anchors") or [], np.float64).reshape(-1, 2),
                         mask=mask, speed=float(values.get("speed", 1.0)),
                         num_frames=int(values.get("num_frames", DEFAULT_FLOW_FRAMES)),
                         fps=float(values.get("fps", DEFAULT_FLOW_FPS)))
    except (KeyError, TypeError, ValueError) as error:
        raise FlowHintError(f"The flow hints are malformed ({error}).") from None


def rescale_hints(hints: FlowHints, width: int, height: int) -> FlowHints:
    """The same hints for a width x height version of the photo (points and arrows scale with it)."""
    if (width, height) == (hints.width, hints.height):
        return hints
    scale = np.array([width / hints.width, height / hints.height])
    limit = np.array([width - 1, height - 1])
    points = lambda xy: np.clip((xy + 0.5) * scale - 0.5, 0, limit)  # noqa: E731 (pixel centres stay centres)
    arrows = np.concatenate([points(hints.arrows[:, :2]), hints.arrows[:, 2:] * scale], axis=1)
    return replace(hints, width=width, height=height, arrows=arrows, anchors=points(hints.anchors))
