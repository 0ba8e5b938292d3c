"""Rendering the flow layer: the symmetric loop, its seam, sway plus flow, timing and devices."""

import numpy as np
import pytest
import torch

from app.core.flow_field import FlowField, FlowHints, flow_from_hints, uniform_flow
from app.core.spectral import motion_from_texture
from app.render.export import seam_error
from app.render.flow import FlowLoop, softmax_weights, splat_symmetric
from app.render.frames import RenderSettings, frame_count, render_loop

HEIGHT, WIDTH = 48, 64


def textured_photo(height=HEIGHT, width=WIDTH, seed=0):
    """uint8 (H, W, 3): smooth stripes plus fine noise, so motion shows everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [np.sin(x * rng.uniform(0.2, 0.5) + y * rng.uniform(0.1, 0.4) + rng.uniform(0, 6)) for _ in range(3)]
    image = np.stack(channels, axis=-1) * 0.4 + 0.5 + rng.normal(0, 0.05, (height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def river(num_frames=24):
    """A band of water through the middle flowing right, still banks above and below."""
    mask = np.zeros((HEIGHT, WIDTH), np.float32)
    mask[14:34] = 1.0
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[8, 24, 30, 0], [40, 20, 24, 6]], mask=mask, num_frames=num_frames)
    return flow_from_hints(hints, HEIGHT, WIDTH), mask


def as_tensor(image):
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)


def to_uint8(frames):
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def render_at(image, flow, times, period):
    """Frames at flow times `times` (may include 0 and the period) of a loop of `period` frames."""
    loop = FlowLoop(torch.from_numpy(flow.velocity), period)
    fields = [loop.fields(t) for t in times]
    forward = torch.stack([f for f, _, _ in fields])
    backward = torch.stack([g for _, g, _ in fields])
    share = torch.tensor([s for _, _, s in fields])
    weights = softmax_weights(torch.from_numpy(flow.speed())[None, None])
    return to_uint8(splat_symmetric(as_tensor(image), weights, forward, backward, share))


def test_frame_0_and_frame_n_render_the_photo_identically():
    image = textured_photo()
    flow, _ = river()
    first, middle, last = render_at(image, flow, [0, 12, 24], 24)
    np.testing.assert_array_equal(first, image)
    np.testing.assert_array_equal(last, image)
    assert np.abs(middle.astype(int) - image).mean() > 2  # in between, the water has moved


def test_a_uniform_field_translates_the_photo():
    image = textured_photo()
    flow = uniform_flow(HEIGHT, WIDTH, 2.0, 1.0, num_frames=10)
    (frame,) = render_at(image, flow, [3], 1000)  # backward share 0.003: the forward splat dominates
    # pixel p moves to p + (6, 3): away from the borders the frame is the photo shifted
    np.testing.assert_allclose(frame[10:40, 12:56].astype(int), image[7:37, 6:50].astype(int), atol=2)


def test_still_banks_stay_exactly_the_photo():
    image = textured_photo()
    flow, mask = river()
    frames = render_at(image, flow, [5, 12, 19], 24)
    dry = np.zeros_like(mask, bool)
    dry[:8], dry[40:] = True, True  # well away from the water's edge
    for frame in frames:
        np.testing.assert_array_equal(frame[dry], image[dry])


def steps_of(frames):
    """Mean absolute difference of each frame to the next, the wrap (last to first) excluded."""
    return [float(np.abs(b.astype(int) - a).mean()) for a, b in zip(frames, frames[1:])]


def test_the_wrap_is_no_bigger_a_step_than_the_steps_beside_it():
    image = textured_photo()
    flow, _ = river()
    frames = list(render_loop(image, None, RenderSettings(device="cpu"), flow=flow))
    assert len(frames) == flow.num_frames
    seam = seam_error(frames)
    steps = steps_of(frames)
    assert seam["median_step"] > 0.5  # it does move
    # Mid-loop frames blend two displaced copies and lose contrast, so on pure texture their steps
    # are smaller than near the ends; the wrap must look like the steps on either side of it.
    assert seam["seam"] <= max(steps[0], steps[-1])


def test_loops_repeat_and_slow_motion_stretches_the_flow():
    image = textured_photo()
    flow, _ = river(num_frames=12)
    assert frame_count(None, RenderSettings(num_loops=3), flow) == 36
    assert frame_count(None, RenderSettings(slowdown=2.0), flow) == 24
    twice = list(render_loop(image, None, RenderSettings(device="cpu", num_loops=2), flow=flow))
    for first, again in zip(twice[:12], twice[12:]):
        np.testing.assert_array_equal(first, again)
    slow = list(render_loop(image, None, RenderSettings(device="cpu", slowdown=2.0), flow=flow))
    normal = twice[:12]
    steps = lambda frames: np.median([np.abs(b.astype(int) - a).mean() for a, b in zip(frames, frames[1:])])
    assert len(slow) == 24
    assert steps(slow) < 0.75 * steps(normal)  # half the travel per frame
    assert seam_error(slow)["seam"] <= max(steps_of(slow)[0], steps_of(slow)[-1])


def swaying_motion(num_frames=24, amplitude=2.0):
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    texture = np.zeros((num_frames, 2, HEIGHT, WIDTH), np.float32)
    texture[:, 0, :12] = amplitude * np.sin(2 * np.pi * t / num_frames)  # the top rows sway
    return motion_from_texture(texture, num_bands=4)


def test_sway_and_flow_render_together():
    image = textured_photo()
    flow, _ = river()
    motion = swaying_motion()
    settings = RenderSettings(device="cpu")
    both = np.stack(list(render_loop(image, motion, settings, flow=flow))).astype(int)
    sway = np.stack(list(render_loop(image, motion, settings))).astype(int)
    water = np.stack(list(render_loop(image, None, settings, flow=flow))).astype(int)
    assert both.shape == sway.shape
    # the swaying rows move as in the sway render, the river as in the flow render
    assert np.abs(both[:, 2:8] - sway[:, 2:8]).mean() < 1.0
    assert np.abs(both[:, 18:30] - water[:, 18:30]).mean() < 1.0
    assert np.abs(both[:, 18:30] - sway[:, 18:30]).mean() > 3.0


def test_a_still_flow_leaves_the_sway_render_unchanged():
    image = textured_photo()
    motion = swaying_motion()
    still = FlowField(np.zeros((2, HEIGHT, WIDTH), np.float32), 24)
    settings = RenderSettings(device="cpu")
    with_flow = np.stack(list(render_loop(image, motion, settings, flow=still))).astype(int)
    without = np.stack(list(render_loop(image, motion, settings))).astype(int)
    assert np.abs(with_flow - without).max() <= 1


@pytest.mark.parametrize("renderer", ["warp"])
def test_other_renderers_blend_the_two_directions(renderer):
    image = textured_photo()
    flow, _ = river()
    frames = list(render_loop(image, None, RenderSettings(device="cpu", renderer=renderer), flow=flow))
    assert len(frames) == 24 and frames[0].shape == image.shape
    # backward warping reads p - F(p), only approximately the inverse of the forward move: 5% slack
    assert seam_error(frames)["seam"] <= 1.05 * max(steps_of(frames)[0], steps_of(frames)[-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_renders_what_the_cpu_renders():
    image = textured_photo()
    flow, _ = river()
    on_cpu = np.stack(list(render_loop(image, None, RenderSettings(device="cpu"), flow=flow))).astype(int)
    on_gpu = np.stack(list(render_loop(image, None, RenderSettings(device="cuda"), flow=flow))).astype(int)
    assert np.abs(on_cpu - on_gpu).max() <= 2


def test_the_render_benchmark_reports_flow_against_sway_in_the_same_run():
    from app.eval.bench_render import run_flow_benchmark

    timings = run_flow_benchmark(num_frames=4, repeats=1, size=(64, 48), devices=["cpu"])
    by_name = {timing.name: timing for timing in timings}
    assert set(by_name) == {"render-sway", "render-flow", "render-sway+flow"}
    assert by_name["render-sway"].ratio == 1.0
    for timing in timings:
        assert timing.fps > 0 and timing.size == "64x48"
        assert timing.ratio == pytest.approx(timing.fps / by_name["render-sway"].fps)


def test_the_live_player_on_a_coarser_grid_follows_the_full_one():
    from app.render.flow import FlowPlayer

    flow, _ = river()
    full = FlowPlayer(flow.velocity, 24, 30.0)
    coarse = FlowPlayer(flow.velocity, 24, 30.0, max_side=32)  # half the grid
    assert coarse.loop.forward.velocity.shape[2:] == (24, 32)
    for player in (full, coarse):
        player.advance(7.5 / 30)
    (forward, backward, share), (coarse_forward, coarse_backward, coarse_share) = full.fields(), coarse.fields()
    assert share == coarse_share == pytest.approx(7.5 / 24)
    assert coarse_forward.shape == forward.shape == (2, HEIGHT, WIDTH)
    water = slice(18, 30)  # away from the banks, where the coarse grid blurs the edge
    assert np.abs(forward[:, water]).mean() > 3
    assert np.abs(coarse_forward[:, water] - forward[:, water]).mean() < 0.1 * np.abs(forward[:, water]).mean()
    assert np.abs(coarse_backward[:, water] - backward[:, water]).mean() < 0.1 * np.abs(backward[:, water]).mean()
