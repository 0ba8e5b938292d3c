"""Command-line front end: the same verbs the studio uses, no logic of its own.

    python -m app                        open the studio (desktop app)
    python -m app demo [--out out]       animate the bundled example into out/ (what `make run` does)
    python -m app extract VIDEO... -o DATASET_DIR [--size 256x160] [--frames 150] [--stride 10] [--K 16]
    python -m app brush IMAGE -o MOTION.npz [--mask MASK.png] [--amplitude 4] [--direction 0] ...
    python -m app render IMAGE MOTION.npz -o OUT.(mp4|gif|webm|DIR) [--renderer splat|net] [--loops N]
                         [--slowmo S] [--magnify A] [--size WxH] [--device auto|cpu|cuda]
    python -m app poke IMAGE MOTION.npz --at X,Y --pull DX,DY [--seconds 4] -o OUT.mp4
    python -m app flow IMAGE --arrow X,Y,DX,DY ... [--anchor X,Y ...] [--mask MASK.png] [--hints H.flow.json]
                         -o OUT.(mp4|gif|webm|DIR)
    python -m app predict IMAGE -o MOTION.npz [--steps N] [--guidance W] [--loop] [--seed S] [--device D]
    python -m app animate IMAGE_OR_DIR -o OUT.mp4|OUT_DIR [...]
    python -m app batch PHOTO_DIR -o OUT_DIR [--format mp4|gif|webm]
    python -m app selftest
    python -m app info MOTION.npz
    python -m app train renderer|vae|ldm|freq-attn|pixel --data DIR --out RUN_DIR ...
    python -m app eval render|motion --data DIR [--json]
    python -m app bench flow|render|predict|gl|export|studio|generate [--json]

A user's mistake (bad file, bad argument) prints one sentence and exits with status 2; a file that
cannot be written (full disk, read-only folder) one sentence and status 1; Ctrl-C "Cancelled." and
130, SIGTERM "Terminated." and 143. Arguments are range-checked while parsing (app/arguments.py);
an output that is one of the inputs is refused. Nothing is ever left half-written (app/atomic.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys

from app.arguments import MAX_SEED, motion_path, number, size_between, whole


RENDERING_VERBS = {"demo", "render", "poke", "selftest", "batch", "predict", "animate", "flow"}


def leave_one_core_free() -> None:
    """Render with all cores but one: on small machines torch's spinning thread pool otherwise
    fights the encoder and the desktop (measured on 2 cores under load: 19 frames/s with 1 thread,
    3 with 2)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))


class UserError(Exception):
    """A problem the user can fix; printed as one sentence, no traceback."""


class Terminated(BaseException):
    """SIGTERM arrived: unwind (temporary files are removed on the way) and exit 143."""


def _terminate(signum, frame):
    raise Terminated()


def refuse_overwriting_inputs(out: str, *inputs) -> None:
    """UserError when the output path is one of the inputs (a photo, a mask, a motion)."""
    from app.atomic import same_file

    for path in inputs:
        if path and os.path.exists(path) and same_file(out, path):
            raise UserError(f"The output '{out}' is one of the inputs; choose another name.")


class Progress:
    """A tqdm bar on stderr that appears with the first progress report (an error before any work
    is then the only line on stderr); progress(done, total) is the callback the library takes."""

    def __init__(self, desc: str, unit: str, total: int | None = None):
        self.desc, self.unit, self.total, self.bar = desc, unit, total, None

    def __call__(self, done, total=None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total or self.total, unit=self.unit, desc=self.desc)
        if total is not None:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's message may run over several)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_extract(args) -> int:
    from tqdm import tqdm

    from app.data.extract import ExtractSettings, extract_dataset
    from app.data.video import list_videos

    width, height = args.size
    settings = ExtractSettings(width=width, height=height, num_frames=args.frames, stride=args.stride,
                               num_bands=args.K, fps=args.fps, flow_method=args.flow, wrap=args.wrap,
                               loop_stride=args.loop_stride, denoise=not args.no_denoise,
                               min_band_share=args.min_band_share)
    specs = []
    for spec in args.inputs:
        path = spec.split("[")[0] if not os.path.exists(spec) else spec
        if not os.path.exists(path):
            raise UserError(f"Input '{spec}' does not exist.")
        specs.extend([spec] if "[" in spec and not os.path.exists(spec) else list_videos([spec]))
    if not specs:
        raise UserError("No videos found in the given inputs.")
    bar = tqdm(total=len(specs), unit="clip", desc="extract")

    def on_clip(report, done, total):
        bar.n = done
        bar.refresh()
        status = (f"skipped: {report.error}" if report.error else
                  f"{report.windows_kept}/{report.windows_total} windows kept")
        bar.write(f"{report.name}: {status}")

    reports = extract_dataset(specs, args.out, settings, workers=args.workers, on_clip=on_clip)
    bar.close()
    print_extract_report(reports)
    return 0


