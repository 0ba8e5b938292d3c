"""OpenGL renderers (moderngl) that move a photo by its spectral volume, one frame per draw call.

This module owns the real-time paths: the interactive viewport and fast previews. Both renderers
upload the photo and the spectrum once, as textures; a frame is then described by the K complex
band factors w_k alone (2K floats in a uniform array), and the GPU evaluates
F(p) = Re sum_k w_k S_k(p) itself. Playback passes w_k = band_factors(K, T, t) (times per-band
gains, see playback_band_factors); the modal simulator (app/core/modal.py) passes its q_k.

    MeshWarpRenderer  a grid mesh (1..16 px spacing) whose vertex shader displaces each vertex;
                      the photo is texture-mapped onto it. Depth = -|F|^2 (squeezed into the depth
                      range) with a depth test, so where the mesh folds over itself the part that
                      moves more is drawn in front (leaves over sky). The still photo is drawn
                      behind it and shows where the mesh border pulls inward. With a flow layer
                      (draw(..., flow=(forward, backward, share))) the mesh is drawn twice into
                      offscreen targets, moved also by the flow's forward and backward
                      displacements (two RG32F uploads per frame), and the two are mixed by the
                      loop's share (app/render/flow.py: symmetric blending).
    GLSplatRenderer   the softmax splat of app/render/splat.py on the GPU: a pass computes the flow
                      into an RG32F texture; one point per pixel, instanced 4 times (the 4 bilinear
                      taps), adds (rgb * w, w) * tap weight into an RGBA32F target with additive
                      blending, w = exp(max(alpha W(p) - max alpha W, -50)); a pass divides by the
                      weight; holes are filled by pull-push in GL (one pass per pyramid level,
                      the same arithmetic as splat.fill_holes).

Conventions: textures hold image row 0 at texel row 0; offscreen targets keep that, so a readback
is already top-row-first. Drawing into a screen framebuffer (draw(..., flip_y=True)) puts row 0 at
the top. Shaders live in app/render/shaders/ (#include "x.glsl" and the NUM_BANDS define are
resolved here).

Contexts: create_headless_context() makes a standalone EGL context (tests, CLI, benchmarks; needs
the apt packages libegl1 libgl1, Mesa llvmpipe without a GPU); inside Qt, pass the context that
moderngl.create_context() returns in initializeGL. release_context() releases a headless context
and its EGL thread state (so a Qt GL context can become current afterwards in the same thread).
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import numpy as np

from app.core.spectral import Motion, band_factors

SHADER_DIR = Path(__file__).resolve().parent / "shaders"
MAX_BANDS = 16
MIN_GRID_PX, MAX_GRID_PX = 1, 16
INCLUDE_PATTERN = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)


# --- contexts and shaders ----------------------------------------------------------------------


def create_headless_context():
    """A standalone OpenGL >= 3.3 context on EGL (Mesa llvmpipe on a machine without a GPU)."""
    import moderngl

    return moderngl.create_context(standalone=True, backend="egl", require=330)


def release_context(ctx) -> None:
    """Release a headless context, then EGL's per-thread state (see /work/shared/STACK.md)."""
    ctx.release()
    try:
        ctypes.CDLL("libEGL.so.1").eglReleaseThread()
    except (OSError, AttributeError):
        pass


def device_name(ctx) -> str:
    """'llvmpipe' for Mesa's software rasterizer, else the GL_RENDERER string."""
    renderer = str(ctx.info.get("GL_RENDERER", "unknown"))
    return "llvmpipe" if "llvmpipe" in renderer.lower() else renderer


def shader_source(name: str, num_bands: int = MAX_BANDS) -> str:
    """A shader file with its #include lines expanded and NUM_BANDS set to num_bands."""
    source = (SHADER_DIR / name).read_text()
    source = INCLUDE_PATTERN.sub(lambda match: (SHADER_DIR / match.group(1)).read_text(), source)
    return source.replace("#define NUM_BANDS 16", f"#define NUM_BANDS {int(num_bands)}")


def _program(ctx, vertex: str, fragment: str, num_bands: int = MAX_BANDS):
    return ctx.program(vertex_shader=shader_source(vertex, num_bands),
                       fragment_shader=shader_source(fragment, num_bands))


