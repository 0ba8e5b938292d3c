"""Optical flow from a start frame: the training signal of the motion model.

This module owns the choice of flow algorithm and its settings. The motion model learns
from the displacement of every start-frame pixel p at each later time t (start pixel p moves
to p + F_t(p)), so flow is always computed from frames[0] to frames[t], never frame to frame.

Flows are float32 (2, H, W) in pixels, channel 0 = x (right), channel 1 = y (down).
Frames are uint8 RGB (H, W, 3).

The candidates are classical coarse-to-fine methods from OpenCV (the paper found learned flow
too smooth): Farneback, DIS, DeepFlow, Dual TV-L1, PCA-Flow, and `dis_refined` (DIS plus a
longer full-resolution variational refinement). DEFAULT_METHOD and the default settings were
chosen by `python -m app.eval.flow_accuracy` on synthetic videos with known motion.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

__all__ = [
    "FlowMethod",
    "FLOW_METHODS",
    "DEFAULT_METHOD",
    "DEFAULT_CHAINED",
    "DEFAULT_WORKERS",
    "estimate_flow",
    "flow_from_start",
    "to_gray",
]

# A flow function: (start gray uint8 (H, W), frame gray uint8 (H, W), initial flow (H, W, 2)
# float32 or None, **settings) -> flow float32 (H, W, 2) in OpenCV layout.
FlowFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class FlowMethod:
    """A flow algorithm, its default settings, and whether it accepts an initial flow."""

    name: str
    compute: FlowFunction
    defaults: dict = field(default_factory=dict)
    supports_init: bool = False
    description: str = ""


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) or gray (H, W) -> uint8 gray (H, W)."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame, np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2GRAY)


# --- the candidate methods -------------------------------------------------------------------


def _farneback(
    start: np.ndarray,
    frame: np.ndarray,
    init: np.ndarray | None = None,
    pyr_scale: float = 0.5,
    levels: int = 5,
    winsize: int = 13,
    iterations: int = 5,
    poly_n: int = 5,
    poly_sigma: float = 1.1,
    gaussian: bool = False,
) -> np.ndarray:
    """Gunnar Farneback's polynomial-expansion flow (cv2.calcOpticalFlowFarneback)."""
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian else 0
    flow = None
    if init is not None:
        flow = init.copy()
        flags |= cv2.OPTFLOW_USE_INITIAL_FLOW
    return cv2.calcOpticalFlowFarneback(
        start, frame, flow, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags
    )


_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _dis(
    start: np.ndarray,
    frame: np.ndarray,
    init: np.ndarray | None = None,
    preset: str = "medium",
    finest_scale: int | None = 0,
    patch_size: int | None = None,
    patch_stride: int | None = None,
    gradient_descent_iterations: int | None = None,
    refinement_iterations: int | None = None,
    refinement_alpha: float | None = None,
) -> np.ndarray:
    """Dense Inverse Search (cv2.DISOpticalFlow); None keeps the preset's value.

    finest_scale = 0 runs the patch search at full resolution (the presets stop at 1 or 2).
    An initial flow of the right size and type is used as the coarse-to-fine start.
    """
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    if finest_scale is not None:
        dis.setFinestScale(finest_scale)
    if patch_size is not None:
        dis.setPatchSize(patch_size)
    if patch_stride is not None:
        dis.setPatchStride(patch_stride)
    if gradient_descent_iterations is not None:
        dis.setGradientDescentIterations(gradient_descent_iterations)
    if refinement_iterations is not None:
        dis.setVariationalRefinementIterations(refinement_iterations)
    if refinement_alpha is not None:
        dis.setVariationalRefinementAlpha(refinement_alpha)
    flow = None if init is None else init.copy()
    return dis.calc(start, frame, flow)


