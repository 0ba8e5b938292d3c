"""Tests for app.render.splat: forward splatting, importance from motion, pull-push hole filling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import app.render.splat as splat_module
from app.core.spectral import motion_from_texture, motion_to_texture
from app.render.splat import (
    _upsample_2x,
    backward_warp_torch,
    fill_holes,
    importance_from_motion,
    mean_motion_magnitude,
    splat,
    splat_frames,
)

NORMALIZED_MODES = ["avg", "linear", "softmax"]
FAST = settings(max_examples=15, deadline=None)

sizes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(2, 12), st.integers(2, 12))  # N, C, H, W


def random_tensor(seed: int, *shape, low=0.0, high=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=generator)


# --- forward splatting ---------------------------------------------------------------------------


@FAST
@given(sizes, st.sampled_from(NORMALIZED_MODES), st.integers(0, 10_000))
def test_zero_flow_is_identity_for_normalized_modes(size, mode, seed):
    count, channels, height, width = size
    image = random_tensor(seed, count, channels, height, width)
    importance = random_tensor(seed + 1, count, 1, height, width, low=0.1, high=5.0)
    output, holes = splat(image, torch.zeros(count, 2, height, width), mode, importance, return_holes=True)
    torch.testing.assert_close(output, image, rtol=1e-6, atol=1e-6)
    assert not holes.any()


@FAST
@given(sizes, st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(NORMALIZED_MODES), st.integers(0, 10_000))
def test_integer_shift_equals_roll_with_the_wrapped_border_as_holes(size, shift_x, shift_y, mode, seed):
    count, channels, height, width = size
    image = random_tensor(seed, count, channels, height, width)
    flow = torch.zeros(count, 2, height, width)
    flow[:, 0], flow[:, 1] = shift_x, shift_y
    output, holes = splat(image, flow, mode, random_tensor(seed, 1, 1, height, width), return_holes=True)

    expected_holes = torch.ones(count, 1, height, width, dtype=torch.bool)
    rows = slice(min(max(shift_y, 0), height), max(height + min(shift_y, 0), 0))  # where pixels land
    columns = slice(min(max(shift_x, 0), width), max(width + min(shift_x, 0), 0))
    expected_holes[:, :, rows, columns] = False
    rolled = torch.roll(image, shifts=(shift_y, shift_x), dims=(2, 3))
    assert torch.equal(holes, expected_holes)
    torch.testing.assert_close(output[:, :, rows, columns], rolled[:, :, rows, columns], rtol=1e-6, atol=1e-6)
    assert torch.all(output[expected_holes.expand_as(output)] == 0)


@FAST
@given(sizes, st.integers(0, 10_000))
def test_sum_conserves_mass_for_in_bounds_flow(size, seed):
    count, channels, height, width = size
    image = random_tensor(seed, count, channels, height, width)
    # Targets anywhere inside [0, W-1] x [0, H-1]: every tap with nonzero weight is on screen.
    target_x = random_tensor(seed + 1, count, height, width, high=width - 1)
    target_y = random_tensor(seed + 2, count, height, width, high=height - 1)
    rows, columns = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                   torch.arange(width, dtype=torch.float32), indexing="ij")
    flow = torch.stack([target_x - columns, target_y - rows], dim=1)
    output = splat(image, flow, "sum")
    torch.testing.assert_close(output.sum(dim=(2, 3)), image.sum(dim=(2, 3)), rtol=1e-5, atol=1e-5)


def test_sum_drops_mass_that_leaves_the_image():
    image = torch.ones(1, 1, 4, 4)
    flow = torch.zeros(1, 2, 4, 4)
    flow[:, 0] = 2.5  # half of column 1 and all of columns 2, 3 leave on the right
    output = splat(image, flow, "sum")
    assert output.sum().item() == pytest.approx(4 * 1.5)


@pytest.mark.parametrize("mode", ["sum", "avg", "linear", "softmax"])
@pytest.mark.parametrize("bad_value", [1e6, -1e6, 1e30, float("nan"), float("inf"), float("-inf")])
def test_extreme_and_non_finite_flow_is_off_screen(mode, bad_value):
    image = random_tensor(0, 1, 3, 6, 7)
    flow = torch.zeros(1, 2, 6, 7)
    flow[:, :, :, :4] = bad_value  # the left 4 columns fly away; the right 3 stay
    importance = random_tensor(1, 1, 1, 6, 7)
    output, holes = splat(image, flow, mode, importance, return_holes=True)
    assert torch.isfinite(output).all()
    assert holes[0, 0, :, :4].all() and not holes[0, 0, :, 4:].any()
    assert torch.all(output[:, :, :, :4] == 0)
    torch.testing.assert_close(output[:, :, :, 4:], image[:, :, :, 4:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_flow_in_one_axis_only_is_off_screen(axis, bad_value):
    flow = torch.zeros(1, 2, 3, 3)
    flow[0, axis, 1, 1] = bad_value  # the other axis stays finite
    output, holes = splat(torch.ones(1, 1, 3, 3), flow, "sum", return_holes=True)
    assert holes[0, 0, 1, 1] and holes.sum() == 1
    expected = torch.ones(1, 1, 3, 3)
    expected[0, 0, 1, 1] = 0  # its mass lands nowhere, not on some edge
    assert torch.equal(output, expected)


def two_pixels_landing_on_one_spot(importance_left: float, importance_right: float):
    """A 1x3 image: red at x=0 moves right by 1, blue at x=2 moves left by 1; both land on x=1.

    The black middle pixel leaves the image (NaN flow), so only red and blue meet.
    """
    image = torch.zeros(1, 3, 1, 3)
    image[0, 0, 0, 0] = 1.0  # red
    image[0, 2, 0, 2] = 1.0  # blue
    flow = torch.zeros(1, 2, 1, 3)
    flow[0, 0, 0, 0], flow[0, 0, 0, 1], flow[0, 0, 0, 2] = 1.0, float("nan"), -1.0
    importance = torch.tensor([importance_left, 0.0, importance_right]).view(1, 1, 1, 3)
    return image, flow, importance


@pytest.mark.parametrize("left, right, winner", [(20.0, 0.0, 0), (0.0, 20.0, 2), (1e4, 0.0, 0), (-5.0, 30.0, 2)])
def test_softmax_picks_the_much_more_important_pixel(left, right, winner):
    image, flow, importance = two_pixels_landing_on_one_spot(left, right)
    output = splat(image, flow, "softmax", importance)
    expected = torch.zeros(3)
    expected[winner] = 1.0
    torch.testing.assert_close(output[0, :, 0, 1], expected, rtol=0, atol=1e-6)


def test_avg_and_linear_blend_two_pixels_on_one_spot():
    image, flow, importance = two_pixels_landing_on_one_spot(3.0, 1.0)
    torch.testing.assert_close(splat(image, flow, "avg")[0, :, 0, 1], torch.tensor([0.5, 0.0, 0.5]))
    torch.testing.assert_close(splat(image, flow, "linear", importance)[0, :, 0, 1], torch.tensor([0.75, 0.0, 0.25]))
    torch.testing.assert_close(splat(image, flow, "sum")[0, :, 0, 1], torch.tensor([1.0, 0.0, 1.0]))


def test_softmax_with_huge_importance_does_not_overflow():
    image = random_tensor(3, 2, 3, 8, 9)
    importance = random_tensor(4, 2, 1, 8, 9, low=-1e4, high=1e4)
    importance[0, 0, 2, 3] = 1e4
    flow = random_tensor(5, 2, 2, 8, 9, low=-2.0, high=2.0)
    output, holes = splat(image, flow, "softmax", importance, return_holes=True)
    assert torch.isfinite(output).all()
    # Every pixel that lands still counts (no underflow to a hole): same holes as plain averaging.
    _, average_holes = splat(image, flow, "avg", return_holes=True)
    assert torch.equal(holes, average_holes)
    assert output.min() >= 0 and output.max() <= 1 + 1e-6
    uniform = splat(image, torch.zeros_like(flow), "softmax", torch.full((1, 1, 8, 9), 1e4))
    torch.testing.assert_close(uniform, image, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["linear", "softmax"])
def test_non_finite_importance_counts_as_zero_weight(mode):
    image, flow, importance = two_pixels_landing_on_one_spot(float("nan"), 2.0)
    importance[0, 0, 0, 1] = float("inf")  # the middle pixel leaves anyway
    output = splat(image, flow, mode, importance)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output[0, :, 0, 1], torch.tensor([0.0, 0.0, 1.0]))  # only blue counts


def test_half_pixel_shift_spreads_bilinearly():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 1, 1] = 1.0
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, 1, 1], flow[0, 1, 1, 1] = 0.5, 0.25  # lands at (x, y) = (1.5, 1.25)
    output = splat(image, flow, "sum")
    expected = torch.zeros(4, 4)
    expected[1, 1], expected[1, 2] = 0.5 * 0.75, 0.5 * 0.75
    expected[2, 1], expected[2, 2] = 0.5 * 0.25, 0.5 * 0.25
    assert torch.equal(output[0, 0], expected)


def test_half_pixel_shift_of_an_edge_blends_in_avg_mode():
    image = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).view(1, 1, 1, 4)
    flow = torch.zeros(1, 2, 1, 4)
    flow[:, 0] = 0.5
    output, holes = splat(image, flow, "avg", return_holes=True)
    # x=0 gets half of pixel 0; x=1 half of 0 and 1; x=2 half of 1 and 2; x=3 half of 2 and 3.
    torch.testing.assert_close(output[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0]))
    assert not holes.any()


@FAST
@given(st.integers(1, 5), st.sampled_from(["sum", "avg", "linear", "softmax"]), st.integers(0, 10_000))
def test_batched_call_equals_separate_calls(count, mode, seed):
    height, width = 7, 10
    image = random_tensor(seed, count, 3, height, width)
    flow = random_tensor(seed + 1, count, 2, height, width, low=-4.0, high=4.0)
    importance = random_tensor(seed + 2, count, 1, height, width, high=10.0)
    batched, batched_holes = splat(image, flow, mode, importance, return_holes=True)
    for index in range(count):
        single, single_holes = splat(image[index:index + 1], flow[index:index + 1], mode,
                                     importance[index:index + 1], return_holes=True)
        torch.testing.assert_close(batched[index:index + 1], single, rtol=1e-6, atol=1e-6)
        assert torch.equal(batched_holes[index:index + 1], single_holes)


@pytest.mark.parametrize("source_frames, importance_frames", [(1, 1), (5, 1), (1, 5), (5, 5)])
def test_cpu_passes_of_a_few_frames_equal_one_pass(monkeypatch, source_frames, importance_frames):
    image = random_tensor(0, source_frames, 3, 6, 8)
    flow = random_tensor(1, 5, 2, 6, 8, low=-2.0, high=2.0)
    importance = random_tensor(2, importance_frames, 1, 6, 8, high=4.0)
    one_pass, one_pass_holes = splat(image, flow, "softmax", importance, return_holes=True)
    one_pass_frames = splat_frames(image[:1], flow, importance)
    monkeypatch.setattr(splat_module, "CPU_PIXELS_PER_PASS", 2 * 6 * 8)  # 2 frames per pass
    few, few_holes = splat(image, flow, "softmax", importance, return_holes=True)
    torch.testing.assert_close(few, one_pass, rtol=1e-6, atol=1e-6)
    assert torch.equal(few_holes, one_pass_holes)
    torch.testing.assert_close(splat_frames(image[:1], flow, importance), one_pass_frames, rtol=1e-6, atol=1e-6)


def test_one_source_is_shared_by_all_frames():
    image = random_tensor(0, 1, 3, 6, 8)
    flow = random_tensor(1, 4, 2, 6, 8, low=-2.0, high=2.0)
    importance = random_tensor(2, 1, 1, 6, 8)
    shared = splat(image, flow, "softmax", importance)
    repeated = splat(image.expand(4, -1, -1, -1), flow, "softmax", importance.expand(4, -1, -1, -1))
    torch.testing.assert_close(shared, repeated)


def test_bad_arguments_raise_one_sentence():
    image = torch.zeros(1, 3, 4, 5)
    with pytest.raises(ValueError, match="mode"):
        splat(image, torch.zeros(1, 2, 4, 5), mode="soft")
    with pytest.raises(ValueError, match="differ in size"):
        splat(image, torch.zeros(1, 2, 4, 6))
    with pytest.raises(ValueError, match="importance"):
        splat(image, torch.zeros(1, 2, 4, 5), importance=torch.zeros(1, 1, 4, 6))


# --- importance from motion ----------------------------------------------------------------------


def test_importance_from_texture_magnitude_and_motion_agree():
    generator = np.random.default_rng(0)
    motion_texture = generator.normal(size=(12, 2, 5, 6)).astype(np.float32)
    motion_texture -= motion_texture[:1]  # frame 0 is the photo
    motion = motion_from_texture(motion_texture, num_bands=7)  # all bands: exact round trip
    expected = np.sqrt((motion_texture ** 2).sum(axis=1)).mean(axis=0)  # (H, W)

    magnitude = mean_motion_magnitude(motion)
    assert magnitude.shape == (5, 6) and magnitude.dtype == np.float32
    np.testing.assert_allclose(magnitude, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(magnitude, np.sqrt((motion_to_texture(motion) ** 2).sum(1)).mean(0), rtol=1e-5)

    for source in (motion_texture, torch.from_numpy(motion_texture), expected, motion):
        importance = importance_from_motion(source, alpha=2.5)
        assert importance.shape == (1, 1, 5, 6) and importance.dtype == torch.float32
        np.testing.assert_allclose(importance[0, 0].numpy(), 2.5 * expected, rtol=1e-4, atol=1e-5)


def test_mean_motion_magnitude_covers_every_row_chunk():
    motion_texture = np.ones((4, 2, 70, 3), np.float32)  # more rows than one chunk
    motion_texture[0] = 0  # frame 0 is the photo; x moves by 1 px in frames 1-3
    motion_texture[:, 1] = 0
    np.testing.assert_allclose(mean_motion_magnitude(motion_from_texture(motion_texture, 3)), 0.75, atol=1e-5)


def test_importance_rejects_other_shapes():
    with pytest.raises(ValueError, match="motion texture"):
        importance_from_motion(np.zeros((3, 4, 5)), alpha=1.0)


# --- hole filling --------------------------------------------------------------------------------


@FAST
@given(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_fill_holes_leaves_no_hole_and_keeps_valid_pixels(count, height, width, hole_fraction, seed):
    image = random_tensor(seed, count, 3, height, width)
    holes = random_tensor(seed + 1, count, 1, height, width) < hole_fraction
    filled = fill_holes(image * ~holes, holes)
    valid = ~holes.expand_as(image)
    assert torch.equal(filled[valid], image[valid])  # exactly
    assert torch.isfinite(filled).all()
    for frame in range(count):
        frame_valid = valid[frame]
        if frame_valid.any():  # holes take values within the range of the frame's valid pixels
            low, high = image[frame][frame_valid].min(), image[frame][frame_valid].max()
            assert filled[frame].min() >= low - 1e-6 and filled[frame].max() <= high + 1e-6
        else:  # nothing to fill from
            assert torch.all(filled[frame] == 0)


def test_fill_holes_handles_a_huge_hole():
    height, width = 90, 160
    image = torch.zeros(1, 3, height, width)
    image[:, 0] = 0.25  # constant valid colour
    holes = torch.ones(1, 1, height, width, dtype=torch.bool)
    holes[:, :, :, :16] = False  # 90% of the image is one hole
    filled = fill_holes(image * ~holes, holes)
    torch.testing.assert_close(filled, image.expand_as(filled))


def test_fill_holes_ignores_whatever_the_holes_held():
    image = random_tensor(0, 1, 3, 6, 6)
    holes = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    holes[:, :, 2:4, 2:4] = True
    garbage = image.clone()
    garbage[holes.expand_as(image)] = float("nan")
    torch.testing.assert_close(fill_holes(garbage, holes), fill_holes(image * ~holes, holes))


def test_fill_holes_of_an_all_hole_image_is_zero():
    filled = fill_holes(torch.full((2, 3, 5, 7), 9.0), torch.ones(2, 1, 5, 7, dtype=torch.bool))
    assert torch.equal(filled, torch.zeros(2, 3, 5, 7))


def test_fill_holes_blends_smoothly_across_a_gap():
    image = torch.zeros(1, 1, 8, 64)
    image[:, :, :, :16] = 0.0
    image[:, :, :, 48:] = 1.0
    holes = torch.zeros(1, 1, 8, 64, dtype=torch.bool)
    holes[:, :, :, 16:48] = True
    row = fill_holes(image, holes)[0, 0, 4, 16:48]
    assert (row[1:] >= row[:-1] - 1e-6).all()  # no overshoot: from dark to bright
    assert 0.0 <= row.min() and row.max() <= 1.0 and row[-1] - row[0] > 0.3


@pytest.mark.parametrize("shape", [(1, 3, 144, 256), (2, 2, 5, 7), (1, 1, 1, 1), (1, 2, 1, 6)])
def test_fast_upsampling_equals_interpolate(shape):
    image = random_tensor(0, *shape)
    expected = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(_upsample_2x(image), expected, rtol=1e-6, atol=1e-6)


# --- rendering helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("image_shape", [(3, 12, 20), (1, 3, 12, 20)])
def test_splat_frames_gives_filled_frames(image_shape):
    image = random_tensor(0, *image_shape)
    displacements = random_tensor(1, 5, 2, 12, 20, low=-3.0, high=3.0)
    importance = importance_from_motion(displacements, alpha=1.0)
    frames = splat_frames(image, displacements, importance)
    assert frames.shape == (5, 3, 12, 20)
    assert torch.isfinite(frames).all()
    unfilled = splat_frames(image, displacements, importance, fill=False)
    expected, holes = splat(image.reshape(1, 3, 12, 20), displacements, "softmax", importance, return_holes=True)
    torch.testing.assert_close(unfilled, expected)
    valid = ~holes.expand_as(frames)
    assert torch.equal(frames[valid], expected[valid])


def test_splat_frames_takes_per_frame_importance():
    image = random_tensor(0, 3, 6, 7)
    displacements = random_tensor(1, 3, 2, 6, 7, low=-2.0, high=2.0)
    importance = random_tensor(2, 3, 1, 6, 7, high=5.0)
    frames = splat_frames(image, displacements, importance, fill=False)
    torch.testing.assert_close(frames, splat(image[None], displacements, "softmax", importance))


def test_backward_warp_matches_integer_shift_inside():
    image = random_tensor(0, 3, 10, 12)
    displacements = torch.zeros(2, 2, 10, 12)
    displacements[1, 0], displacements[1, 1] = 2.0, -1.0
    frames = backward_warp_torch(image, displacements)
    assert frames.shape == (2, 3, 10, 12)
    torch.testing.assert_close(frames[0], image, rtol=1e-5, atol=1e-5)
    # frame(p) = image(p - F(p)): the content moves by +2 in x and -1 in y, like the splat.
    torch.testing.assert_close(frames[1, :, :9, 2:], image[:, 1:, :10], rtol=1e-5, atol=1e-5)
    splatted = splat(image[None], displacements[1:], "avg")[0]
    torch.testing.assert_close(frames[1, :, :9, 2:], splatted[:, :9, 2:], rtol=1e-5, atol=1e-5)