def _set(program, name: str, value) -> None:
    """Set a uniform unless the compiler optimized it away."""
    if name in program:
        program[name].value = value


def _check_image_and_motion(image: np.ndarray, motion: Motion) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"The photo must be uint8 (H, W, 3); got {image.dtype} {image.shape}.")
    if image.shape[:2] != (motion.height, motion.width):
        raise ValueError(f"The photo is {image.shape[1]}x{image.shape[0]} but the motion is "
                         f"{motion.width}x{motion.height}; resize the motion first.")
    if not 1 <= motion.num_bands <= MAX_BANDS:
        raise ValueError(f"The GL renderers take 1 to {MAX_BANDS} bands; this motion has {motion.num_bands}.")
    return np.ascontiguousarray(image)


# --- what a frame is ---------------------------------------------------------------------------


def playback_band_factors(motion: Motion, t: float, gains=None, slowdown: float = 1.0) -> np.ndarray:
    """Band factors (complex64 (K,)) for frame t of the loop, times per-band gains (real or complex).

    With these, a renderer shows displacement_at(motion, t, slowdown) (scaled band by band).
    """
    factors = band_factors(motion.num_bands, motion.num_frames, float(t) / float(slowdown))  # (K,)
    if gains is not None:
        factors = factors * np.asarray(gains).astype(np.complex64)
    return factors.astype(np.complex64)


def _factor_bytes(factors, num_bands: int) -> bytes:
    """complex (K,) -> K vec2 (Re, Im) float32: the 2K numbers sent per frame."""
    factors = np.asarray(factors).astype(np.complex64).reshape(-1)
    if factors.shape != (num_bands,):
        raise ValueError(f"Expected {num_bands} band factors; got {factors.shape[0]}.")
    return np.stack([factors.real, factors.imag], axis=1).astype(np.float32).tobytes()  # (K, 2)


def _spectrum_texture(ctx, motion: Motion):
    """K-layer RGBA32F texture array: layer k holds (Re S_x, Im S_x, Re S_y, Im S_y) of band k."""
    spectrum = motion.spectrum  # (K, 2, H, W) complex64
    layers = np.stack([spectrum[:, 0].real, spectrum[:, 0].imag, spectrum[:, 1].real, spectrum[:, 1].imag],
                      axis=-1).astype(np.float32)  # (K, H, W, 4)
    texture = ctx.texture_array((motion.width, motion.height, motion.num_bands), 4,
                                np.ascontiguousarray(layers).tobytes(), dtype="f4")
    _nearest(texture)
    return texture


def _nearest(texture) -> None:
    import moderngl

    texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
    texture.repeat_x = False
    texture.repeat_y = False
    if hasattr(texture, "repeat_z"):
        texture.repeat_z = False


def _image_texture(ctx, image: np.ndarray, linear: bool):
    """RGB8 texture of a uint8 (H, W, 3) photo, clamped at the edges."""
    import moderngl

    height, width = image.shape[:2]
    texture = ctx.texture((width, height), 3, image.tobytes(), alignment=1)
    texture.repeat_x = False
    texture.repeat_y = False
    texture.filter = (moderngl.LINEAR, moderngl.LINEAR) if linear else (moderngl.NEAREST, moderngl.NEAREST)
    return texture


# --- mesh warp ---------------------------------------------------------------------------------


def grid_lines(size: int, spacing: int) -> np.ndarray:
    """Vertex positions along one axis, in pixel units: the image edge 0, pixel centres
    0.5, 0.5 + spacing, ..., always the last centre size - 0.5, and the far edge size."""
    centres = np.arange(0.5, size, spacing, dtype=np.float64)
    if centres[-1] != size - 0.5:
        centres = np.append(centres, size - 0.5)
    return np.concatenate([[0.0], centres, [float(size)]]).astype(np.float32)