def _dis_refined(
    start: np.ndarray,
    frame: np.ndarray,
    init: np.ndarray | None = None,
    fixed_point_iterations: int = 10,
    sor_iterations: int = 20,
    alpha: float = 40.0,
    delta: float = 5.0,
    gamma: float = 10.0,
    presmooth_sigma: float = 0.6,
    **dis_settings,
) -> np.ndarray:
    """DIS followed by a longer, smoother variational refinement at full resolution.

    DIS already refines each pyramid level briefly (5 iterations, alpha 20); one more pass of
    cv2.VariationalRefinement (brightness + gradient constancy, smoothness weight alpha) on the
    final flow removes much of the patch noise, at about twice the cost of DIS alone. Both
    frames are first blurred by presmooth_sigma pixels against sensor/compression noise
    (DeepFlow does the same).
    """
    if presmooth_sigma > 0:
        start = cv2.GaussianBlur(start, (0, 0), presmooth_sigma)
        frame = cv2.GaussianBlur(frame, (0, 0), presmooth_sigma)
    flow = _dis(start, frame, init, **dis_settings)
    refine = cv2.VariationalRefinement_create()
    refine.setFixedPointIterations(fixed_point_iterations)
    refine.setSorIterations(sor_iterations)
    refine.setAlpha(alpha)
    refine.setDelta(delta)
    refine.setGamma(gamma)
    return refine.calc(start, frame, flow)


def _tvl1(
    start: np.ndarray,
    frame: np.ndarray,
    init: np.ndarray | None = None,
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    nscales: int = 5,
    warps: int = 5,
    epsilon: float = 0.01,
    inner_iterations: int = 30,
    outer_iterations: int = 10,
    scale_step: float = 0.8,
    gamma: float = 0.0,
    median_filtering: int = 5,
) -> np.ndarray:
    """Dual TV-L1 (cv2.optflow.DualTVL1OpticalFlow; Zach et al. 2007, Sanchez et al. 2013)."""
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=tau,
        lambda_=lambda_,
        theta=theta,
        nscales=nscales,
        warps=warps,
        epsilon=epsilon,
        innnerIterations=inner_iterations,  # (sic) OpenCV's spelling
        outerIterations=outer_iterations,
        scaleStep=scale_step,
        gamma=gamma,
        medianFiltering=median_filtering,
        useInitialFlow=init is not None,
    )
    flow = None if init is None else init.copy()
    return tvl1.calc(start, frame, flow)


