"""Rendering a loop: frame counts, timing, magnification, sizes, the seam and the three renderers."""

import numpy as np
import pytest
import torch

from app.core.spectral import Motion, magnify, motion_from_texture, zero_motion
from app.render.export import seam_error
from app.render.frames import RenderSettings, frame_count, render_loop, resolve_device

HEIGHT, WIDTH, NUM_FRAMES = 48, 64, 30


def photo(height=HEIGHT, width=WIDTH, seed=0):
    """A smooth colourful uint8 photo (H, W, 3)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    channels = [np.sin(x * rng.uniform(0.1, 0.3) + y * rng.uniform(0.1, 0.3) + rng.uniform(0, 6))
                for _ in range(3)]
    return ((np.stack(channels, axis=-1) * 0.5 + 0.5) * 255).astype(np.uint8)


def swaying_motion(height=HEIGHT, width=WIDTH, num_frames=NUM_FRAMES, amplitude=2.0):
    """The middle of the picture sways left and right: x = amplitude * sin(2 pi t / T)."""
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    weight = np.exp(-((x - width / 2) ** 2 + (y - height / 2) ** 2) / (2 * (min(height, width) / 4) ** 2))
    texture = np.zeros((num_frames, 2, height, width), np.float32)
    texture[:, 0] = amplitude * np.sin(2 * np.pi * t / num_frames) * weight
    return motion_from_texture(texture, num_bands=4, fps=30.0)


def render(image, motion, **settings):
    settings.setdefault("device", "cpu")
    return list(render_loop(image, motion, RenderSettings(**settings)))


# --- counts and devices ------------------------------------------------------------------------------


def test_frame_count_with_loops_and_slowdown():
    motion = zero_motion(4, 4, num_bands=4, num_frames=30)
    assert frame_count(motion, RenderSettings()) == 30
    assert frame_count(motion, RenderSettings(num_loops=3)) == 90
    assert frame_count(motion, RenderSettings(slowdown=2.0)) == 60
    assert frame_count(motion, RenderSettings(slowdown=1.5, num_loops=2)) == 90
    with pytest.raises(ValueError):
        frame_count(motion, RenderSettings(num_loops=0))
    with pytest.raises(ValueError):
        frame_count(motion, RenderSettings(slowdown=0))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_sentence():
    with pytest.raises(ValueError) as error:
        resolve_device("cuda")
    assert str(error.value).endswith(".") and str(error.value).count(". ") == 0
    with pytest.raises(ValueError):
        render_loop(photo(), swaying_motion(), RenderSettings(device="cuda"))


def test_bad_settings_fail_before_rendering():
    with pytest.raises(ValueError, match="No learned renderer is loaded"):
        render_loop(photo(), swaying_motion(), RenderSettings(renderer="net"))
    with pytest.raises(ValueError):
        render_loop(photo(), swaying_motion(), RenderSettings(renderer="magic"))
    with pytest.raises(ValueError):
        render_loop(photo().astype(np.float32), swaying_motion(), RenderSettings())


# --- what the frames show ------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["splat", "warp"])
def test_zero_motion_renders_the_photo_exactly(renderer):
    image = photo()
    frames = render(image, zero_motion(HEIGHT, WIDTH, num_bands=4, num_frames=10), renderer=renderer)
    assert len(frames) == 10
    for frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == image.shape
        np.testing.assert_array_equal(frame, image)


@pytest.mark.parametrize("renderer", ["splat", "warp"])
def test_zero_magnification_is_the_still_photo(renderer):
    image = photo()
    frames = render(image, swaying_motion(amplitude=3.0), renderer=renderer, magnify=0.0)
    for frame in frames[::7]:
        np.testing.assert_array_equal(frame, image)


def test_motion_moves_pixels_and_magnify_scales_it():
    image, motion = photo(), swaying_motion(amplitude=1.5)
    quarter = NUM_FRAMES // 4  # the widest swing
    normal = render(image, motion)[quarter].astype(int)
    doubled = render(image, motion, magnify=2.0)[quarter].astype(int)
    premagnified = render(image, magnify(motion, 2.0))[quarter].astype(int)
    np.testing.assert_array_equal(doubled, premagnified)
    assert np.abs(doubled - image).mean() > 1.5 * np.abs(normal - image).mean() > 0


@pytest.mark.parametrize("renderer", ["splat", "warp"])
def test_slowdown_two_shows_frame_k_at_frame_2k(renderer):
    image, motion = photo(), swaying_motion()
    normal = render(image, motion, renderer=renderer)
    slow = render(image, motion, renderer=renderer, slowdown=2.0)
    assert len(slow) == 2 * len(normal)
    for k in range(0, NUM_FRAMES, 5):
        np.testing.assert_allclose(slow[2 * k].astype(int), normal[k].astype(int), atol=1)


def test_size_sets_the_output_size_and_motion_follows_the_photo():
    image = photo()
    small_motion = swaying_motion(height=24, width=32)  # motion on a coarser grid than the photo
    frames = render(image, small_motion, size=(40, 30))
    assert {frame.shape for frame in frames} == {(30, 40, 3)}
    frames = render(image, small_motion)
    assert {frame.shape for frame in frames} == {(HEIGHT, WIDTH, 3)}


@pytest.mark.parametrize("renderer", ["splat", "warp"])
def test_the_last_frame_flows_into_the_first(renderer):
    frames = render(photo(), swaying_motion(amplitude=3.0), renderer=renderer, num_loops=2)
    assert len(frames) == 2 * NUM_FRAMES
    first_loop, second_loop = np.array(frames[:NUM_FRAMES]), np.array(frames[NUM_FRAMES:])
    assert np.abs(first_loop.astype(int) - second_loop).max() <= 1  # frame T is frame 0 again
    seam = seam_error(first_loop)
    assert seam["median_step"] > 0
    assert seam["ratio"] < 2.0  # a sinusoid's wrap is a step at full speed: about pi / 2
    cut = seam_error(first_loop[: NUM_FRAMES // 4 + 1])  # a loop cut at the widest swing
    assert cut["ratio"] > 3 * seam["ratio"]


def test_fractional_slowdown_still_closes_the_loop():
    frames = render(photo(), swaying_motion(amplitude=3.0), slowdown=1.25, num_loops=2)
    per_loop = round(NUM_FRAMES * 1.25)
    assert len(frames) == 2 * per_loop
    np.testing.assert_allclose(frames[per_loop].astype(int), frames[0].astype(int), atol=1)


# --- progress, cancel and the learned renderer --------------------------------------------------


def test_progress_reports_each_batch_up_to_total():
    reports = []
    frames = list(render_loop(photo(), swaying_motion(), RenderSettings(device="cpu", batch_size=8),
                              progress=lambda done, total: reports.append((done, total))))
    assert len(frames) == NUM_FRAMES
    assert reports == [(8, 30), (16, 30), (24, 30), (30, 30)]


def test_cancel_stops_between_batches():
    reports = []
    frames = list(render_loop(photo(), swaying_motion(), RenderSettings(device="cpu", batch_size=4),
                              progress=lambda done, total: reports.append(done), cancel=lambda: len(reports) >= 2))
    assert len(frames) == 8
    assert reports == [4, 8]


class StillNet(torch.nn.Module):
    """A stand-in learned renderer that returns the photo and records what it was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def render(self, image, displacements, importance):
        self.calls.append((tuple(image.shape), tuple(displacements.shape), tuple(importance.shape)))
        return image.expand(displacements.shape[0], -1, -1, -1)


def test_net_renderer_gets_image_displacements_and_importance():
    image, net = photo(), StillNet()
    frames = list(render_loop(image, swaying_motion(), RenderSettings(renderer="net", device="cpu", batch_size=16),
                              net=net))
    assert len(frames) == NUM_FRAMES
    np.testing.assert_array_equal(frames[5], image)
    assert net.calls == [((1, 3, HEIGHT, WIDTH), (16, 2, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH)),
                         ((1, 3, HEIGHT, WIDTH), (14, 2, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH))]


def test_motion_type_is_accepted_as_is():
    motion = swaying_motion()
    assert isinstance(motion, Motion) and motion.num_frames == NUM_FRAMES