def mesh_grid(width: int, height: int, grid_px: int):
    """Vertices float32 (N, 2) in pixel units and triangle indices uint32 (M, 3) of the warp mesh."""
    xs, ys = grid_lines(width, grid_px), grid_lines(height, grid_px)
    grid_x, grid_y = np.meshgrid(xs, ys)  # (rows, columns)
    vertices = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)  # (N, 2)
    columns = len(xs)
    top_left = (np.arange(len(ys) - 1)[:, None] * columns + np.arange(columns - 1)[None, :]).ravel()
    top_right, bottom_left = top_left + 1, top_left + columns
    bottom_right = bottom_left + 1
    triangles = np.concatenate([np.stack([top_left, top_right, bottom_left], axis=1),
                                np.stack([top_right, bottom_right, bottom_left], axis=1)])  # (M, 3)
    return vertices, triangles.astype(np.uint32)


class MeshWarpRenderer:
    """Texture-mapped grid mesh displaced in the vertex shader, depth-sorted by motion magnitude.

    ctx: a moderngl context (create_headless_context(), or Qt's). image: uint8 (H, W, 3) with the
    motion's size. grid_px: vertex spacing in pixels (1 = one vertex per pixel centre).
    """

    def __init__(self, ctx, image: np.ndarray, motion: Motion, grid_px: int = 4):
        image = _check_image_and_motion(image, motion)
        if not MIN_GRID_PX <= int(grid_px) <= MAX_GRID_PX:
            raise ValueError(f"grid_px must be {MIN_GRID_PX} to {MAX_GRID_PX}; got {grid_px}.")
        self.ctx = ctx
        self.motion = motion
        self.grid_px = int(grid_px)
        self.num_bands = motion.num_bands
        self.height, self.width = image.shape[:2]

        self.program = _program(ctx, "mesh_warp.vert", "mesh_warp.frag", self.num_bands)
        self.background_program = _program(ctx, "fullscreen.vert", "background.frag")
        self.spectrum_texture = _spectrum_texture(ctx, motion)
        self.image_texture = _image_texture(ctx, image, linear=True)
        vertices, triangles = mesh_grid(self.width, self.height, self.grid_px)
        self.num_vertices = len(vertices)
        self.vertex_buffer = ctx.buffer(vertices.tobytes())
        self.index_buffer = ctx.buffer(triangles.tobytes())
        self.mesh = ctx.vertex_array(self.program, [(self.vertex_buffer, "2f", "position")],
                                     index_buffer=self.index_buffer, index_element_size=4)
        self.background = ctx.vertex_array(self.background_program, [])
        _set(self.program, "spectrum", 0)
        _set(self.program, "image", 1)
        _set(self.program, "image_size", (float(self.width), float(self.height)))
        _set(self.background_program, "image", 1)

        # The offscreen target render() reads back: RGBA8 colour + depth.
        self.colour_target = ctx.texture((self.width, self.height), 4)
        self.depth_target = ctx.depth_renderbuffer((self.width, self.height))
        self.framebuffer = ctx.framebuffer([self.colour_target], self.depth_target)
        _set(self.program, "flow_field", 2)
        _set(self.program, "use_flow", False)
        self.flow_parts = None  # made on the first flow frame: field texture, 2 targets, mix program

    def _flow_resources(self):
        """The flow layer's GL objects: an RG32F field texture, two offscreen passes and the mix."""
        if self.flow_parts is None:
            ctx = self.ctx
            field = ctx.texture((self.width, self.height), 2, dtype="f4")
            _nearest(field)
            passes = []
            for _ in range(2):
                colour = ctx.texture((self.width, self.height), 4)
                colour.repeat_x = colour.repeat_y = False
                depth = ctx.depth_renderbuffer((self.width, self.height))
                passes.append((colour, depth, ctx.framebuffer([colour], depth)))
            program = _program(ctx, "fullscreen.vert", "flow_mix.frag")
            _set(program, "forward_frame", 3)
            _set(program, "backward_frame", 4)
            self.flow_parts = {"field": field, "passes": passes, "program": program,
                               "array": ctx.vertex_array(program, [])}
        return self.flow_parts

    def _draw_flow(self, factors, flow, framebuffer, viewport, flip_y: bool) -> None:
        """Two mesh passes (sway + forward flow, sway + backward flow) mixed into framebuffer."""
        import moderngl

        forward, backward, share = flow
        parts = self._flow_resources()
        for (_, _, target), field in zip(parts["passes"], (forward, backward)):
            values = np.ascontiguousarray(np.asarray(field, np.float32).transpose(1, 2, 0))  # (H, W, 2)
            if values.shape != (self.height, self.width, 2):
                raise ValueError(f"A flow field must be (2, {self.height}, {self.width}); got {np.shape(field)}.")
            parts["field"].write(values.tobytes())
            parts["field"].use(2)
            _set(self.program, "use_flow", True)
            self._draw_mesh(factors, target, (0, 0, self.width, self.height), flip_y=False)
        _set(self.program, "use_flow", False)
        framebuffer.use()
        viewport = tuple(viewport) if viewport is not None else framebuffer.viewport
        self.ctx.viewport = viewport
        parts["passes"][0][0].use(3)
        parts["passes"][1][0].use(4)
        _set(parts["program"], "share", float(share))
        _set(parts["program"], "flip_y", bool(flip_y))
        self.ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST)
        parts["array"].render(moderngl.TRIANGLES, vertices=3)

    def set_band_factors(self, factors) -> None:
        """Upload this frame's K complex factors: the only per-frame upload (2K floats)."""
        self.program["band_factors"].write(_factor_bytes(factors, self.num_bands))

    def draw(self, factors, framebuffer, viewport=None, flip_y: bool = True, flow=None) -> None:
        """Draw a frame into framebuffer (which needs a depth buffer), no readback.

        viewport: (x, y, width, height) in the framebuffer, default all of it. flip_y=True puts
        image row 0 at the top, as a screen shows it. flow: None, or (forward, backward, share)
        with float (2, H, W) flow displacements and the backward share t / P of this frame.
        """
        if flow is not None:
            self._draw_flow(factors, flow, framebuffer, viewport, flip_y)
            return
        self._draw_mesh(factors, framebuffer, viewport, flip_y)

    def _draw_mesh(self, factors, framebuffer, viewport, flip_y: bool) -> None:
        """The photo behind, the displaced mesh in front, into framebuffer."""
        import moderngl

        ctx = self.ctx
        self.set_band_factors(factors)
        framebuffer.use()
        viewport = tuple(viewport) if viewport is not None else framebuffer.viewport
        ctx.viewport = viewport
        framebuffer.clear(0.0, 0.0, 0.0, 1.0, depth=1.0, viewport=viewport)
        _set(self.program, "flip_y", bool(flip_y))
        _set(self.background_program, "flip_y", bool(flip_y))
        self.spectrum_texture.use(0)
        self.image_texture.use(1)
        ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.depth_func = "<="  # ties (equal motion) go to the later triangle; still pixels sit at the far plane
        self.background.render(moderngl.TRIANGLES, vertices=3)
        self.mesh.render(moderngl.TRIANGLES)
        ctx.disable(moderngl.DEPTH_TEST)

    def render(self, factors, flow=None) -> np.ndarray:
        """One frame as uint8 (H, W, 3), read back from the offscreen target (flow: as in draw)."""
        self.draw(factors, self.framebuffer, flip_y=False, flow=flow)
        data = self.framebuffer.read(components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3).copy()

    def release(self) -> None:
        """Release every GL object this renderer made (not the context)."""
        resources = [self.mesh, self.background, self.vertex_buffer, self.index_buffer, self.framebuffer,
                     self.colour_target, self.depth_target, self.spectrum_texture, self.image_texture,
                     self.program, self.background_program]
        if self.flow_parts is not None:
            resources += [self.flow_parts["array"], self.flow_parts["program"], self.flow_parts["field"]]
            for colour, depth, target in self.flow_parts["passes"]:
                resources += [target, colour, depth]
            self.flow_parts = None
        for resource in resources:
            resource.release()