def _deepflow(start: np.ndarray, frame: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
    """DeepFlow's variational core (cv2.optflow, without DeepMatching); ignores `init`."""
    return cv2.optflow.createOptFlow_DeepFlow().calc(start, frame, None)


def _pcaflow(start: np.ndarray, frame: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
    """PCA-Flow (cv2.optflow): sparse matches fitted to a learned low-dimensional flow basis."""
    return cv2.optflow.createOptFlow_PCAFlow().calc(start, frame, None)


def _zero(start: np.ndarray, frame: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
    """Baseline: no motion."""
    return np.zeros(start.shape + (2,), np.float32)


def _register_methods() -> dict[str, FlowMethod]:
    methods = {
        "zero": FlowMethod("zero", _zero, {}, False, "no motion (baseline)"),
        "farneback": FlowMethod("farneback", _farneback, {}, True, "Farneback polynomial expansion"),
        "dis": FlowMethod("dis", _dis, {}, True, "DIS, medium preset at full resolution"),
        "dis_refined": FlowMethod(
            "dis_refined", _dis_refined, {}, True, "DIS + full-resolution variational refinement"
        ),
    }
    if hasattr(cv2, "optflow"):
        methods["tvl1"] = FlowMethod("tvl1", _tvl1, {}, True, "Dual TV-L1")
        methods["deepflow"] = FlowMethod("deepflow", _deepflow, {}, False, "DeepFlow (no matching)")
        methods["pcaflow"] = FlowMethod("pcaflow", _pcaflow, {}, False, "PCA-Flow")
    return methods


FLOW_METHODS: dict[str, FlowMethod] = _register_methods()

# Chosen by `python -m app.eval.flow_accuracy` (synthetic oscillations, 2 grey levels of noise,
# 6 videos x 20 flows; mean EPE on moving pixels; seconds per flow, one thread, 2-core machine):
#   256x160, up to 12 px, held-out seeds 10-12: deepflow 0.059 (0.11 s) < dis_refined 0.065
#     (0.025 s) < tvl1 chained 0.068 (0.35 s) < dis 0.090 (0.013 s) < farneback 0.133 (0.010 s);
#     zero flow 1.20. On the default seeds 0-2 deepflow and dis_refined tie (0.072).
#   512x288, up to 24 px: deepflow 0.103 (0.40 s) < tvl1 chained 0.115 < dis_refined 0.128 (0.09 s).
#   256x160, up to 20 px: dis_refined 0.087 < tvl1 chained 0.101 < deepflow 0.109 < dis 0.115.
# Extraction runs at 256x160, where dis_refined ties DeepFlow on seeds 0-2 (0.072 vs 0.072), trails it
# by 11% on held-out seeds, and wins by 25% on large motion (20 px). On real footage (no ground
# truth: residual of frame 0 against each later frame warped back along the flow) dis_refined
# explains more of the motion than DeepFlow (straw 17.2 vs 19.4, flag 11.2 vs 16.1; zero flow 21.7
# and 19.5), and it is 4.4x faster (3.6 s vs 17 s per 149-flow window). So dis_refined is the
# default; DeepFlow stays available (--flow deepflow) for small-motion footage at 512x288.
DEFAULT_METHOD = "dis_refined"
# Initialise the flow to frame t with the flow to frame t-1 (methods that accept one). Measured:
# no gain for Farneback, 3-9% worse for DIS; only TV-L1 gains (and DeepFlow cannot take one).
DEFAULT_CHAINED = False
# Threads for independent (not chained) flows; OpenCV releases the GIL while computing.
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


# --- public API -------------------------------------------------------------------------------


def _method(method: str) -> FlowMethod:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose from {sorted(FLOW_METHODS)}")
    return FLOW_METHODS[method]


def _estimate_gray(
    spec: FlowMethod, start: np.ndarray, frame: np.ndarray, init: np.ndarray | None, settings: dict
) -> np.ndarray:
    """Flow between gray frames in OpenCV layout: float32 (H, W, 2)."""
    if not spec.supports_init:
        init = None
    flow = spec.compute(start, frame, init, **{**spec.defaults, **settings})
    return np.asarray(flow, np.float32)


def estimate_flow(
    start_frame: np.ndarray,
    frame: np.ndarray,
    method: str = DEFAULT_METHOD,
    init: np.ndarray | None = None,
    **settings,
) -> np.ndarray:
    """Forward flow start_frame -> frame: float32 (2, H, W), pixels, channel 0 = x, 1 = y.

    start_frame, frame: uint8 RGB (H, W, 3). init: optional initial flow (2, H, W), used by
    methods that support it. settings override the method's default settings.
    """
    spec = _method(method)
    if start_frame.shape[:2] != frame.shape[:2]:
        raise ValueError(f"frame sizes differ: {start_frame.shape} vs {frame.shape}")
    init_cv = None if init is None else np.ascontiguousarray(np.moveaxis(init, 0, -1), np.float32)
    flow = _estimate_gray(spec, to_gray(start_frame), to_gray(frame), init_cv, settings)  # (H, W, 2)
    return np.ascontiguousarray(np.moveaxis(flow, -1, 0))  # (2, H, W)


def flow_from_start(
    frames: np.ndarray,
    method: str = DEFAULT_METHOD,
    progress: Callable[[int, int], None] | None = None,
    chained: bool = DEFAULT_CHAINED,
    workers: int = DEFAULT_WORKERS,
    **settings,
) -> np.ndarray:
    """Flow from frames[0] to each of frames[1:]: float32 (N-1, 2, H, W).

    frames: uint8 RGB (N, H, W, 3) or a sequence of such frames.
    progress: optional callback progress(done, total) after each flow.
    chained: start the flow to frame t from the flow to frame t-1 (methods that support it).
    workers: threads computing independent flows (ignored when chained).
    settings override the method's default settings.
    """
    spec = _method(method)
    num = len(frames)
    if num < 2:
        raise ValueError("flow_from_start needs at least 2 frames")
    start = to_gray(frames[0])
    height, width = start.shape
    flows = np.empty((num - 1, 2, height, width), np.float32)
    chained = chained and spec.supports_init

    def one(t: int, init: np.ndarray | None) -> np.ndarray:  # (H, W, 2)
        return _estimate_gray(spec, start, to_gray(frames[t]), init, settings)

    if chained or workers <= 1:
        previous = None  # (H, W, 2)
        for t in range(1, num):
            previous = one(t, previous if chained else None)
            flows[t - 1] = np.moveaxis(previous, -1, 0)
            if progress is not None:
                progress(t, num - 1)
        return flows

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda t: one(t, None), range(1, num))
        for t, flow in enumerate(results, start=1):
            flows[t - 1] = np.moveaxis(flow, -1, 0)
            if progress is not None:
                progress(t, num - 1)
    return flows
