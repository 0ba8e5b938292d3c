"""The flow layer: dense fields from hints, integration, the loop's blend weights, files."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.flow_field import (
    FlowField, FlowFileError, FlowHintError, FlowHints, Trajectory, anchor_radius, check_hints, displacement_after,
    flow_from_hints, hints_from_dict, hints_to_dict, load_flow, loop_weights, resize_flow, save_flow,
    scale_flow, uniform_flow, velocity_from_hints,
)

HEIGHT, WIDTH = 36, 48


def trajectory(velocity: np.ndarray, every: int = 4) -> Trajectory:
    return Trajectory(torch.from_numpy(np.ascontiguousarray(velocity)), every)


# --- integration -------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(vx=st.floats(-3, 3), vy=st.floats(-3, 3), steps=st.integers(0, 12))
def test_a_uniform_field_translates_every_pixel_by_t_times_the_velocity(vx, vy, steps):
    flow = uniform_flow(HEIGHT, WIDTH, vx, vy)
    displacement = displacement_after(flow.velocity, steps)  # (2, H, W)
    np.testing.assert_allclose(displacement[0], steps * np.float32(vx), atol=1e-4)
    np.testing.assert_allclose(displacement[1], steps * np.float32(vy), atol=1e-4)


def test_integration_follows_the_stream_not_the_start_pixel():
    # velocity 1 px/frame to the right in the left half, 3 px/frame in the right half
    velocity = np.zeros((2, 8, 40), np.float32)
    velocity[0, :, :20] = 1.0
    velocity[0, :, 20:] = 3.0
    displacement = displacement_after(velocity, 4)
    # a pixel at x=17 moves 1, 1, 1 (reaching 20) then 3: F_4 = 6; its start pixel's velocity alone gives 4
    assert displacement[0, 4, 17] == pytest.approx(6.0, abs=1e-5)


def test_trajectory_gives_the_same_fields_in_any_order():
    rng = np.random.default_rng(0)
    velocity = rng.normal(size=(2, HEIGHT, WIDTH)).astype(np.float32)
    sequential = trajectory(velocity, every=100)
    expected = [sequential.at(k).clone() for k in range(20)]
    shuffled = trajectory(velocity, every=3)
    for k in list(range(19, -1, -1)) + [7, 2, 15, 0, 19]:
        torch.testing.assert_close(shuffled.at(k), expected[k])


def test_fractional_times_take_part_of_the_last_step():
    flow = uniform_flow(HEIGHT, WIDTH, 2.0, -1.0)
    half = trajectory(flow.velocity).at_time(3.5)
    np.testing.assert_allclose(half[0].numpy(), 7.0, atol=1e-5)
    np.testing.assert_allclose(half[1].numpy(), -3.5, atol=1e-5)


def test_loop_weights_go_from_all_forward_to_all_backward():
    assert loop_weights(0, 60) == (1.0, 0.0)
    assert loop_weights(60, 60) == (0.0, 1.0)
    assert loop_weights(15, 60) == pytest.approx((0.75, 0.25))


# --- hints -> velocity ---------------------------------------------------------------------------


def rectangle_mask(top, left, bottom, right, height=HEIGHT, width=WIDTH):
    mask = np.zeros((height, width), np.float32)
    mask[top:bottom, left:right] = 1.0
    return mask


def test_an_arrow_sets_its_velocity_in_pixels_per_frame():
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[10, 18, 30, 0]], fps=30.0)
    velocity = velocity_from_hints(hints, HEIGHT, WIDTH)
    np.testing.assert_allclose(velocity[:, 18, 10], [1.0, 0.0], atol=1e-5)  # 30 px per second at 30 fps
    # smooth: no neighbouring pixels differ by more than a small part of the speed
    assert np.abs(np.diff(velocity, axis=2)).max() < 0.3
    assert np.abs(np.diff(velocity, axis=1)).max() < 0.3


def test_the_field_follows_the_grid_it_is_built_on():
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[10, 18, 30, 0]])
    doubled = velocity_from_hints(hints, 2 * HEIGHT, 2 * WIDTH)
    assert doubled[0, 36, 20] == pytest.approx(2.0, abs=1e-3)  # twice the pixels, twice the speed


def test_velocity_does_not_leak_across_dry_land():
    # two pools separated by a dry column; the arrow is in the left one only
    mask = rectangle_mask(0, 0, HEIGHT, 20) + rectangle_mask(0, 28, HEIGHT, WIDTH)
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[5, 18, 30, 0]], mask=mask)
    velocity = velocity_from_hints(hints, HEIGHT, WIDTH)
    assert np.abs(velocity[:, :, 28:]).max() < 1e-3
    assert np.abs(velocity[:, :, :20]).mean() > 0.2


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), num_anchors=st.integers(1, 3))
def test_anchors_and_unmasked_pixels_never_move(seed, num_anchors):
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, 10), rng.integers(0, 14)
    mask = rectangle_mask(top, left, top + 20, left + 30)
    arrows = [[left + rng.uniform(2, 27), top + rng.uniform(2, 17), rng.uniform(-40, 40), rng.uniform(-40, 40)]
              for _ in range(2)]
    arrows = [arrow for arrow in arrows if np.hypot(arrow[2], arrow[3]) > 1] or [[left + 5, top + 5, 30, 10]]
    anchors = [[left + rng.uniform(0, 29), top + rng.uniform(0, 19)] for _ in range(num_anchors)]
    hints = FlowHints(WIDTH, HEIGHT, arrows=arrows, anchors=anchors, mask=mask, num_frames=16)
    flow = flow_from_hints(hints, HEIGHT, WIDTH)
    forward = trajectory(flow.velocity)
    backward = trajectory(-flow.velocity)
    still = mask == 0
    for x, y in anchors:
        still[int(round(y)), int(round(x))] = True
    for t in (1, 5, 16):
        for displacement in (forward.at(t), backward.at(t)):
            assert float(displacement[:, torch.from_numpy(still)].abs().max()) == 0.0


def test_anchors_and_unmasked_pixels_stay_still_when_the_solve_is_upsampled():
    # 400x300 is solved on a coarser grid and upsampled: the mask and anchor discs are applied after
    height, width = 300, 400
    mask = np.zeros((height, width), np.float32)
    mask[100:200, 50:350] = 1.0
    hints = FlowHints(width, height, arrows=[[80, 150, 60, 10], [300, 120, 40, -20]], anchors=[[201.3, 149.6]],
                      mask=mask)
    velocity = velocity_from_hints(hints, height, width)
    still = mask == 0
    rows, columns = np.mgrid[0:height, 0:width]
    still |= np.hypot(columns - 201.3, rows - 149.6) <= anchor_radius(width, height) - 0.5  # the anchor's disc
    assert np.abs(velocity[:, still]).max() == 0
    assert np.abs(velocity[:, 140:160, 60:100]).mean() > 1.0
    forward = trajectory(velocity, every=8)
    for t in (3, 10):
        assert float(forward.at(t)[:, torch.from_numpy(still)].abs().max()) == 0.0


@settings(max_examples=15, deadline=None)
@given(speed=st.floats(0.0, 4.0), seed=st.integers(0, 1000))
def test_speed_scales_velocity_and_displacement_linearly(speed, seed):
    rng = np.random.default_rng(seed)
    arrows = [[rng.uniform(5, 40), rng.uniform(5, 30), rng.uniform(5, 40), rng.uniform(-20, 20)]]
    unit = velocity_from_hints(FlowHints(WIDTH, HEIGHT, arrows=arrows, speed=1.0), HEIGHT, WIDTH)
    scaled = velocity_from_hints(FlowHints(WIDTH, HEIGHT, arrows=arrows, speed=speed), HEIGHT, WIDTH)
    np.testing.assert_allclose(scaled, speed * unit, atol=1e-5)
    # one frame's displacement is the velocity; a uniform field's is linear at every frame
    np.testing.assert_allclose(displacement_after(scaled, 1), speed * displacement_after(unit, 1), atol=1e-5)
    uniform = uniform_flow(HEIGHT, WIDTH, 0.7, -0.4)
    np.testing.assert_allclose(displacement_after(scale_flow(uniform, speed).velocity, 9),
                               speed * displacement_after(uniform.velocity, 9), atol=1e-4)


@pytest.mark.parametrize("hints, phrase", [
    (FlowHints(WIDTH, HEIGHT, arrows=[[60, 10, 5, 5]]), "outside the 48x36 photo"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[-1, 10, 5, 5]]), "outside the 48x36 photo"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[10, 10, 0, 0]]), "zero length"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[10, 10, 5, 0]], mask=np.zeros((HEIGHT, WIDTH))), "no pixels"),
    (FlowHints(WIDTH, HEIGHT), "at least one arrow"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[2, 2, 5, 0]], mask=rectangle_mask(20, 20, 30, 30)), "outside the fluid mask"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[10, 10, 5, 0]], anchors=[[100, 3]]), "Anchor 1"),
    (FlowHints(WIDTH, HEIGHT, arrows=[[10, 10, 5, 0]], speed=-1), "speed"),
])
def test_bad_hints_give_one_sentence(hints, phrase):
    with pytest.raises(FlowHintError) as error:
        check_hints(hints)
    message = str(error.value)
    assert phrase in message
    assert "\n" not in message and message.endswith(".")


def test_hints_round_trip_through_plain_data():
    hints = FlowHints(WIDTH, HEIGHT, arrows=[[1.25, 2.5, 3.0, -4.125]], anchors=[[7.0, 8.5]],
                      speed=1.5, num_frames=48, fps=24.0)
    again = hints_from_dict(hints_to_dict(hints))
    assert again.same_as(hints)
    assert not again.same_as(FlowHints(WIDTH, HEIGHT, arrows=[[1.25, 2.5, 3.0, -4.0]], anchors=[[7.0, 8.5]],
                                       speed=1.5, num_frames=48, fps=24.0))
    with pytest.raises(FlowHintError):
        hints_from_dict({"arrows": [[1, 2, 3, 4]]})


# --- the type and its files ----------------------------------------------------------------------


def test_resize_scales_velocities_with_the_grid():
    flow = uniform_flow(HEIGHT, WIDTH, 1.0, 2.0)
    resized = resize_flow(flow, HEIGHT * 2, WIDTH // 2)
    assert resized.velocity.shape == (2, HEIGHT * 2, WIDTH // 2)
    np.testing.assert_allclose(resized.velocity[0], 0.5, atol=1e-5)
    np.testing.assert_allclose(resized.velocity[1], 4.0, atol=1e-5)


def test_flow_files_round_trip_exactly(tmp_path):
    flow = FlowField(np.random.default_rng(1).normal(size=(2, 5, 7)).astype(np.float32), 48, 24.0)
    path = str(tmp_path / "flow.npz")
    save_flow(path, flow)
    loaded = load_flow(path)
    np.testing.assert_array_equal(loaded.velocity, flow.velocity)
    assert (loaded.num_frames, loaded.fps) == (48, 24.0)


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("arrays, phrase", [
    ({"velocity": np.zeros((3, 4, 4), np.float32), "num_frames": 10, "fps": 30.0}, r"expected float \(2, H, W\)"),
    ({"velocity": np.full((2, 4, 4), np.nan, np.float32), "num_frames": 10, "fps": 30.0}, "non-finite"),
    ({"velocity": np.zeros((2, 4, 4), np.float32), "num_frames": 1, "fps": 30.0}, "inconsistent timing"),
    ({"velocity": np.zeros((2, 4, 4), np.float32), "fps": 30.0}, "lacks num_frames"),
])
def test_bad_flow_files_give_one_sentence(tmp_path, arrays, phrase):
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FlowFileError, match=phrase):
        load_flow(path)


def test_missing_and_truncated_flow_files(tmp_path):
    with pytest.raises(FlowFileError, match="does not exist"):
        load_flow(str(tmp_path / "nothing.npz"))
    flow = uniform_flow(4, 4, 1, 1)
    path = str(tmp_path / "cut.npz")
    save_flow(path, flow)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(FlowFileError, match="truncated"):
        load_flow(path)


def test_a_flow_field_checks_its_shape_and_timing():
    with pytest.raises(ValueError):
        FlowField(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError):
        FlowField(np.zeros((2, 4, 4)), num_frames=1)


def test_rescaled_hints_make_the_same_flow_on_a_resized_photo():
    from app.core.flow_field import rescale_hints

    hints = FlowHints(WIDTH, HEIGHT, arrows=[[10, 18, 30, 6]], anchors=[[40, 30]])
    doubled = rescale_hints(hints, 2 * WIDTH, 2 * HEIGHT)
    np.testing.assert_array_equal(doubled.arrows, [[20.5, 36.5, 60, 12]])  # pixel centres map to pixel centres
    np.testing.assert_array_equal(doubled.anchors, [[80.5, 60.5]])
    arrows_only = FlowHints(WIDTH, HEIGHT, arrows=[[10, 18, 30, 6]])
    np.testing.assert_allclose(velocity_from_hints(rescale_hints(arrows_only, 2 * WIDTH, 2 * HEIGHT), HEIGHT, WIDTH),
                               velocity_from_hints(arrows_only, HEIGHT, WIDTH), atol=1e-4)
