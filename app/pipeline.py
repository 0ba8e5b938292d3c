"""The jobs the studio and the command line share: photo + motion -> frames -> file.

    load_photo(path) -> uint8 (H, W, 3)          (one-sentence errors for bad files)
    load_learned_renderer(device) -> module|None (models/renderer.safetensors when shipped)
    render_to_file(image, motion, out, settings, progress, cancel) -> path
    run_demo(out_dir)                            (what `make run` does)
    flow_example(name) -> (photo, FlowHints)     (the bundled water example)
    motion_figure_lines(predicted, extracted)    (the demo's figures of a motion beside its reference)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.core.spectral import Motion, load_motion

from app.paths import (  # noqa: F401 (the path constants, re-exported for callers of the pipeline)
    EXAMPLES_DIR, MODELS_DIR, MOTION_MODEL_WEIGHTS, RENDERER_WEIGHTS, RESOURCES_DIR, ROOT_DIR,
)
DEFAULT_EXAMPLE = "willow"
FLOW_EXAMPLE = "fountain"


def example_paths(name: str = DEFAULT_EXAMPLE):
    """(photo path, motion path) of a bundled example."""
    return EXAMPLES_DIR / f"{name}.png", EXAMPLES_DIR / f"{name}.npz"


def bundled_examples() -> list[str]:
    """Names of the bundled examples that have both a photo and a motion."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.png") if p.with_suffix(".npz").is_file())


def flow_example(name: str = FLOW_EXAMPLE):
    """(photo uint8 (H, W, 3), FlowHints) of a bundled flow example: NAME.png and NAME.flow.json."""
    image = load_photo(str(EXAMPLES_DIR / f"{name}.png"))
    return image, load_flow_hints(str(EXAMPLES_DIR / f"{name}.flow.json"))


def load_flow_hints(path: str):
    """FlowHints from a .flow.json (arrows, anchors, loop; see app/core/flow_field.py) and the fluid
    mask image it names (relative to the file); FlowHintError (one sentence) for a bad file."""
    import json

    from app.core.flow_field import FlowHintError, hints_from_dict
    from app.data.images import ImageLoadError

    name = os.path.basename(path)
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise FlowHintError(f"Flow hints '{name}' cannot be read ({type(error).__name__}).") from None
    if not isinstance(values, dict):
        raise FlowHintError(f"Flow hints '{name}' are not a JSON object.")
    mask = None
    if values.get("mask"):
        try:
            mask = load_photo(str(Path(path).parent / values["mask"])).mean(axis=2).astype(np.float32) / 255.0  # (H, W)
        except ImageLoadError as error:
            raise FlowHintError(str(error)) from None
    return hints_from_dict(values, mask)


