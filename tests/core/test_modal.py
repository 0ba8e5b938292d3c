"""Tests for app.core.modal: pulls, release dynamics, stability, superposition."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.modal import MAX_STRAIN, ModalParameters, ModalSimulator, sample_spectrum
from app.core.spectral import Motion, zero_motion

FAST = settings(max_examples=25, deadline=None)


def random_motion(seed=0, num_bands=16, height=12, width=18, num_frames=150, fps=30.0) -> Motion:
    """A smooth random spectrum: every band moves every pixel a little."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 1, height)[None, None, :, None]
    columns = np.linspace(0, 1, width)[None, None, None, :]
    amplitude = rng.normal(size=(num_bands, 2, 1, 1)) + 1j * rng.normal(size=(num_bands, 2, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(num_bands, 2, 1, 1))
    spectrum = amplitude * (1.5 + np.cos(3 * rows + 2 * columns + phase)) * num_frames / 2 / 20
    return Motion(spectrum.astype(np.complex64), num_frames, fps)


def released_energies(simulator, dt, steps):
    energies = [simulator.energy()]
    for _ in range(steps):
        simulator.step(dt)
        energies.append(simulator.energy())
    return np.array(energies)


# --- pulls ------------------------------------------------------------------------------------------


def smallest_area_ratio(field, stride=2):
    """min over the checked pixels of det(I + grad F) for a field (2, H, W): below 0 the mesh folds."""
    dx_dx, dx_dy = np.gradient(field[0], axis=1), np.gradient(field[0], axis=0)
    dy_dx, dy_dy = np.gradient(field[1], axis=1), np.gradient(field[1], axis=0)
    ratio = (1 + dx_dx) * (1 + dy_dy) - dx_dy * dy_dx
    return float(ratio[::stride, ::stride].min())


@FAST
@given(seed=st.integers(0, 1000), x=st.floats(0, 17), y=st.floats(0, 11),
       angle=st.floats(0, 2 * np.pi), length=st.floats(0.5, 20))
def test_grabbed_point_moves_along_the_pull_by_its_length_unless_that_folds_the_image(seed, x, y, angle, length):
    simulator = ModalSimulator(random_motion(seed))
    pull = length * np.array([np.cos(angle), np.sin(angle)])
    simulator.grab(x, y, *pull)
    moved = simulator.point_displacement(x, y)
    along = moved @ pull / length
    assert 0 < along <= length * (1 + 1e-4)
    field = simulator.displacement()
    if along < length * (1 - 1e-4):
        # held back exactly at the fold limit: the strain bound sum_k |q_k| |grad S_k| is MAX_STRAIN
        assert simulator.fold_limit(simulator.held_q) == pytest.approx(1.0, abs=1e-4)
        assert simulator.fold_limit(simulator.held_q * 1.01) < 1.0
    # either way the image does not fold
    assert smallest_area_ratio(field) > 0
    # ... and the full field agrees with the point evaluation at a pixel.
    np.testing.assert_allclose(field[:, 3, 4], simulator.point_displacement(4, 3), rtol=1e-4, atol=1e-4)


def test_a_short_pull_on_smooth_modes_moves_the_point_exactly():
    simulator = ModalSimulator(random_motion(3))
    simulator.grab(8, 6, 0.6, -0.3)
    np.testing.assert_allclose(simulator.point_displacement(8, 6) @ np.array([0.6, -0.3]) / np.hypot(0.6, 0.3),
                               np.hypot(0.6, 0.3), rtol=1e-4)


def test_a_40_px_drag_on_the_bundled_example_does_not_fold_the_image():
    """The example's extracted motion on the studio's preview grid, pulled 40 px at several places."""
    from app.core.spectral import load_motion, resize_motion
    from app.pipeline import example_paths

    motion = resize_motion(load_motion(str(example_paths("willow")[1])), 288, 512)
    simulator = ModalSimulator(motion)
    amplitude = np.sqrt((np.abs(motion.spectrum[1:]) ** 2).sum(axis=(0, 1)))  # (H, W)
    strongest_y, strongest_x = np.unravel_index(np.argmax(amplitude), amplitude.shape)
    for x, y in [(strongest_x, strongest_y), (256, 144), (100, 60), (400, 200), (50, 250)]:
        for dx, dy in [(40, 0), (0, 40), (-28, 28)]:
            simulator.reset()
            simulator.grab(x, y, dx, dy)
            field = simulator.displacement()
            assert smallest_area_ratio(field, stride=1) > 0, (x, y, dx, dy)  # no fold anywhere
            assert simulator.point_displacement(x, y) @ np.array([dx, dy]) >= 0  # it moves along the pull
            for _ in range(20):  # and while it swings back
                simulator.release()
                simulator.step(1 / 30)
                assert smallest_area_ratio(simulator.displacement(), stride=1) > 0


def test_gain_scales_the_pull():
    half = ModalSimulator(random_motion(), ModalParameters(gain=0.5))
    half.grab(5, 5, 4, 0)
    assert half.point_displacement(5, 5)[0] == pytest.approx(2.0, rel=1e-5)


def test_bilinear_sample_of_the_spectrum_between_pixels():
    spectrum = random_motion().spectrum
    middle = sample_spectrum(spectrum, 3.5, 2.0)
    np.testing.assert_allclose(middle, 0.5 * (spectrum[:, :, 2, 3] + spectrum[:, :, 2, 4]), rtol=1e-6)


def test_held_pull_stays_put_while_time_passes():
    simulator = ModalSimulator(random_motion())
    simulator.grab(6, 4, 3, 1)
    before = simulator.band_factors()
    for _ in range(10):
        simulator.step(1 / 60)
    np.testing.assert_array_equal(simulator.band_factors(), before)
    np.testing.assert_array_equal(simulator.state.velocity, 0)
    assert not simulator.is_settled()


def test_a_point_outside_the_image_is_refused():
    simulator = ModalSimulator(random_motion())
    with pytest.raises(ValueError, match="outside"):
        simulator.grab(100, 3, 1, 1)


def test_dc_band_never_moves():
    simulator = ModalSimulator(random_motion())
    simulator.grab(5, 5, 3, 3)
    simulator.release()
    for _ in range(20):
        simulator.step(1 / 30)
        assert simulator.band_factors()[0] == 0


# --- release dynamics -------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [30, 60, 144])
def test_energy_decays_monotonically_after_release(fps):
    simulator = ModalSimulator(random_motion(3))
    simulator.grab(8, 6, -5, 2)
    simulator.release()
    energies = released_energies(simulator, 1 / fps, 6 * fps)
    assert energies[0] > 0
    assert np.all(np.diff(energies) <= 1e-12 * energies[:-1])
    assert energies[-1] < 0.5 * energies[0]


@FAST
@given(frame_rate=st.floats(30, 144), stiffness=st.floats(0.25, 4.0), seed=st.integers(0, 1000),
       alpha=st.floats(0.0, 2.0), beta=st.floats(0.0, 0.2),
       integrator=st.sampled_from(["semi-implicit", "explicit"]))
def test_no_mode_blows_up_at_any_frame_rate(frame_rate, stiffness, seed, alpha, beta, integrator):
    if integrator == "explicit":  # explicit Euler needs real damping in every mode (see the next test)
        alpha, beta = 0.2 + alpha, 0.02 + beta
    params = ModalParameters(stiffness=stiffness, alpha=alpha, beta=beta, integrator=integrator)
    simulator = ModalSimulator(random_motion(seed), params)
    simulator.grab(4, 7, 6, -3)
    simulator.flick(9, 2, 40, 20)  # all K modes get a position and a velocity
    simulator.release()
    initial = simulator.energy()
    peak = initial
    for _ in range(int(3 * frame_rate)):
        simulator.step(1 / frame_rate)
        assert np.all(np.isfinite(simulator.band_factors()))
        peak = max(peak, simulator.energy())
    # Undamped symplectic Euler wobbles around the true energy by O(h omega); damped modes only lose energy.
    assert peak <= 1.3 * initial


def test_explicit_euler_without_damping_is_refused():
    with pytest.raises(ValueError, match="damping"):
        ModalSimulator(random_motion(), ModalParameters(alpha=0, beta=0, integrator="explicit"))


def test_released_state_settles_toward_zero():
    simulator = ModalSimulator(random_motion(1), ModalParameters(alpha=1.5))
    simulator.grab(9, 6, 4, 4)
    simulator.release()
    assert not simulator.is_settled(0.01)
    for _ in range(20 * 60):
        simulator.step(1 / 60)
    assert simulator.is_settled(0.01)
    assert np.abs(simulator.displacement()).max() < 0.01


def test_released_point_swings_back_past_its_rest_position():
    simulator = ModalSimulator(random_motion(2), ModalParameters(alpha=0.1, beta=0.0))
    simulator.grab(9, 6, 5, 0)
    simulator.release()
    along_pull = []
    for _ in range(10 * 30):
        simulator.step(1 / 30)
        along_pull.append(simulator.point_displacement(9, 6)[0])
    assert min(along_pull) < -0.5  # it oscillates, not just creeps back


def test_zero_spectrum_means_no_motion():
    simulator = ModalSimulator(zero_motion(10, 12, num_bands=16))
    simulator.grab(5, 5, 10, 10)
    simulator.flick(3, 3, 100, 0)
    simulator.poke(2, 2, 5, 5)
    simulator.release()
    for _ in range(30):
        simulator.step(1 / 30)
        assert simulator.energy() == 0
        assert not np.any(simulator.displacement())
    assert simulator.is_settled(0)


# --- superposition ------------------------------------------------------------------------------


def test_flicks_and_pokes_superpose():
    motion = random_motion(4)
    inputs = [("poke", (3, 4, 2, -1)), ("flick", (10, 7, -30, 15)), ("poke", (15, 2, 0.5, 4))]
    combined = ModalSimulator(motion)
    singles = [ModalSimulator(motion) for _ in inputs]
    for (kind, arguments), single in zip(inputs, singles):
        getattr(combined, kind)(*arguments)
        getattr(single, kind)(*arguments)
    for _ in range(45):
        combined.step(1 / 60)
        for single in singles:
            single.step(1 / 60)
    expected = sum(single.displacement() for single in singles)
    np.testing.assert_allclose(combined.displacement(), expected, rtol=1e-4, atol=1e-4)


def test_a_new_grab_adds_to_what_is_already_moving():
    motion = random_motion(5)
    moving = ModalSimulator(motion)
    moving.poke(6, 6, 3, 0)
    moving.step(0.3)
    reference = ModalSimulator(motion)
    reference.poke(6, 6, 3, 0)
    reference.step(0.3)
    moving.grab(12, 3, 0, 2)
    grab_only = ModalSimulator(motion)
    grab_only.grab(12, 3, 0, 2)
    for _ in range(10):  # held for a while, then released
        for simulator in (moving, reference, grab_only):
            simulator.step(1 / 60)
    moving.release()
    grab_only.release()
    for _ in range(30):
        for simulator in (moving, reference, grab_only):
            simulator.step(1 / 60)
    np.testing.assert_allclose(moving.band_factors(), reference.band_factors() + grab_only.band_factors(),
                               rtol=1e-5, atol=1e-7)


def test_explicit_and_semi_implicit_agree_for_small_steps():
    motion = random_motion(6)
    results = {}
    for integrator in ("semi-implicit", "explicit"):
        simulator = ModalSimulator(motion, ModalParameters(integrator=integrator))
        simulator.grab(8, 5, 4, -2)
        simulator.release()
        for _ in range(1000):
            simulator.step(1 / 1000)
        results[integrator] = simulator.displacement()
    scale = np.abs(results["semi-implicit"]).max()
    assert scale > 0.1
    assert np.abs(results["explicit"] - results["semi-implicit"]).max() < 0.03 * scale + 1e-3


def test_substeps_keep_every_mode_within_the_stable_range():
    simulator = ModalSimulator(random_motion(), ModalParameters(stiffness=4.0))
    omega_max = simulator.omega.max()
    for frame_rate in (30, 60, 144):
        h = (1 / frame_rate) / simulator.substep_count(1 / frame_rate)
        assert h * omega_max <= 0.5 + 1e-9