# --- softmax splat -----------------------------------------------------------------------------


def _pyramid_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """(w, h) of pull-push levels 1, 2, ...: halved (rounding up) until 1x1, at least one level."""
    sizes = []
    while True:
        width, height = (width + 1) // 2, (height + 1) // 2
        sizes.append((width, height))
        if max(width, height) == 1:
            return sizes


class GLSplatRenderer:
    """Forward softmax splatting with 4-tap bilinear points and pull-push hole filling, in GL.

    Matches app.render.splat.splat(..., mode="softmax") with importance alpha * W(p),
    W(p) = mean_t |F_t(p)| (mean_motion_magnitude), and fill_holes, to float32 rounding.
    """

    def __init__(self, ctx, image: np.ndarray, motion: Motion, alpha: float = 1.0, importance=None):
        """importance: optional float (H, W) map to use instead of alpha * mean_motion_magnitude(motion)."""
        import moderngl

        image = _check_image_and_motion(image, motion)
        self.ctx = ctx
        self.motion = motion
        self.num_bands = motion.num_bands
        self.height, self.width = image.shape[:2]
        size = (self.width, self.height)
        if importance is None:
            from app.render.splat import mean_motion_magnitude

            importance = float(alpha) * mean_motion_magnitude(motion)
        importance = np.asarray(importance, np.float32).reshape(self.height, self.width)
        finite = np.isfinite(importance)
        self.largest_importance = float(importance[finite].max()) if finite.any() else 0.0
        importance = np.where(finite, importance, np.float32(-np.inf)).astype(np.float32)  # exp(-inf) = 0

        self.flow_program = _program(ctx, "fullscreen.vert", "splat_flow.frag", self.num_bands)
        self.points_program = _program(ctx, "splat_points.vert", "splat_points.frag")
        self.normalize_program = _program(ctx, "fullscreen.vert", "splat_normalize.frag")
        self.pull_program = _program(ctx, "fullscreen.vert", "pull.frag")
        self.push_program = _program(ctx, "fullscreen.vert", "push.frag")
        self.composite_program = _program(ctx, "fullscreen.vert", "splat_composite.frag")
        self.programs = [self.flow_program, self.points_program, self.normalize_program, self.pull_program,
                         self.push_program, self.composite_program]
        self.vertex_arrays = {program: ctx.vertex_array(program, []) for program in self.programs}

        self.spectrum_texture = _spectrum_texture(ctx, motion)
        self.image_texture = _image_texture(ctx, image, linear=False)
        self.importance_texture = ctx.texture(size, 1, importance.tobytes(), dtype="f4")
        _nearest(self.importance_texture)

        def float_target(target_size, components):
            texture = ctx.texture(target_size, components, dtype="f4")
            _nearest(texture)
            return texture, ctx.framebuffer([texture])

        self.flow_texture, self.flow_framebuffer = float_target(size, 2)
        self.accumulation_texture, self.accumulation_framebuffer = float_target(size, 4)
        self.normalized_texture, self.normalized_framebuffer = float_target(size, 4)
        self.pyramid_sizes = _pyramid_sizes(*size)
        self.pull_levels = [float_target(level_size, 4) for level_size in self.pyramid_sizes]  # levels 1..L
        self.filled_levels = [float_target(level_size, 4) for level_size in self.pyramid_sizes]
        self.output_texture = ctx.texture(size, 4)
        self.output_framebuffer = ctx.framebuffer([self.output_texture])

        _set(self.flow_program, "spectrum", 0)
        for name, unit in (("flow", 0), ("image", 1), ("importance", 2)):
            _set(self.points_program, name, unit)
        _set(self.points_program, "image_size", size)
        _set(self.points_program, "largest_importance", self.largest_importance)
        _set(self.normalize_program, "accumulation", 0)
        _set(self.pull_program, "finer", 0)
        _set(self.push_program, "level", 0)
        _set(self.push_program, "coarser_filled", 1)
        _set(self.composite_program, "normalized", 0)
        _set(self.composite_program, "coarser_filled", 1)
        _set(self.composite_program, "image_size", size)
        _set(self.composite_program, "coarser_size", self.pyramid_sizes[0])
        self._moderngl = moderngl

    def set_band_factors(self, factors) -> None:
        """Upload this frame's K complex factors: the only per-frame upload (2K floats)."""
        self.flow_program["band_factors"].write(_factor_bytes(factors, self.num_bands))

    def _fullscreen(self, program, framebuffer, size) -> None:
        framebuffer.use()
        self.ctx.viewport = (0, 0) + tuple(size)
        self.vertex_arrays[program].render(self._moderngl.TRIANGLES, vertices=3)

    def splat(self, factors) -> None:
        """Passes 1-3: flow, additive 4-tap point splat, normalization (into normalized_texture)."""
        moderngl = self._moderngl
        ctx = self.ctx
        size = (self.width, self.height)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        self.set_band_factors(factors)
        self.spectrum_texture.use(0)
        _set(self.flow_program, "flip_y", False)
        self._fullscreen(self.flow_program, self.flow_framebuffer, size)

        self.accumulation_framebuffer.use()
        ctx.viewport = (0, 0) + size
        self.accumulation_framebuffer.clear(0.0, 0.0, 0.0, 0.0)
        self.flow_texture.use(0)
        self.image_texture.use(1)
        self.importance_texture.use(2)
        ctx.enable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)
        ctx.blend_func = moderngl.ONE, moderngl.ONE
        ctx.blend_equation = moderngl.FUNC_ADD
        self.vertex_arrays[self.points_program].render(moderngl.POINTS, vertices=self.width * self.height)
        ctx.disable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)

        self.accumulation_texture.use(0)
        _set(self.normalize_program, "flip_y", False)
        self._fullscreen(self.normalize_program, self.normalized_framebuffer, size)

    def fill(self) -> None:
        """Pull-push over the normalized splat: pull down to 1x1, then push back up to level 1."""
        finer_texture, finer_size = self.normalized_texture, (self.width, self.height)
        _set(self.pull_program, "flip_y", False)
        _set(self.push_program, "flip_y", False)
        for (texture, framebuffer), size in zip(self.pull_levels, self.pyramid_sizes):
            finer_texture.use(0)
            _set(self.pull_program, "finer_size", finer_size)
            self._fullscreen(self.pull_program, framebuffer, size)
            finer_texture, finer_size = texture, size
        coarser = None
        for level in reversed(range(len(self.pyramid_sizes))):
            self.pull_levels[level][0].use(0)
            _set(self.push_program, "is_coarsest", coarser is None)
            if coarser is not None:
                self.filled_levels[coarser][0].use(1)
                _set(self.push_program, "coarser_size", self.pyramid_sizes[coarser])
            self._fullscreen(self.push_program, self.filled_levels[level][1], self.pyramid_sizes[level])
            coarser = level

    def draw(self, factors, framebuffer, viewport=None, flip_y: bool = True) -> None:
        """Splat, fill and composite a frame into framebuffer, no readback (flip_y: row 0 at the top)."""
        self.splat(factors)
        self.fill()
        framebuffer.use()
        viewport = tuple(viewport) if viewport is not None else framebuffer.viewport
        self.ctx.viewport = viewport
        self.normalized_texture.use(0)
        self.filled_levels[0][0].use(1)
        _set(self.composite_program, "flip_y", bool(flip_y))
        self.vertex_arrays[self.composite_program].render(self._moderngl.TRIANGLES, vertices=3)

    def render(self, factors) -> np.ndarray:
        """One filled frame as uint8 (H, W, 3), read back."""
        self.draw(factors, self.output_framebuffer, flip_y=False)
        data = self.output_framebuffer.read(components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3).copy()

    def render_unfilled(self, factors):
        """The splat before filling: colour float32 (H, W, 3) (0 in holes) and holes bool (H, W)."""
        self.splat(factors)
        data = self.normalized_texture.read()
        normalized = np.frombuffer(data, np.float32).reshape(self.height, self.width, 4)
        return normalized[..., :3].copy(), normalized[..., 3] == 0

    def read_flow(self) -> np.ndarray:
        """The flow of the last splat, float32 (2, H, W), x then y (as the shaders computed it)."""
        flow = np.frombuffer(self.flow_texture.read(), np.float32).reshape(self.height, self.width, 2)
        return np.ascontiguousarray(flow.transpose(2, 0, 1))

    def release(self) -> None:
        """Release every GL object this renderer made (not the context)."""
        resources = list(self.vertex_arrays.values()) + self.programs
        resources += [self.spectrum_texture, self.image_texture, self.importance_texture,
                      self.flow_texture, self.flow_framebuffer, self.accumulation_texture,
                      self.accumulation_framebuffer, self.normalized_texture, self.normalized_framebuffer,
                      self.output_texture, self.output_framebuffer]
        for texture, framebuffer in self.pull_levels + self.filled_levels:
            resources += [framebuffer, texture]
        for resource in resources:
            resource.release()