def print_extract_report(reports) -> None:
    """One line per clip: windows kept, displacement, share of motion energy in the K bands."""
    header = f"{'clip':32s} {'kept':>9s} {'cam':>4s} {'still':>5s} {'med px':>7s} {'p95 px':>7s} {'K-band energy':>13s}"
    print(header)
    for r in reports:
        if r.error:
            print(f"{r.name:32s} skipped: {r.error}")
            continue
        print(f"{r.name:32s} {r.windows_kept:4d}/{r.windows_total:<4d} {r.dropped_camera:4d} {r.dropped_static:5d} "
              f"{r.median_displacement_px:7.2f} {r.p95_displacement_px:7.2f} {100 * r.band_energy_share:12.1f}%")


def run_brush(args) -> int:
    import numpy as np

    from app.core.procedural import BrushSettings, brush_motion
    from app.core.spectral import save_motion
    from app.data.images import ImageLoadError, load_image

    from app.core.spectral import MAX_SPECTRUM_VALUES

    refuse_overwriting_inputs(args.out, args.image, args.mask)
    max_side = int((MAX_SPECTRUM_VALUES // 32) ** 0.5)  # 16 bands on a grid of at most max_side^2
    try:
        image = load_image(args.image, max_side=max_side).pixels
        height, width = image.shape[:2]
        if args.mask:
            mask_image = load_image(args.mask, max_side=max_side).pixels
            import cv2
            mask = cv2.resize(mask_image.mean(axis=2).astype(np.float32) / 255.0, (width, height))
        else:
            mask = np.ones((height, width), np.float32)
    except ImageLoadError as error:
        raise UserError(str(error)) from None
    settings = BrushSettings(amplitude_px=args.amplitude, direction_deg=args.direction,
                             direction_spread_deg=args.spread,
                             dominant_hz=None if args.hz <= 0 else args.hz, falloff_beta=args.beta,
                             coherence_px=args.coherence, seed=args.seed)
    try:
        motion = brush_motion(mask, settings)
    except ValueError as error:
        raise UserError(str(error)) from None
    save_motion(args.out, motion)
    print(f"Wrote {args.out}: {motion.num_bands} bands at {motion.width}x{motion.height}.")
    return 0


def run_info(args) -> int:
    import numpy as np

    from app.core.loop import loop_seam
    from app.core.spectral import MotionFileError, load_motion, mean_amplitude, motion_to_texture

    try:
        motion = load_motion(args.motion)
    except MotionFileError as error:
        raise UserError(str(error)) from None
    texture = motion_to_texture(motion)
    magnitude = np.linalg.norm(texture, axis=1)  # (T, H, W)
    info = {
        "size": f"{motion.width}x{motion.height}", "bands": motion.num_bands, "frames": motion.num_frames,
        "fps": motion.fps, "max_displacement_px": float(magnitude.max()),
        "mean_displacement_px": float(magnitude.mean()), "loop_seam": loop_seam(motion),
        "band_amplitude": [round(float(a), 4) for a in mean_amplitude(motion)],
    }
    print(json.dumps(info) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0


def run_bench(args) -> int:
    from importlib import import_module

    modules = {"flow": "app.eval.flow_accuracy", "render": "app.eval.bench_render",
               "predict": "app.eval.bench_predict", "gl": "app.eval.bench_gl",
               "export": "app.eval.bench_export", "studio": "app.ui.bench_studio",
               "generate": "app.eval.bench_generate"}
    return import_module(modules[args.what]).main(args.rest)


def run_render(args) -> int:
    from app.core.spectral import MotionFileError, load_motion
    from app.data.images import ImageLoadError
    from app.pipeline import load_photo
    from app.render.frames import RenderSettings

    refuse_overwriting_inputs(args.out, args.image, args.motion)
    try:
        image = load_photo(args.image)
        motion = load_motion(args.motion)
    except (ImageLoadError, MotionFileError) as error:
        raise UserError(str(error)) from None
    settings = RenderSettings(renderer=args.renderer, num_loops=args.loops, slowdown=args.slowmo,
                              magnify=args.magnify, size=args.size, device=args.device)
    return render_with_progress("render", image, motion, args.out, settings)


def render_with_progress(desc: str, image, motion, out: str, settings, flow=None) -> int:
    """Check the output's budget, render the loop into out with a progress bar, say where it went."""
    from app.pipeline import render_to_file
    from app.render.export import ExportCancelled
    from app.render.frames import check_output_budget, frame_count

    total = frame_count(motion, settings, flow)
    check_output_budget(total, *(settings.size or (image.shape[1], image.shape[0])))
    bar = Progress(desc, "frame", total)
    try:
        path = render_to_file(image, motion, out, settings, progress=bar, flow=flow)
    except ExportCancelled:
        raise UserError("Export cancelled; nothing was written.") from None
    finally:
        bar.close()
    print(f"Wrote {path}.")
    return 0


def parse_pair(text: str):
    """'120,80' -> (120.0, 80.0)."""
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a pair like 120,80.") from None
    if not (math.isfinite(first) and math.isfinite(second) and max(abs(first), abs(second)) <= 1e6):
        raise argparse.ArgumentTypeError(f"'{text}' is not a pair of finite numbers like 120,80.")
    return first, second


def run_poke(args) -> int:
    from app.core.modal import ModalParameters
    from app.core.spectral import MotionFileError
    from app.data.images import ImageLoadError
    from app.interactive import poke_to_file

    from app.render.frames import check_output_budget

    refuse_overwriting_inputs(args.out, args.image, args.motion)
    check_output_budget(int(round(args.seconds * args.fps)), 1, 1)
    params = ModalParameters(stiffness=args.stiffness, gain=args.gain)
    bar = Progress("poke", "frame")
    try:
        path = poke_to_file(args.image, args.motion, args.out, at=args.at, pull=args.pull, seconds=args.seconds,
                            fps=args.fps, params=params, renderer=args.renderer, progress=bar)
    except (ImageLoadError, MotionFileError) as error:
        raise UserError(str(error)) from None
    finally:
        bar.close()
    print(f"Wrote {path}.")
    return 0


def parse_numbers(count: int, example: str):
    """An argparse type for COUNT comma-separated numbers, e.g. 'X,Y,DX,DY'."""

    def parse(text: str):
        try:
            values = tuple(float(part) for part in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count or not all(math.isfinite(value) and abs(value) <= 1e6 for value in values):
            raise argparse.ArgumentTypeError(f"'{text}' is not {count} numbers like {example}.")
        return values

    return parse


def run_flow(args) -> int:
    """Flowing water, clouds or smoke from arrows, anchors and a mask; optionally over a sway."""
    import numpy as np

    from dataclasses import replace

    from app.core.flow_field import FlowHintError, FlowHints, flow_from_hints, rescale_hints, save_flow
    from app.core.spectral import MotionFileError, load_motion
    from app.data.images import ImageLoadError, load_image
    from app.pipeline import load_flow_hints, load_photo
    from app.render.frames import RenderSettings

    refuse_overwriting_inputs(args.out, args.image, args.mask, args.motion, args.hints)
    if args.save_flow:
        refuse_overwriting_inputs(args.save_flow, args.image, args.mask, args.motion, args.hints, args.out)
    try:
        image = load_photo(args.image)
        mask = None
        if args.mask:
            mask = load_image(args.mask).pixels.mean(axis=2).astype(np.float32) / 255.0  # (h, w)
        motion = load_motion(args.motion) if args.motion else None
    except (ImageLoadError, MotionFileError) as error:
        raise UserError(str(error)) from None
    height, width = image.shape[:2]
    try:
        hints = FlowHints(width, height, arrows=args.arrow or [], anchors=args.anchor or [], mask=mask,
                          speed=args.speed, num_frames=args.frames or 90, fps=args.fps)
        if args.hints:  # the file's hints, plus any given here; --mask replaces the file's mask
            given = rescale_hints(load_flow_hints(args.hints), width, height)
            hints = replace(given, arrows=np.concatenate([given.arrows, hints.arrows]),
                            anchors=np.concatenate([given.anchors, hints.anchors]),
                            mask=given.mask if mask is None else mask, speed=given.speed * args.speed,
                            num_frames=args.frames or given.num_frames)
        flow = flow_from_hints(hints, height, width)
    except FlowHintError as error:
        raise UserError(str(error)) from None
    if args.save_flow:
        save_flow(args.save_flow, flow)
    settings = RenderSettings(renderer="splat", num_loops=args.loops, slowdown=args.slowmo, size=args.size,
                              device=args.device)
    return render_with_progress("flow", image, motion, args.out, settings, flow=flow)


def predict_with_progress(image, args):
    """Sample a Motion for a photo with the shipped (or given) model, with a progress bar."""
    from app.diffusion.predict import predict_motion
    from app.diffusion.weights import load_motion_model
    from app.pipeline import MODELS_DIR
    from app.render.frames import resolve_device

    weights = args.weights or str(MODELS_DIR / "motion_model.safetensors")
    if not os.path.isfile(weights):
        raise UserError(f"No motion model at '{weights}'; use `python -m app brush` for motion without one.")
    try:
        device = resolve_device(args.device)
        model = load_motion_model(weights, device)
    except ValueError as error:
        raise UserError(str(error)) from None
    bar = Progress("predict", "step", args.steps)

    def on_step(step, total, x, x0_pred):
        bar(step, total)

    try:
        return predict_motion(image, model, num_steps=args.steps, guidance=args.guidance, loop=args.loop,
                              seed=args.seed, device=device, callback=on_step)
    finally:
        bar.close()


def input_photo(args):
    """The photo args.image of a verb that writes args.out (refused when it is one of the inputs)."""
    from app.data.images import ImageLoadError
    from app.pipeline import load_photo

    refuse_overwriting_inputs(args.out, args.image, args.weights)
    try:
        return load_photo(args.image)
    except ImageLoadError as error:
        raise UserError(str(error)) from None


def animate_photos(folder: str, out: str, settings) -> int:
    """The batch: every photo in folder into out, a line per photo and a summary; 1 when any failed."""
    from app.batch import animate_folder, summary

    def on_file(index, total, result):
        outcome = result.output if result.ok else "skipped: " + result.error
        print(f"[{index + 1}/{total}] {os.path.basename(result.photo)}: {outcome}")

    results = animate_folder(folder, out, settings, on_file=on_file)
    print(summary(results))
    return 0 if all(result.ok for result in results) else 1


def run_predict(args) -> int:
    from app.core.spectral import save_motion

    image = input_photo(args)
    motion = predict_with_progress(image, args)
    save_motion(args.out, motion)  # a motion with NaN or absurd values is refused here
    print(f"Wrote {args.out}: {motion.num_bands} bands at {motion.width}x{motion.height}.")
    return 0


def run_animate(args) -> int:
    """One photo: predict, then render. A folder: the same for every photo in it (batch)."""
    if os.path.isdir(args.image):
        from app.batch import BatchSettings

        return animate_photos(args.image, args.out, BatchSettings(
            format=args.format, model_path=args.weights, steps=args.steps, guidance=args.guidance, seed=args.seed,
            device=args.device))

    from app.core.spectral import check_motion_values
    from app.pipeline import render_to_file
    from app.render.frames import RenderSettings

    image = input_photo(args)
    motion = predict_with_progress(image, args)
    check_motion_values(motion, "The predicted motion")
    path = render_to_file(image, motion, args.out, RenderSettings(renderer=args.renderer, device=args.device))
    print(f"Wrote {path}.")
    return 0


def run_selftest(args) -> int:
    import tempfile
    import time

    from app.core.spectral import load_motion
    from app.pipeline import DEFAULT_EXAMPLE, example_paths, load_photo
    from app.project import Project, load_project, save_project
    from app.render.frames import RenderSettings, render_loop
    from app.render.gl import SHADER_DIR

    began = time.perf_counter()
    photo_path, motion_path = example_paths(DEFAULT_EXAMPLE)
    image, motion = load_photo(str(photo_path)), load_motion(str(motion_path))
    if not any(SHADER_DIR.glob("*.frag")):
        raise UserError(f"No shaders in {SHADER_DIR}.")
    frames = []
    for frame in render_loop(image, motion, RenderSettings(renderer="splat", device="cpu", size=(256, 144))):
        frames.append(frame)
        if len(frames) == 4:
            break
    with tempfile.TemporaryDirectory() as folder:
        load_project(save_project(os.path.join(folder, "selftest.aeolus"), Project(image=image, motion=motion)))
    print(f"selftest ok: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} "
          f"in {time.perf_counter() - began:.1f} s")
    return 0


def run_batch(args) -> int:
    from app.batch import BatchSettings

    return animate_photos(args.folder, args.out, BatchSettings(
        format=args.format, device=args.device, use_model=not args.brush_only, max_side=args.max_side))


def run_train(args) -> int:
    from importlib import import_module

    modules = {"renderer": "app.train.renderer", "vae": "app.train.vae", "ldm": "app.train.ldm",
               "freq-attn": "app.train.freq_attn", "pixel": "app.train.pixel"}
    return import_module(modules[args.what]).main(args.rest)


def run_eval(args) -> int:
    from importlib import import_module

    modules = {"render": "app.eval.render_eval", "motion": "app.eval.motion_eval"}
    return import_module(modules[args.what]).main(args.rest)


def run_demo(args) -> int:
    from app.pipeline import run_demo as demo

    for line in demo(args.out):
        print(line)
    return 0


def run_gui(args) -> int:
    has_screen = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    if sys.platform.startswith("linux") and not has_screen:
        print("error: the studio needs a screen and none was found (no DISPLAY); `python -m app demo` "
              "animates the example headless.", file=sys.stderr)
        return 2
    from app.ui.studio import run_app

    return run_app(args.image)


# --- parser --------------------------------------------------------------------------------------


def flow_method(name: str) -> str:
    """An argparse type: a known optical flow method."""
    from app.data.flow import FLOW_METHODS

    if name not in FLOW_METHODS:
        raise argparse.ArgumentTypeError(f"unknown flow method '{name}' (choose {', '.join(sorted(FLOW_METHODS))}).")
    return name


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): 'python -m app render: error: ...'."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message.rstrip('.')}; see --help.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m app", description="Aeolus: animate a still photo into a loop.")
    verbs = parser.add_subparsers(dest="verb")

    demo = verbs.add_parser("demo", help="animate the bundled example photo into a loop")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.set_defaults(func=run_demo)

    extract = verbs.add_parser("extract", help="build a training dataset of spectral volumes from videos")
    extract.add_argument("inputs", nargs="+", help="videos, frame folders or folders of videos; "
                                                   "append [START:END] to use a frame range")
    extract.add_argument("-o", "--out", required=True, help="dataset folder")
    extract.add_argument("--size", type=size_between(32, 4096), default=(256, 160), help="WxH (default 256x160)")
    extract.add_argument("--frames", type=whole(4, 3600), default=150, help="frames per window, T (default 150)")
    extract.add_argument("--stride", type=whole(1, 100_000), default=10,
                         help="frames between start frames (default 10)")
    extract.add_argument("--loop-stride", type=whole(1, 100_000), default=None,
                         help="frames between start frames of seamless loops (default: --stride)")
    extract.add_argument("--no-denoise", action="store_true",
                         help="keep the flow-noise floor (default: subtract the power measured above band K)")
    extract.add_argument("--min-band-share", type=number(0, 1), default=0.45,
                         help="drop windows with less of their motion energy in the K bands (flicker, noise)")
    extract.add_argument("--K", type=whole(1, 128), default=16, help="frequency bands kept (default 16)")
    extract.add_argument("--fps", type=number(1, 240), default=30.0, help="resample videos to this rate (default 30)")
    extract.add_argument("--flow", default=None, type=flow_method,
                         help="optical flow method (default: the measured best)")
    extract.add_argument("--wrap", choices=["loops", "always", "never"], default="loops",
                         help="let windows run past the end of seamless loops (default: names with 'loop')")
    extract.add_argument("--workers", type=whole(1, 64), default=max(1, min(2, os.cpu_count() or 1)),
                         help="parallel processes over files")
    extract.set_defaults(func=run_extract)

    brush = verbs.add_parser("brush", help="procedural motion for a photo (no model)")
    brush.add_argument("image")
    brush.add_argument("-o", "--out", required=True, type=motion_path, help="motion .npz to write")
    brush.add_argument("--mask", help="grayscale image: white moves, black stays still")
    brush.add_argument("--amplitude", type=number(0, 1000), default=4.0, help="typical peak displacement in pixels")
    brush.add_argument("--direction", type=number(-3600, 3600), default=0.0,
                       help="main direction in degrees (0 = right)")
    brush.add_argument("--spread", type=number(0, 360), default=30.0, help="direction spread in degrees")
    brush.add_argument("--hz", type=number(0, 120), default=0.8, help="dominant frequency in Hz (0: 1/f falloff)")
    brush.add_argument("--beta", type=number(0, 10), default=1.5, help="spectral falloff exponent")
    brush.add_argument("--coherence", type=number(0.5, 100_000), default=24.0,
                       help="spatial coherence length in pixels")
    brush.add_argument("--seed", type=whole(0, MAX_SEED), default=0)
    brush.set_defaults(func=run_brush)

    info = verbs.add_parser("info", help="describe a motion file")
    info.add_argument("motion")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=run_info)

    render = verbs.add_parser("render", help="render a photo and a motion into a loop video")
    render.add_argument("image")
    render.add_argument("motion", help="motion .npz")
    render.add_argument("-o", "--out", required=True, help="OUT.mp4, OUT.gif, OUT.webm or a folder for PNGs")
    render.add_argument("--renderer", choices=["splat", "net", "warp"], default="splat",
                        help="splat: softmax splatting + fill (default); net: the learned renderer")
    render.add_argument("--loops", type=whole(1, 1000), default=1, help="how many times the loop repeats")
    render.add_argument("--slowmo", type=number(0.1, 100), default=1.0, help="play the motion S times slower")
    render.add_argument("--magnify", type=number(0, 100), default=1.0, help="scale every displacement")
    render.add_argument("--size", type=size_between(16), default=None, help="output WxH (default: the photo's)")
    render.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    render.set_defaults(func=run_render)

    poke = verbs.add_parser("poke", help="render how the scene responds to a drag and release")
    poke.add_argument("image")
    poke.add_argument("motion", help="motion .npz (its bands are the scene's modes)")
    poke.add_argument("--at", type=parse_pair, required=True, help="X,Y pixel of the photo to grab")
    poke.add_argument("--pull", type=parse_pair, required=True, help="DX,DY pull in pixels (write --pull=-5,3)")
    poke.add_argument("--seconds", type=number(0.1, 600), default=4.0, help="length of the clip (default 4)")
    poke.add_argument("--fps", type=number(1, 120), default=30.0)
    poke.add_argument("--stiffness", type=number(0.05, 20), default=1.0, help="scales every mode's frequency")
    poke.add_argument("--gain", type=number(0, 10), default=1.0, help="how far the grabbed point follows the pull")
    poke.add_argument("--renderer", choices=["splat", "gl"], default="splat")
    poke.add_argument("-o", "--out", required=True, help="OUT.mp4, .gif, .webm or a folder for PNGs")
    poke.set_defaults(func=run_poke)

    flow = verbs.add_parser("flow", help="flowing water, clouds or smoke from arrows (a seamless loop)")
    flow.add_argument("image")
    flow.add_argument("--arrow", type=parse_numbers(4, "120,80,40,0"), action="append",
                      metavar="X,Y,DX,DY", help="the fluid at X,Y moves DX,DY pixels per second "
                                                "(repeatable; write --arrow=X,Y,DX,DY when X is negative)")
    flow.add_argument("--anchor", type=parse_numbers(2, "120,80"), action="append", metavar="X,Y",
                      help="a point that stays still (repeatable)")
    flow.add_argument("--mask", help="grayscale image: white where the fluid is (default: everywhere)")
    flow.add_argument("--hints", help="a .flow.json of arrows, anchors, mask and loop (e.g. resources/examples/"
                                      "fountain.flow.json); --arrow and --anchor add to it")
    flow.add_argument("--motion", help="a motion .npz to sway the scene as it flows")
    flow.add_argument("--frames", type=whole(2, 3600), default=None,
                      help="loop length in frames without --motion (default 90, or the --hints file's)")
    flow.add_argument("--fps", type=number(1, 240), default=30.0)
    flow.add_argument("--speed", type=number(0, 100), default=1.0, help="multiplies every arrow")
    flow.add_argument("--loops", type=whole(1, 1000), default=1, help="how many times the loop repeats")
    flow.add_argument("--slowmo", type=number(0.1, 100), default=1.0, help="play the loop S times slower")
    flow.add_argument("--size", type=size_between(16), default=None, help="output WxH (default: the photo's)")
    flow.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    flow.add_argument("--save-flow", help="also write the velocity field to this .npz")
    flow.add_argument("-o", "--out", required=True, help="OUT.mp4, OUT.gif, OUT.webm or a folder for PNGs")
    flow.set_defaults(func=run_flow)

    def add_sampling_options(verb):
        verb.add_argument("--steps", type=whole(1, 1000), default=25, help="DDIM steps (default 25)")
        verb.add_argument("--guidance", type=number(0, 50), default=None,
                          help="classifier-free guidance weight of the slowest band; a pixel model keeps its own "
                               "lower weight for the fast bands in proportion (default: the motion model's own)")
        verb.add_argument("--loop", action="store_true", help="seamless-loop self-guidance")
        verb.add_argument("--seed", type=whole(0, MAX_SEED), default=0)
        verb.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        verb.add_argument("--weights", default=None, help="motion model (default models/motion_model.safetensors)")

    predict = verbs.add_parser("predict", help="sample a motion for a photo with the motion model")
    predict.add_argument("image")
    predict.add_argument("-o", "--out", required=True, type=motion_path, help="MOTION.npz to write")
    add_sampling_options(predict)
    predict.set_defaults(func=run_predict)

    animate = verbs.add_parser("animate", help="predict and render a photo (or every photo in a folder)")
    animate.add_argument("image", help="a photo, or a folder of photos")
    animate.add_argument("-o", "--out", required=True, help="OUT.mp4 (.gif, .webm, folder), or an output folder")
    animate.add_argument("--renderer", choices=["splat", "net"], default="splat")
    animate.add_argument("--format", choices=["mp4", "gif", "webm"], default="mp4", help="for a folder")
    add_sampling_options(animate)
    animate.set_defaults(func=run_animate)

    selftest = verbs.add_parser("selftest", help="check a build: load the example, render a few frames headless")
    selftest.set_defaults(func=run_selftest)

    batch = verbs.add_parser("batch", help="animate every photo in a folder (a failed file is reported and skipped)")
    batch.add_argument("folder")
    batch.add_argument("-o", "--out", required=True, help="output folder")
    batch.add_argument("--format", choices=["mp4", "gif", "webm"], default="mp4")
    batch.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    batch.add_argument("--brush-only", action="store_true", help="never use the motion model")
    batch.add_argument("--max-side", type=whole(16, 8192), default=None, help="shrink outputs to this long side")
    batch.set_defaults(func=run_batch)

    train = verbs.add_parser("train", help="train a model (torchrun-ready)", add_help=False)
    train.add_argument("what", choices=["renderer", "vae", "ldm", "freq-attn", "pixel"])
    train.add_argument("rest", nargs=argparse.REMAINDER)
    train.set_defaults(func=run_train)

    evaluate = verbs.add_parser("eval", help="evaluate renderers or motion predictions", add_help=False)
    evaluate.add_argument("what", choices=["render", "motion"])
    evaluate.add_argument("rest", nargs=argparse.REMAINDER)
    evaluate.set_defaults(func=run_eval)

    bench = verbs.add_parser("bench", help="speed and accuracy benchmarks (--json for JSON lines)",
                             add_help=False)
    bench.add_argument("what", choices=["flow", "render", "predict", "gl", "export", "studio", "generate"])
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(func=run_bench)
    parser.verb_names = set(verbs.choices)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    opens_studio = not argv or (len(argv) == 1 and argv[0] not in parser.verb_names and not argv[0].startswith("-"))
    if opens_studio:
        return run_gui(argparse.Namespace(image=argv[0] if argv else None))
    args = parser.parse_args(argv)
    if args.verb in RENDERING_VERBS:
        leave_one_core_free()
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    return run_verb(args)


def run_verb(args) -> int:
    """Run a parsed verb; every error of a user's making is one line on stderr and an exit status."""
    from app.atomic import WriteError

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return args.func(args)
    except UserError as error:
        return _fail(first_line(error), 2)
    except WriteError as error:
        return _fail(first_line(error), 1)
    except ValueError as error:  # the net: a library's check of something the user gave
        return _fail(first_line(error), 2)
    except MemoryError:
        return _fail("There is not enough memory for this; try a smaller input or output.", 1)
    except KeyboardInterrupt:
        print("Cancelled.", file=sys.stderr)
        return 130
    except Terminated:
        print("Terminated.", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status
