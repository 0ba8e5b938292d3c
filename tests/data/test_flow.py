"""Tests for app.data.synthetic (known motion) and app.data.flow (flow from a start frame)."""

import numpy as np
import pytest

from app.data.flow import (
    DEFAULT_METHOD,
    FLOW_METHODS,
    estimate_flow,
    flow_from_start,
)
from app.data.synthetic import (
    flow_error,
    render_synthetic_video,
    sinusoidal_motion_texture,
    textured_image,
    warp_forward,
)

H, W = 96, 160


def _dot_image(x: float, y: float, sigma: float = 1.5) -> np.ndarray:
    """A black uint8 RGB image with one bright Gaussian dot at (x, y)."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    dot = 255.0 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.rint(dot).astype(np.uint8)[..., None], 3, axis=2)


def _centroid(image: np.ndarray) -> tuple[float, float]:
    weight = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return float((xs * weight).sum() / weight.sum()), float((ys * weight).sum() / weight.sum())


# --- synthetic videos -------------------------------------------------------------------------


def test_textured_image_is_deterministic_rgb():
    a = textured_image(H, W, seed=3)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, textured_image(H, W, seed=3))
    assert not np.array_equal(a, textured_image(H, W, seed=4))
    assert a.std() > 20  # textured, not flat


def test_motion_texture_shape_start_and_cap():
    motion = sinusoidal_motion_texture(H, W, num_frames=30, fps=10, seed=1, max_amplitude_px=5.0)
    assert motion.shape == (30, 2, H, W) and motion.dtype == np.float32
    assert np.all(motion[0] == 0)
    magnitude = np.sqrt((motion**2).sum(axis=1))
    assert magnitude.max() <= 5.0 + 1e-4
    assert magnitude.max() > 1.0
    assert (magnitude.max(axis=0) < 1e-3).mean() > 0.05  # some pixels never move
    assert np.array_equal(motion, sinusoidal_motion_texture(H, W, 30, 10, 1, 5.0))


def test_renderer_moves_a_dot_by_a_uniform_displacement():
    x0, y0, dx, dy = 70.0, 40.0, 3.3, -2.6
    motion = np.zeros((2, 2, H, W), np.float32)
    motion[1, 0], motion[1, 1] = dx, dy
    frames = render_synthetic_video(_dot_image(x0, y0), motion)
    cx, cy = _centroid(frames[1])
    assert abs(cx - (x0 + dx)) < 0.1 and abs(cy - (y0 + dy)) < 0.1


def test_renderer_moves_a_dot_by_a_smooth_displacement():
    # A smooth displacement bump centred on the dot: the dot must move by F(dot).
    x0, y0 = 80.0, 48.0
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    bump = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * 20.0**2))
    motion = np.zeros((2, 2, H, W), np.float32)
    motion[1, 0], motion[1, 1] = 6.0 * bump, 4.0 * bump
    cx, cy = _centroid(render_synthetic_video(_dot_image(x0, y0), motion)[1])
    # Near the bump's peak F is ~ (6, 4); the bump falls off slightly within the moved dot.
    assert abs(cx - (x0 + 6.0)) < 0.25 and abs(cy - (y0 + 4.0)) < 0.25


def test_zero_motion_gives_identical_frames():
    image = textured_image(H, W, seed=0)
    frames = render_synthetic_video(image, np.zeros((5, 2, H, W), np.float32))
    assert frames.shape == (5, H, W, 3) and frames.dtype == np.uint8
    assert all(np.array_equal(frame, image) for frame in frames)


def test_flow_error_values():
    truth = np.zeros((2, 2, H, W), np.float32)
    truth[:, 0, :, : W // 2] = 2.0  # left half moves
    estimated = truth.copy()
    estimated[:, 0] += 0.3
    estimated[:, 1] += 0.4
    error = flow_error(estimated, truth)
    assert error["epe"] == pytest.approx(0.5, abs=1e-5)
    assert error["epe_median"] == pytest.approx(0.5, abs=1e-5)
    assert error["epe_p95"] == pytest.approx(0.5, abs=1e-5)
    assert error["epe_moving"] == pytest.approx(0.5, abs=1e-5)
    assert error["moving_fraction"] == pytest.approx(0.5, abs=1e-3)


# --- optical flow -----------------------------------------------------------------------------


def test_registry_has_the_candidates():
    for name in ("farneback", "dis", "dis_refined", "deepflow", "tvl1"):
        assert name in FLOW_METHODS
    assert DEFAULT_METHOD in FLOW_METHODS


def test_flow_from_start_shape_dtype_and_progress():
    frames = np.stack([textured_image(H, W, seed=0)] * 4)
    calls = []
    flows = flow_from_start(frames, "dis", progress=lambda done, total: calls.append((done, total)))
    assert flows.shape == (3, 2, H, W) and flows.dtype == np.float32
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert np.abs(flows).max() < 0.05  # identical frames: no motion


@pytest.mark.parametrize("method", [DEFAULT_METHOD, "dis_refined"])
def test_constant_translation_is_recovered(method):
    dx, dy = 2.5, -1.5
    image = textured_image(H, W, seed=5)
    displacement = np.stack([np.full((H, W), dx), np.full((H, W), dy)]).astype(np.float32)
    moved = warp_forward(image, displacement)
    flow = estimate_flow(image, moved, method)
    assert flow.shape == (2, H, W) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]  # the borders are reflections, not translated content
    error = np.sqrt((inner[0] - dx) ** 2 + (inner[1] - dy) ** 2)
    assert error.mean() < 0.2


@pytest.mark.parametrize("seed", [0, 1])
def test_default_method_recovers_sinusoidal_motion(seed):
    # Measured with deepflow at 96x160, 9 frames, 2 grey levels of noise: epe_moving 0.10-0.12.
    image = textured_image(H, W, seed)
    edge = 4.0 if seed % 2 else None
    truth = sinusoidal_motion_texture(H, W, 9, 8.0, seed, 6.0, edge_sigma_px=edge)
    frames = render_synthetic_video(image, truth, noise_std=2.0, seed=seed)
    flows = flow_from_start(frames)
    error = flow_error(flows, truth[1:])
    zero = flow_error(np.zeros_like(flows), truth[1:])
    assert error["epe_moving"] < 0.25
    assert error["epe_moving"] < 0.2 * zero["epe_moving"]


def test_chained_and_direct_agree_roughly():
    image = textured_image(H, W, seed=2)
    truth = sinusoidal_motion_texture(H, W, 6, 8.0, 2, 5.0)
    frames = render_synthetic_video(image, truth)
    direct = flow_from_start(frames, "dis", chained=False)
    chained = flow_from_start(frames, "dis", chained=True)
    assert flow_error(direct, truth[1:])["epe_moving"] < 0.3
    assert flow_error(chained, truth[1:])["epe_moving"] < 0.3


def test_benchmark_smoke():
    from app.eval.flow_accuracy import main, run_flow_benchmark

    rows = run_flow_benchmark(sizes=((96, 64),), num_frames=4, seeds=(0,), methods=["flow-dis"])
    names = [row["name"] for row in rows]
    assert names == ["zero", "flow-dis"]
    zero, dis = rows
    assert dis["epe"] < zero["epe"] and dis["ratio"] == 1.0 and zero["ratio"] > 1.0
    assert {"size", "epe", "epe_moving", "seconds_per_flow", "ratio"} <= set(dis)
    assert main(["--list"]) == 0
