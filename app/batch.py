"""Batch animation: every photo in a folder becomes a looping video, one after another.

    animate_folder(folder, out_dir, settings, on_file) -> list[BatchResult]

For each photo (sorted by name): a motion from the shipped motion model when its weights exist,
else the motion brush over the whole photo; the loop rendered with softmax splatting; exported as
settings.format (mp4 by default) to out_dir/<stem>-loop.<format> (<stem>-<ext>-loop.<format> when
photos share a stem). A photo that fails (unreadable,
render or export error) is reported with one sentence and skipped; the rest carry on. No Qt here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.procedural import BrushSettings, brush_motion
from app.atomic import write_error
from app.core.spectral import Motion
from app.device import resolve_device

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MOTION_GRID_MAX_SIDE = 640  # motions are made on a grid this size at most; rendering resizes them
MOTION_MODEL_NAME = "motion_model.safetensors"


@dataclass
class BatchSettings:
    """How every photo in the folder is animated."""

    format: str = "mp4"                    # mp4 | gif | webm
    model_path: str | None = None          # motion model weights; None: models/motion_model.safetensors
    use_model: bool = True                 # False: always the brush
    steps: int = 25                        # sampler steps (model only)
    guidance: float | None = None          # None: the motion model's own
    seed: int = 0
    device: str = "auto"                   # auto | cpu | cuda
    brush: BrushSettings = field(default_factory=BrushSettings)
    num_loops: int = 1
    magnify: float = 1.0
    max_side: int | None = None            # shrink outputs so the long side is at most this


@dataclass
class BatchResult:
    """What happened to one photo: output path when it worked, else the error sentence."""

    photo: str
    output: str | None = None
    error: str | None = None
    motion_source: str = ""                # "model" or "brush"

    @property
    def ok(self) -> bool:
        return self.error is None


def photos_in(folder: str) -> list[str]:
    """Photo files directly in folder, sorted by name."""
    if not os.path.isdir(folder):
        raise ValueError(f"'{folder}' is not a folder.")
    return sorted(str(path) for path in Path(folder).iterdir()
                  if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES)


def _grid_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def _output_size(image: np.ndarray, max_side: int | None):
    """(width, height) for RenderSettings.size, or None for the photo's own size."""
    if max_side is None:
        return None
    height, width = _grid_size(*image.shape[:2], max_side)
    return (width, height) if (height, width) != image.shape[:2] else None


class _MotionSource:
    """Makes a motion for a photo: the model (loaded once, on first use) or the brush."""

    def __init__(self, settings: BatchSettings):
        from app.pipeline import MODELS_DIR

        self.settings = settings
        path = Path(settings.model_path) if settings.model_path else MODELS_DIR / MOTION_MODEL_NAME
        self.model_path = path if settings.use_model and path.is_file() else None
        self.model = None

    @property
    def name(self) -> str:
        return "model" if self.model_path is not None else "brush"

    def motion_for(self, image: np.ndarray) -> Motion:
        if self.model_path is None:
            height, width = _grid_size(*image.shape[:2], MOTION_GRID_MAX_SIDE)
            return brush_motion(np.ones((height, width), np.float32), self.settings.brush)
        from app.diffusion.predict import predict_motion
        from app.diffusion.weights import load_motion_model

        device = resolve_device(self.settings.device)
        if self.model is None:
            self.model = load_motion_model(self.model_path, device)
        return predict_motion(image, self.model, num_steps=self.settings.steps, guidance=self.settings.guidance,
                              loop=True, seed=self.settings.seed, device=device)


def animate_folder(folder: str, out_dir: str, settings: BatchSettings | None = None, on_file=None) -> list[BatchResult]:
    """Animate every photo in folder into out_dir; on_file(index, total, result) after each one.
    Returns one BatchResult per photo, failures included (they never stop the batch)."""
    from app.pipeline import load_photo, render_to_file
    from app.render.frames import RenderSettings

    settings = settings or BatchSettings()
    if settings.format not in ("mp4", "gif", "webm"):
        raise ValueError(f"Unknown batch format '{settings.format}'; choose mp4, gif or webm.")
    if settings.max_side is not None and not 16 <= int(settings.max_side) <= 8192:
        raise ValueError(f"max_side must be from 16 to 8192 pixels; got {settings.max_side}.")
    photos = photos_in(folder)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise write_error(out_dir, error) from None
    outputs = output_names(photos, settings.format)
    source = _MotionSource(settings)
    results = []
    for index, photo in enumerate(photos):
        result = BatchResult(photo=photo, motion_source=source.name)
        try:
            image = load_photo(photo)
            motion = source.motion_for(image)
            render = RenderSettings(renderer="splat", num_loops=settings.num_loops, magnify=settings.magnify,
                                    size=_output_size(image, settings.max_side), device=settings.device)
            out_path = os.path.join(out_dir, outputs[photo])
            result.output = render_to_file(image, motion, out_path, render)
        except Exception as error:  # noqa: BLE001 - one bad photo must never stop the batch
            result.error = _sentence(error)
        results.append(result)
        if on_file is not None:
            on_file(index, len(photos), result)
    return results


def output_names(photos: list[str], format: str) -> dict[str, str]:
    """photo -> output file name: <stem>-loop.<format>, or <stem>-<ext>-loop.<format> for photos
    that share a stem (good.jpg and good.png must not overwrite each other)."""
    stems = [Path(photo).stem for photo in photos]
    names = {}
    for photo, stem in zip(photos, stems):
        shared = stems.count(stem) > 1
        tag = f"{stem}-{Path(photo).suffix.lstrip('.').lower()}" if shared else stem
        names[photo] = f"{tag}-loop.{format}"
    return names


def _sentence(error: BaseException) -> str:
    """One line for a failed photo."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text


def summary(results: list[BatchResult]) -> str:
    """'N of M photos animated' plus one line per failure."""
    done = sum(result.ok for result in results)
    lines = [f"{done} of {len(results)} photos animated."]
    lines += [f"  {Path(result.photo).name}: {result.error}" for result in results if not result.ok]
    return "\n".join(lines)