def load_photo(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB photo; ImageLoadError (one sentence) for a bad file."""
    from app.data.images import load_image

    return load_image(str(path)).pixels


def load_learned_renderer(device="cpu", path=RENDERER_WEIGHTS):
    """The shipped learned renderer on `device`, or None when no weights are shipped."""
    from app.render.net import load_renderer

    if not Path(path).is_file():
        return None
    return load_renderer(path, device)


def render_to_file(image: np.ndarray, motion: Motion | None, out_path: str, settings=None, progress=None,
                   cancel=None, net=None, flow=None, fps: float | None = None, gif_colours: int = 256) -> str:
    """Render the loop (sway, and flow when given) with settings (RenderSettings) and export it by
    out_path's extension.

    fps: playback rate of the file (default the motion's); gif_colours: a GIF's palette size.
    """
    from app.render.export import export_frames
    from app.render.frames import RenderSettings, frame_count, render_loop, resolve_device, scene_motion

    settings = settings or RenderSettings()
    if settings.renderer == "net" and net is None:
        net = load_learned_renderer(resolve_device(settings.device))
        if net is None:
            raise ValueError("No learned renderer is shipped in models/; use --renderer splat.")
    total = frame_count(motion, settings, flow)
    frames = render_loop(image, motion, settings, cancel=cancel, net=net, flow=flow)
    fps = fps or scene_motion(motion, flow).fps
    return export_frames(out_path, frames, fps, progress=progress, cancel=cancel, total=total,
                         gif_colours=gif_colours)


def run_demo(out_dir: str = "out"):
    """Animate the bundled example into out_dir; yields one line per step for the console.

    With the shipped motion model the photo's motion is predicted (DDIM, default steps, seed 0);
    the motion extracted from the example's own loop is rendered beside it for comparison.
    Without a model, only the extracted motion is rendered.
    """
    import time

    from app.render.export import export_frames, read_frame_count, seam_error
    from app.render.frames import RenderSettings, render_loop

    photo_path, motion_path = example_paths()
    image = load_photo(str(photo_path))
    os.makedirs(out_dir, exist_ok=True)
    motions = [("loop", load_motion(str(motion_path)), "the motion extracted from its source loop")]
    yield f"Example '{DEFAULT_EXAMPLE}': photo {image.shape[1]}x{image.shape[0]}."
    if MOTION_MODEL_WEIGHTS.is_file():
        from app.diffusion.predict import DEFAULT_STEPS, predict_motion
        from app.diffusion.weights import load_motion_model
        from app.render.frames import resolve_device

        device = resolve_device("auto")
        began = time.perf_counter()
        predicted = predict_motion(image, load_motion_model(MOTION_MODEL_WEIGHTS, device), device=device, seed=0)
        yield (f"Predicted its motion with {MOTION_MODEL_WEIGHTS.name} ({DEFAULT_STEPS} DDIM steps, "
               f"{device}) in {time.perf_counter() - began:.1f} s.")
        motions.insert(0, ("predicted", predicted, "the motion the model predicted"))
        yield from motion_figure_lines(predicted, motions[-1][1])
    else:
        yield from motion_figure_lines(None, motions[-1][1], image.shape[:2])
    for label, motion, what in motions:
        began = time.perf_counter()
        frames = list(render_loop(image, motion, RenderSettings(renderer="splat", device="auto")))
        seconds = time.perf_counter() - began
        video_path = export_frames(os.path.join(out_dir, f"{DEFAULT_EXAMPLE}-{label}.mp4"), frames, motion.fps)
        seam = seam_error(frames)
        yield (f"Wrote {video_path} ({what}): {read_frame_count(video_path)} frames rendered by softmax "
               f"splatting at {len(frames) / seconds:.0f} frames/s; loop seam {seam['seam']:.2f} against a "
               f"median frame step of {seam['median_step']:.2f} (ratio {seam['ratio']:.2f}).")
    yield from _flow_demo(out_dir)


def _flow_demo(out_dir: str):
    """The bundled water example flows (no model needed): a seamless loop from its arrows and mask."""
    import time

    from app.core.flow_field import flow_from_hints
    from app.render.export import export_frames, read_frame_count, seam_error
    from app.render.frames import RenderSettings, render_loop

    os.makedirs(out_dir, exist_ok=True)
    image, hints = flow_example()
    flow = flow_from_hints(hints, *image.shape[:2])
    began = time.perf_counter()
    frames = list(render_loop(image, None, RenderSettings(renderer="splat", device="auto"), flow=flow))
    seconds = time.perf_counter() - began
    video_path = export_frames(os.path.join(out_dir, f"{FLOW_EXAMPLE}-flow.mp4"), frames, flow.fps)
    seam = seam_error(frames)
    yield (f"Wrote {video_path} (the '{FLOW_EXAMPLE}' photo flowing along {len(hints.arrows)} arrows): "
           f"{read_frame_count(video_path)} frames by symmetric softmax splatting at {len(frames) / seconds:.0f} "
           f"frames/s; loop seam {seam['seam']:.2f} against a median frame step of {seam['median_step']:.2f} "
           f"(ratio {seam['ratio']:.2f}).")


def _times(log10_ratio: float) -> str:
    """A power ratio 10^r as '0.52x', '3.1x', '323x'."""
    value = 10.0 ** float(log10_ratio)
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def _share(share) -> str:
    return "-" if share is None else f"{share:.2f}"


def motion_figure_lines(predicted: Motion | None, extracted: Motion, size=None) -> list[str]:
    """Console lines: |F_0|, mean frame step and share of power in bands 1-4 of the predicted motion
    beside the extracted one, and every band's power over the extracted band's (docs/evaluation.md).

    Both are measured at the predicted motion's size (the photo's); without a prediction, the
    extracted motion's figures alone at `size` (H, W).
    """
    from app.core.spectral import resize_motion
    from app.eval.metrics import LOW_BANDS, band_log_ratio, band_power, first_frame_px, low_band_share, mean_frame_step

    def figures(motion):
        return first_frame_px(motion), mean_frame_step(motion), low_band_share(band_power(motion))

    height, width = (predicted.height, predicted.width) if predicted is not None else size
    reference = resize_motion(extracted, height, width)
    low = f"bands {LOW_BANDS[0]}-{LOW_BANDS[1]}"
    ref_f0, ref_step, ref_share = figures(reference)
    if predicted is None:
        return [f"Extracted motion at {width}x{height}: |F_0| {ref_f0:.2f} px, mean frame step {ref_step:.2f} px, "
                f"share of power in {low} {_share(ref_share)}."]
    f0, step, share = figures(predicted)
    step_ratio = f" ({step / ref_step:.1f}x)" if ref_step > 0 else ""
    ratios = band_log_ratio(predicted, reference)  # bands 1..K-1
    return [
        f"Predicted | extracted motion at {width}x{height}: |F_0| {f0:.2f} | {ref_f0:.2f} px; "
        f"mean frame step {step:.2f} | {ref_step:.2f} px{step_ratio}; "
        f"share of power in {low} {_share(share)} | {_share(ref_share)}.",
        "Band power, predicted over extracted: "
        + ", ".join(f"{band}: {_times(r)}" for band, r in enumerate(ratios, start=1)) + ".",
    ]
