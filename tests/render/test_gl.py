"""Tests for app.render.gl (headless EGL): mesh warp, GL softmax splat, per-frame uploads, pokes."""

import numpy as np
import pytest
import torch

from app.core.modal import ModalParameters
from app.core.spectral import Motion, band_factors, displacement_at, zero_motion
from app.render.splat import importance_from_motion, mean_motion_magnitude, splat, splat_frames


@pytest.fixture
def ctx():
    """A fresh headless context per test (a few ms), released after it."""
    try:
        from app.render.gl import create_headless_context, release_context

        context = create_headless_context()
    except Exception as error:  # no libEGL, no EGL device, no moderngl
        pytest.skip(f"No headless OpenGL 3.3 context on EGL ({type(error).__name__}: {error}); "
                    "install libegl1 and libgl1 (Mesa llvmpipe).")
    yield context
    release_context(context)


def random_image(height, width, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_image(height, width) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width]
    channels = [128 + 100 * np.sin(columns / 5.0 + rows / 9.0), 128 + 100 * np.cos(rows / 4.0),
                128 + 100 * np.sin((columns - rows) / 7.0)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def shift_motion(height, width, shift_x) -> Motion:
    """One band whose factor 1 moves every pixel by shift_x (an (H, W) map or a number) to the right."""
    spectrum = np.zeros((2, 2, height, width), np.complex64)
    spectrum[1, 0] = shift_x
    return Motion(spectrum, 150, 30)


def smooth_motion(height, width, num_bands=8, seed=0) -> Motion:
    """Smooth swaying, up to a few pixels, in num_bands bands."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width] / max(height, width)
    spectrum = np.zeros((num_bands, 2, height, width), np.complex64)
    for band in range(1, num_bands):
        for axis in range(2):
            phase = rng.uniform(0, 2 * np.pi)
            amplitude = 2.5 / band * (1 + np.sin(4 * columns + 3 * rows + phase))
            spectrum[band, axis] = amplitude * np.exp(1j * phase) * 150 / 2
    return Motion(spectrum, 150, 30)


def unit_factors(num_bands) -> np.ndarray:
    factors = np.zeros(num_bands, np.complex64)
    factors[1] = 1.0
    return factors


# --- mesh warp -------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid_px", [1, 4, 16])
def test_mesh_with_zero_factors_reproduces_the_photo(ctx, grid_px):
    from app.render.gl import MeshWarpRenderer

    image = random_image(37, 53)
    renderer = MeshWarpRenderer(ctx, image, smooth_motion(37, 53), grid_px=grid_px)
    frame = renderer.render(np.zeros(8, np.complex64))
    renderer.release()
    assert frame.shape == image.shape and frame.dtype == np.uint8
    assert np.abs(frame.astype(int) - image).max() <= 1


@pytest.mark.parametrize("grid_px", [1, 4])
@pytest.mark.parametrize("shift", [3, -5])
def test_uniform_displacement_shifts_the_photo(ctx, grid_px, shift):
    from app.render.gl import MeshWarpRenderer

    image = random_image(32, 48, seed=1)
    renderer = MeshWarpRenderer(ctx, image, shift_motion(32, 48, shift), grid_px=grid_px)
    frame = renderer.render(unit_factors(2))
    renderer.release()
    expected = np.roll(image, shift, axis=1)
    interior = slice(abs(shift) + 1, 48 - abs(shift) - 1)
    assert np.abs(frame[:, interior].astype(int) - expected[:, interior]).max() <= 1


@pytest.mark.parametrize("shift_a, shift_b", [(10, -4), (4, -10)])
def test_larger_motion_draws_in_front(ctx, shift_a, shift_b):
    """Region A (columns 8..19) moves right, region B (28..39) left; they overlap; the larger wins."""
    from app.render.gl import MeshWarpRenderer

    height, width = 24, 64
    image = random_image(height, width, seed=2)
    shift = np.zeros((height, width), np.float32)
    shift[:, 8:20] = shift_a
    shift[:, 28:40] = shift_b
    renderer = MeshWarpRenderer(ctx, image, shift_motion(height, width, shift), grid_px=1)
    frame = renderer.render(unit_factors(2))
    renderer.release()
    overlap = range(28 + shift_b + 1, 19 + shift_a)  # columns both regions cover
    assert len(overlap) >= 3
    winner = shift_a if abs(shift_a) > abs(shift_b) else shift_b
    for column in overlap:
        np.testing.assert_allclose(frame[2:-2, column], image[2:-2, column - winner], atol=1)


def test_playback_factors_show_the_same_frame_as_displacement_at(ctx):
    from app.render.gl import MeshWarpRenderer, playback_band_factors

    height, width = 48, 64
    image, motion = smooth_image(height, width), smooth_motion(height, width)
    t = 7.3
    factors = playback_band_factors(motion, t)
    np.testing.assert_allclose(factors, band_factors(motion.num_bands, motion.num_frames, t), rtol=1e-6)
    gains = np.linspace(0.5, 1.5, motion.num_bands)
    np.testing.assert_allclose(playback_band_factors(motion, t, gains), factors * gains, rtol=1e-6)

    renderer = MeshWarpRenderer(ctx, image, motion, grid_px=1)
    frame = renderer.render(factors)
    renderer.release()
    displacement = torch.from_numpy(displacement_at(motion, t))[None]  # (1, 2, H, W)
    assert displacement.abs().max() > 2
    source = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    reference = splat_frames(source, displacement, importance_from_motion(motion, 1.0))[0]
    reference = (reference.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    inside = (slice(4, -4), slice(4, -4))
    difference = np.abs(frame.astype(float) - reference)[inside].mean()
    still_difference = np.abs(image.astype(float) - reference)[inside].mean()
    assert difference < 2.0
    assert difference < 0.2 * still_difference


def test_draw_to_a_screen_framebuffer_flips_rows(ctx):
    from app.render.gl import MeshWarpRenderer

    image = random_image(20, 30, seed=3)
    renderer = MeshWarpRenderer(ctx, image, shift_motion(20, 30, 2.0), grid_px=2)
    colour, depth = ctx.texture((30, 20), 4), ctx.depth_renderbuffer((30, 20))
    screen = ctx.framebuffer([colour], depth)
    renderer.draw(unit_factors(2), screen, flip_y=True)
    shown = np.frombuffer(screen.read(components=3, alignment=1), np.uint8).reshape(20, 30, 3)
    np.testing.assert_array_equal(shown[::-1], renderer.render(unit_factors(2)))
    for resource in (screen, colour, depth):
        resource.release()
    renderer.release()


class WriteSpy:
    """Counts write() calls on a GL object by shadowing its bound method."""

    def __init__(self, resource):
        self.calls = 0
        original = resource.write

        def counting_write(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        resource.write = counting_write


def test_per_frame_upload_is_only_the_band_factors(ctx):
    from app.render.gl import GLSplatRenderer, MeshWarpRenderer

    image, motion = smooth_image(24, 32), smooth_motion(24, 32, num_bands=5)
    mesh = MeshWarpRenderer(ctx, image, motion, grid_px=4)
    splatter = GLSplatRenderer(ctx, image, motion)
    spies = [WriteSpy(resource) for resource in (mesh.spectrum_texture, mesh.image_texture, mesh.vertex_buffer,
                                                 mesh.index_buffer, splatter.spectrum_texture,
                                                 splatter.image_texture, splatter.importance_texture)]
    frames = []
    for t in (0.0, 12.5, 40.0):
        factors = band_factors(motion.num_bands, motion.num_frames, t)
        frames.append(mesh.render(factors))
        splatter.render(factors)
        for program in (mesh.program, splatter.flow_program):
            uploaded = np.array(program["band_factors"].value, np.float32)  # (K, 2)
            np.testing.assert_allclose(uploaded[:, 0] + 1j * uploaded[:, 1], factors, rtol=1e-6)
    assert all(spy.calls == 0 for spy in spies)  # textures and meshes were uploaded once, at creation
    assert not np.array_equal(frames[0], frames[1])  # the factors alone changed the picture
    mesh.release()
    splatter.release()


def test_mesh_rejects_a_bad_grid_and_mismatched_sizes(ctx):
    from app.render.gl import MeshWarpRenderer

    with pytest.raises(ValueError, match="grid_px"):
        MeshWarpRenderer(ctx, random_image(8, 8), zero_motion(8, 8), grid_px=32)
    with pytest.raises(ValueError, match="resize the motion"):
        MeshWarpRenderer(ctx, random_image(8, 10), zero_motion(8, 8))


# --- GL softmax splat ------------------------------------------------------------------------------


def torch_reference(image, flow, motion, alpha):
    source = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    importance = importance_from_motion(mean_motion_magnitude(motion), alpha)
    return source, torch.from_numpy(flow)[None], importance


@pytest.mark.parametrize("alpha", [1.0, 5.0])
def test_gl_splat_matches_the_torch_splat(ctx, alpha):
    from app.render.gl import GLSplatRenderer

    height, width = 45, 70
    image, motion = random_image(height, width, seed=4), smooth_motion(height, width, seed=4)
    renderer = GLSplatRenderer(ctx, image, motion, alpha=alpha)
    factors = band_factors(motion.num_bands, motion.num_frames, 21.7) * 1.5
    colour, holes = renderer.render_unfilled(factors)
    flow = renderer.read_flow()
    np.testing.assert_allclose(flow, np.tensordot(factors, motion.spectrum, axes=(0, 0)).real, atol=1e-3)

    source, flow_tensor, importance = torch_reference(image, flow, motion, alpha)
    expected, expected_holes = splat(source, flow_tensor, mode="softmax", importance=importance, return_holes=True)
    expected = expected[0].permute(1, 2, 0).numpy()
    expected_holes = expected_holes[0, 0].numpy()
    assert expected_holes.any()  # the test covers holes
    assert (holes != expected_holes).mean() < 0.001
    covered = ~holes & ~expected_holes
    assert np.abs(colour - expected)[covered].max() < 1e-3

    filled = renderer.render(factors)
    expected_filled = splat_frames(source, flow_tensor, importance)[0]
    expected_filled = (expected_filled.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(filled.astype(int) - expected_filled).max() <= 1
    renderer.release()


@pytest.mark.parametrize("seed", [0, 1])
def test_gl_splat_matches_torch_on_rough_flow_across_the_border(ctx, seed):
    """Independent random flow per pixel in [-3, 3]: collisions, holes, taps falling off every edge."""
    from app.render.gl import GLSplatRenderer

    height, width = 21, 34
    rng = np.random.default_rng(seed)
    image = random_image(height, width, seed=seed)
    flow = rng.uniform(-3, 3, size=(2, height, width)).astype(np.float32)
    flow[:, :, :3] = -2.5  # the left columns leave partly through the left edge
    motion = shift_motion(height, width, 0)
    motion.spectrum[1] = flow  # band 1 is the flow itself: factor 1 shows it
    importance = rng.uniform(0, 3, size=(height, width)).astype(np.float32)
    renderer = GLSplatRenderer(ctx, image, motion, importance=importance)
    colour, holes = renderer.render_unfilled(unit_factors(2))
    np.testing.assert_array_equal(renderer.read_flow(), flow)
    renderer.release()

    source = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    expected, expected_holes = splat(source, torch.from_numpy(flow)[None], mode="softmax",
                                     importance=torch.from_numpy(importance)[None, None], return_holes=True)
    expected, expected_holes = expected[0].permute(1, 2, 0).numpy(), expected_holes[0, 0].numpy()
    assert expected_holes.any()
    np.testing.assert_array_equal(holes, expected_holes)
    assert np.abs(colour - expected)[~holes].max() < 1e-3


def test_gl_splat_with_zero_factors_is_the_photo(ctx):
    from app.render.gl import GLSplatRenderer

    image = random_image(17, 23, seed=5)
    renderer = GLSplatRenderer(ctx, image, smooth_motion(17, 23))
    frame = renderer.render(np.zeros(8, np.complex64))
    renderer.release()
    np.testing.assert_array_equal(frame, image)


def test_renderers_release_cleanly_and_a_new_context_works(ctx):
    from app.render.gl import GLSplatRenderer, MeshWarpRenderer, create_headless_context, release_context

    release_context(ctx)  # the fixture's own; releasing twice is harmless
    context = create_headless_context()
    image, motion = random_image(16, 16), smooth_motion(16, 16)
    for renderer_type in (MeshWarpRenderer, GLSplatRenderer):
        renderer = renderer_type(context, image, motion)
        renderer.render(np.zeros(8, np.complex64))
        renderer.release()
    release_context(context)
    again = create_headless_context()
    renderer = MeshWarpRenderer(again, image, motion, grid_px=2)
    assert renderer.render(np.zeros(8, np.complex64)).shape == (16, 16, 3)
    renderer.release()
    release_context(again)


# --- drag and release ------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["splat", "gl"])
def test_poke_frames_start_at_the_photo_move_at_the_poke_and_settle_back(renderer, request):
    from app.interactive import poke_frames

    ctx = request.getfixturevalue("ctx") if renderer == "gl" else None  # the splat needs no GL

    height, width = 40, 56
    image = smooth_image(height, width)
    motion = smooth_motion(height, width, seed=7)
    params = ModalParameters(stiffness=3.0, alpha=1.5)  # the slowest mode dies out within the clip
    at, pull = (28, 20), (6, -3)
    frames = list(poke_frames(image, motion, at=at, pull=pull, seconds=4, fps=15, params=params,
                              renderer=renderer, ctx=ctx))
    assert len(frames) == 60
    assert all(frame.shape == image.shape and frame.dtype == np.uint8 for frame in frames)

    def change(frame, rows=slice(None), columns=slice(None)):
        return np.abs(frame.astype(float) - image)[rows, columns].mean()

    near_poke = (slice(at[1] - 6, at[1] + 6), slice(at[0] - 6, at[0] + 6))
    assert change(frames[0]) < 1.0  # starts at the photo (the pull eases in from zero)
    held = frames[6]  # t = 0.4 s: the full pull, still held
    assert change(held, *near_poke) > 10 * max(change(frames[0], *near_poke), 0.5)  # moved at the poke
    assert change(frames[-1]) < 1.0  # settled back
    assert change(frames[-1]) < 0.1 * change(held)


# --- the flow layer in the mesh warp ----------------------------------------------------------------


def constant_field(height, width, dx, dy) -> np.ndarray:
    field = np.zeros((2, height, width), np.float32)
    field[0], field[1] = dx, dy
    return field


def test_mesh_with_a_still_flow_is_the_sway_render(ctx):
    from app.render.gl import MeshWarpRenderer

    image, motion = smooth_image(24, 32), smooth_motion(24, 32, num_bands=5)
    renderer = MeshWarpRenderer(ctx, image, motion, grid_px=1)
    factors = band_factors(motion.num_bands, motion.num_frames, 20.0)
    still = np.zeros((2, 24, 32), np.float32)
    with_flow = renderer.render(factors, flow=(still, still, 0.3))
    without = renderer.render(factors)
    renderer.release()
    assert np.abs(with_flow.astype(int) - without).max() <= 1


@pytest.mark.parametrize("share", [0.0, 1.0, 0.5])
def test_mesh_flow_passes_move_the_photo_and_mix_by_the_share(ctx, share):
    from app.render.gl import MeshWarpRenderer

    image = random_image(32, 48, seed=3)
    renderer = MeshWarpRenderer(ctx, image, zero_motion(32, 48, num_bands=2), grid_px=1)
    forward, backward = constant_field(32, 48, 4, 0), constant_field(32, 48, -3, 0)
    frame = renderer.render(np.zeros(2, np.complex64), flow=(forward, backward, share))
    renderer.release()
    interior = slice(6, 42)
    expected = (1 - share) * np.roll(image, 4, axis=1).astype(float) + share * np.roll(image, -3, axis=1)
    assert np.abs(frame[:, interior].astype(float) - expected[:, interior]).max() <= 1.5


def test_mesh_rejects_a_flow_of_the_wrong_size(ctx):
    from app.render.gl import MeshWarpRenderer

    image = random_image(16, 16)
    renderer = MeshWarpRenderer(ctx, image, zero_motion(16, 16, num_bands=2), grid_px=4)
    wrong = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="flow field"):
        renderer.render(np.zeros(2, np.complex64), flow=(wrong, wrong, 0.5))
    renderer.release()


def test_the_gl_benchmark_times_the_live_flow_layer(ctx):
    from app.eval.bench_gl import HEIGHT, WIDTH, _flow_rows, benchmark_image, benchmark_motion

    motion, image = benchmark_motion(), benchmark_image()
    target = ctx.framebuffer([ctx.texture((WIDTH, HEIGHT), 4)], ctx.depth_renderbuffer((WIDTH, HEIGHT)))
    rows = [{"name": "torch-splat-fill", "fps": 10.0}, {"name": "gl-mesh-4px", "fps": 20.0}]

    def gl_row(name, render_frame):
        for index in range(2):
            render_frame(index)
        rows.append({"name": name, "fps": 5.0, "device": "gl"})

    factors = lambda i: band_factors(motion.num_bands, motion.num_frames, 7 * i)  # noqa: E731
    _flow_rows(ctx, image, motion, factors, target, gl_row, rows)
    names = [row["name"] for row in rows[2:]]
    assert names == ["flow-fields", "gl-mesh-4px-flow", "viewport-flow-frame"]
    assert rows[2]["fps"] > 0 and rows[2]["ratio"] == pytest.approx(rows[2]["fps"] / 10.0)
    assert rows[3]["mesh_ratio"] == pytest.approx(0.25)
    assert rows[4]["fps"] > 0 and rows[4]["mesh_ratio"] == pytest.approx(rows[4]["fps"] / 20.0)
