"""A corpus of bad inputs, made at test time (nothing is stored): images, motion files, projects and
model files that lie, plus the argument lists and write faults each command-line verb must survive.

make_corpus(root) writes the files under root and returns a Corpus of their paths; CASES maps each
verb to (case name, argv builder) pairs, where the builder gets the Corpus and the case's output
folder and returns the argument list for `python -m app`.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 48, 64


@dataclass
class Corpus:
    root: Path
    photo: Path            # a good 64 x 48 photo
    motion: Path           # a good motion for it (4 bands, 16 frames)
    images: dict           # name -> bad image path
    motions: dict          # name -> bad motion path
    projects: dict         # name -> bad project path
    weights: dict          # name -> bad model file path
    photo_folder: Path     # a folder with two photos that share a stem, and a bad one


# --- images ----------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def lying_png(width: int, height: int, bit_depth: int = 16, colour_type: int = 6) -> bytes:
    """A small PNG whose header claims width x height pixels (16-bit RGBA by default)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _good_photo() -> np.ndarray:
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    channels = [128 + 100 * np.sin(columns / 5 + rows / 9), 128 + 100 * np.cos(rows / 4 - columns / 11),
                128 + 100 * np.sin((columns - rows) / 7)]
    return np.stack(channels, -1).round().clip(0, 255).astype(np.uint8)


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _images(root: Path) -> dict:
    good = _png_bytes(_good_photo())
    folder = root / "images"
    folder.mkdir()
    files = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "text": b"this is not a picture\n",
        "huge 16-bit RGBA header": lying_png(17000, 17000),
        "huge 8-bit header": lying_png(30000, 30000, 8, 2),
        "zero-size header": lying_png(0, 0),
    }
    paths = {}
    for index, (name, data) in enumerate(files.items()):
        path = folder / f"bad{index}.png"
        path.write_bytes(data)
        paths[name] = path
    (folder / "folder.png").mkdir()
    paths["a folder"] = folder / "folder.png"
    paths["missing"] = folder / "missing.png"
    return paths


# --- motions ---------------------------------------------------------------------------------------


def _npy_header_only(shape, dtype="<c8") -> bytes:
    """An .npy that claims `shape` but holds no data."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npz(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name + ".npy", data)
    return path


def _good_spectrum(num_bands=4, height=HEIGHT, width=WIDTH) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(num_bands, 2, height, width)) + 1j * rng.normal(size=(num_bands, 2, height, width))
            ).astype(np.complex64) * 4


def _motion_members(spectrum=None, num_frames=16, fps=30.0) -> dict:
    spectrum = _good_spectrum() if spectrum is None else spectrum
    return {"spectrum": _npy(spectrum), "num_frames": _npy(np.int64(num_frames)), "fps": _npy(np.float64(fps))}


def _motions(root: Path) -> dict:
    folder = root / "motions"
    folder.mkdir()
    scalars = {"num_frames": _npy(np.int64(150)), "fps": _npy(np.float64(30.0))}
    spectrum_nan = _good_spectrum()
    spectrum_nan[1, 0, 3, 3] = np.nan
    members = {
        "header claims 320e9 elements": {"spectrum": _npy_header_only((16, 2, 100_000, 100_000)), **scalars},
        "16x2x4000x4000 header": {"spectrum": _npy_header_only((16, 2, 4000, 4000)), **scalars},
        "K=100000": {"spectrum": _npy_header_only((100_000, 2, 8, 8)), **scalars},
        "T=200000": _motion_members(num_frames=200_000),
        "zero-size": {"spectrum": _npy(np.zeros((0, 2, 8, 8), np.complex64)), **scalars},
        "fps 1e300": _motion_members(fps=1e300),
        "fps 1e-300": _motion_members(fps=1e-300),
        "fps inf": _motion_members(fps=float("inf")),
        "NaN values": _motion_members(spectrum_nan),
        "huge values": _motion_members(_good_spectrum() * np.float32(1e30)),
        "real spectrum": {"spectrum": _npy(np.zeros((4, 2, 8, 8), np.float32)), **scalars},
        "object array": {"spectrum": _npy(np.array([{"a": 1}], dtype=object)), **scalars},
        "missing fps": {"spectrum": _npy(_good_spectrum()), "num_frames": _npy(np.int64(16))},
        "num_frames array": {"spectrum": _npy(_good_spectrum()), "num_frames": _npy(np.arange(10**6)),
                             "fps": _npy(np.float64(30))},
    }
    paths = {}
    for index, (name, content) in enumerate(members.items()):
        paths[name] = _npz(folder / f"bad{index}.npz", content)
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        for name, data in _motion_members().items():
            archive.writestr(name + ".npy", data)
    paths["truncated"] = folder / "truncated.npz"
    paths["truncated"].write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    paths["not a zip"] = folder / "text.npz"
    paths["not a zip"].write_text("hello")
    paths["missing"] = folder / "missing.npz"
    return paths


# --- projects --------------------------------------------------------------------------------------


def _project(path: Path, manifest: dict | None = None, photo: bytes | None = None, extra: dict | None = None,
             motion: dict | None = None) -> Path:
    manifest = {"format": 1, "name": "p", "gains": None, "magnitude": 1.0, "slowdown": 1.0, "brush": {},
                "settings": {}, "has_motion": motion is not None, "has_brush_mask": False,
                "has_freeze_mask": False, **(manifest or {})}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json.dumps(manifest))
        archive.writestr("photo.png", _png_bytes(_good_photo()) if photo is None else photo)
        if motion is not None:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as inner:
                for name, data in motion.items():
                    inner.writestr(name + ".npy", data)
            archive.writestr("motion.npz", buffer.getvalue())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def project_cases() -> dict:
    """name -> what _project gets, for every crafted project."""
    return {
        "30000x30000 photo header": dict(photo=lying_png(30000, 30000, 8, 2)),
        "motion with fps inf": dict(motion=_motion_members(fps=float("inf"))),
        "motion with NaN": dict(motion=_motion_members(_good_spectrum() * np.float32(np.nan))),
        "motion header 16x2x4000x4000": dict(motion={"spectrum": _npy_header_only((16, 2, 4000, 4000)),
                                                     "num_frames": _npy(np.int64(150)),
                                                     "fps": _npy(np.float64(30))}),
        "gains that are text": dict(manifest={"gains": ["a", "b"]}),
        "slowdown 0": dict(manifest={"slowdown": 0}),
        "magnitude nan": dict(manifest={"magnitude": float("nan")}),
        "brush seed text": dict(manifest={"brush": {"seed": "x"}}),
        "brush coherence -1": dict(manifest={"brush": {"coherence_px": -1}}),
        "settings a list": dict(manifest={"settings": [1, 2]}),
        "mask claimed, missing": dict(manifest={"has_brush_mask": True}),
        "mask of text": dict(manifest={"has_freeze_mask": True}, extra={"freeze_mask.npy": b"nonsense"}),
        "format from the future": dict(manifest={"format": 99}),
        "format missing": dict(manifest={"format": None}),
    }


PROJECT_NAMES = sorted(project_cases()) + ["not a zip"]


def _projects(root: Path) -> dict:
    folder = root / "projects"
    folder.mkdir()
    paths = {name: _project(folder / f"bad{index}.aeolus", **case)
             for index, (name, case) in enumerate(project_cases().items())}
    paths["not a zip"] = folder / "text.aeolus"
    paths["not a zip"].write_text("hello")
    # loads, but its member name must never become a path: nothing may appear outside
    paths["member path traversal"] = _project(folder / "traversal.aeolus", extra={"../../evil.txt": b"x"})
    return paths


# --- model files -----------------------------------------------------------------------------------


def _weights(root: Path) -> dict:
    import torch
    from safetensors.torch import save_file

    from app.diffusion.weights import save_motion_model, tiny_motion_model

    folder = root / "weights"
    folder.mkdir()
    good = folder / "good.safetensors"
    save_motion_model(str(good), tiny_motion_model(num_bands=4))
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as file:
        metadata = dict(file.metadata())
        state = {name: file.get_tensor(name) for name in file.keys()}

    def variant(name, section=None, changes=None, nan=False):
        data = dict(metadata)
        if section:
            values = json.loads(data[section])
            values.update(changes)
            data[section] = json.dumps(values)
        tensors = dict(state)
        if nan:
            first = sorted(k for k in tensors if tensors[k].is_floating_point())[0]
            tensors[first] = torch.full_like(tensors[first], float("nan"))
        path = folder / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=data)
        return path

    paths = {
        "num_frames 1": variant("frames1", "model", {"num_frames": 1}),
        "zero size": variant("size0", "model", {"width": 0}),
        "0 schedule steps": variant("steps0", "schedule", {"num_train_steps": 0}),
        "unknown schedule": variant("bogus", "schedule", {"kind": "bogus"}),
        "head_channels 0": variant("heads0", "unet", {"head_channels": 0}),
        "huge channels": variant("huge", "unet", {"channels": [100_000, 200_000]}),
        "negative channels": variant("negative", "vae", {"channels": [-8, 16]}),
        "NaN weights": variant("nan", nan=True),
    }
    paths["truncated"] = folder / "cut.safetensors"
    paths["truncated"].write_bytes(good.read_bytes()[:2000])
    paths["not safetensors"] = folder / "text.safetensors"
    paths["not safetensors"].write_text("hello")
    return paths


def make_corpus(root: Path) -> Corpus:
    """Write every bad input under root."""
    root.mkdir(parents=True, exist_ok=True)
    photo = root / "photo.png"
    photo.write_bytes(_png_bytes(_good_photo()))
    motion = _npz(root / "motion.npz", _motion_members())
    photo_folder = root / "photos"
    photo_folder.mkdir()
    for name in ("good.png", "good.bmp"):
        Image.fromarray(_good_photo()).save(photo_folder / name)
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    return Corpus(root=root, photo=photo, motion=motion, images=_images(root), motions=_motions(root),
                  projects=_projects(root), weights=_weights(root), photo_folder=photo_folder)


# --- the cases: (name, argv builder) per verb --------------------------------------------------------
# A builder gets the corpus `c` and the case's output folder `out` (which may hold existing.mp4 and
# existing.npz, whose bytes must survive) and returns the argv.


def _image_cases(verb_argv):
    return [(f"image: {name}", (lambda name: lambda c, out: verb_argv(c, out, c.images[name]))(name))
            for name in ("empty", "truncated", "text", "huge 16-bit RGBA header", "huge 8-bit header",
                         "zero-size header", "a folder", "missing")]


def _motion_cases(verb_argv):
    names = ("header claims 320e9 elements", "16x2x4000x4000 header", "K=100000", "T=200000", "zero-size",
             "fps 1e300", "fps 1e-300", "fps inf", "NaN values", "huge values", "real spectrum", "object array",
             "missing fps", "num_frames array", "truncated", "not a zip", "missing")
    return [(f"motion: {name}", (lambda name: lambda c, out: verb_argv(c, out, c.motions[name]))(name))
            for name in names]


def _render(*extra, target="existing.mp4"):
    return lambda c, out: ["render", str(c.photo), str(c.motion), "-o", str(out / target), *extra]


RENDER = [
    *_image_cases(lambda c, out, image: ["render", str(image), str(c.motion), "-o", str(out / "existing.mp4")]),
    *_motion_cases(lambda c, out, motion: ["render", str(c.photo), str(motion), "-o", str(out / "existing.mp4")]),
    ("--loops 0", _render("--loops", "0")),
    ("--loops 1000000", _render("--loops", "1000000")),
    ("--loops 1000 (frame budget)", _render("--loops", "1000", "--slowmo", "100")),
    ("--slowmo 0", _render("--slowmo", "0")),
    ("--slowmo nan", _render("--slowmo", "nan")),
    ("--slowmo inf", _render("--slowmo", "inf")),
    ("--slowmo 0.001", _render("--slowmo", "0.001")),
    ("--slowmo 1e6", _render("--slowmo", "1e6")),
    ("--magnify nan", _render("--magnify", "nan")),
    ("--magnify 1e9", _render("--magnify", "1e9")),
    ("--renderer warp --magnify 1e9", _render("--renderer", "warp", "--magnify", "1e9")),
    ("--size 20000x20000", _render("--size", "20000x20000")),
    ("--size 0x0", _render("--size", "0x0")),
    ("--size banana", _render("--size", "banana")),
    ("--device tpu", _render("--device", "tpu")),
    ("unknown extension", _render(target="loop.avi")),
    ("output is the photo", lambda c, out: ["render", str(c.photo), str(c.motion), "-o", str(c.photo)]),
    ("output is the motion", lambda c, out: ["render", str(c.photo), str(c.motion), "-o", str(c.motion)]),
    ("missing folder", _render(target="missing/loop.mp4")),
    ("parent is a file", _render(target="afile/loop.mp4")),
    ("disk full", _render(target="existing.mp4")),  # with the writer failing (see the test)
]

POKE = [
    *_image_cases(lambda c, out, image: ["poke", str(image), str(c.motion), "--at", "10,10", "--pull", "3,0",
                                         "-o", str(out / "existing.mp4")]),
    *[(name, (lambda extra: lambda c, out: ["poke", str(c.photo), str(c.motion), "--at", "10,10", "--pull=3,0",
                                             "-o", str(out / "existing.mp4"), *extra])(extra))
      for name, extra in [("--seconds 1e9", ["--seconds", "1e9"]), ("--seconds 0", ["--seconds", "0"]),
                          ("--fps 1e-9", ["--fps", "1e-9"]), ("--fps 1e9", ["--fps", "1e9"]),
                          ("--stiffness 1e9", ["--stiffness", "1e9"]), ("--gain nan", ["--gain", "nan"]),
                          ("--at 1e12,5", ["--at", "1e12,5"]), ("--at x", ["--at", "x"])]],
    ("motion: fps 1e300", lambda c, out: ["poke", str(c.photo), str(c.motions["fps 1e300"]), "--at", "5,5",
                                          "--pull", "2,0", "-o", str(out / "existing.mp4")]),
    ("output is the photo", lambda c, out: ["poke", str(c.photo), str(c.motion), "--at", "5,5", "--pull", "2,0",
                                            "-o", str(c.photo)]),
]


def _brush(*extra, target="existing.npz"):
    return lambda c, out: ["brush", str(c.photo), "-o", str(out / target), *extra]


BRUSH = [
    *_image_cases(lambda c, out, image: ["brush", str(image), "-o", str(out / "existing.npz")]),
    ("mask: huge header", lambda c, out: ["brush", str(c.photo), "--mask", str(c.images["huge 16-bit RGBA header"]),
                                          "-o", str(out / "existing.npz")]),
    ("--coherence 1e9", _brush("--coherence", "1e9")),
    ("--amplitude nan", _brush("--amplitude", "nan")),
    ("--amplitude -1", _brush("--amplitude", "-1")),
    ("--hz 1e9", _brush("--hz", "1e9")),
    ("--hz 14 (above the highest band)", _brush("--hz", "14")),
    ("--seed -1", _brush("--seed", "-1")),
    ("--seed 2**70", _brush("--seed", str(2**70))),
    ("output is the photo", lambda c, out: ["brush", str(c.photo), "-o", str(c.photo)]),
    ("output photo.png", _brush(target="photo.png")),
    ("missing folder", _brush(target="missing/m.npz")),
    ("parent is a file", _brush(target="afile/m.npz")),
    ("disk full", _brush()),
]

INFO = [*_motion_cases(lambda c, out, motion: ["info", str(motion)])]


def _predict(*extra, target="existing.npz", weights="good"):
    def argv(c, out):
        path = c.weights[weights] if weights in c.weights else c.root / "weights" / "good.safetensors"
        return ["predict", str(c.photo), "-o", str(out / target), "--weights", str(path), "--device", "cpu", *extra]
    return argv


PREDICT = [
    *_image_cases(lambda c, out, image: ["predict", str(image), "-o", str(out / "existing.npz"), "--weights",
                                         str(c.root / "weights" / "good.safetensors")]),
    *[(f"weights: {name}", _predict(weights=name)) for name in
      ("num_frames 1", "zero size", "0 schedule steps", "unknown schedule", "head_channels 0", "huge channels",
       "negative channels", "NaN weights", "truncated", "not safetensors")],
    ("weights: missing", lambda c, out: ["predict", str(c.photo), "-o", str(out / "existing.npz"), "--weights",
                                         str(c.root / "none.safetensors")]),
    ("--steps 0", _predict("--steps", "0")),
    ("--steps -1", _predict("--steps", "-1")),
    ("--steps 100000", _predict("--steps", "100000")),
    ("--seed overflow", _predict("--seed", "1180591620717411303424")),
    ("--guidance nan", _predict("--guidance", "nan")),
    ("--guidance inf", _predict("--guidance", "inf")),
    ("output is the photo", lambda c, out: ["predict", str(c.photo), "-o", str(c.photo)]),
    ("output photo.jpg", _predict(target="photo.jpg")),
]

ANIMATE = [
    ("--steps 0", lambda c, out: ["animate", str(c.photo), "-o", str(out / "existing.mp4"), "--steps", "0"]),
    ("output is the photo", lambda c, out: ["animate", str(c.photo), "-o", str(c.photo), "--weights",
                                            str(c.root / "weights" / "good.safetensors")]),
    ("weights: NaN", lambda c, out: ["animate", str(c.photo), "-o", str(out / "existing.mp4"), "--weights",
                                     str(c.weights["NaN weights"])]),
    *_image_cases(lambda c, out, image: ["animate", str(image), "-o", str(out / "existing.mp4")]),
]

BATCH = [
    ("--max-side 0", lambda c, out: ["batch", str(c.photo_folder), "-o", str(out / "loops"), "--max-side", "0"]),
    ("--max-side -1", lambda c, out: ["batch", str(c.photo_folder), "-o", str(out / "loops"), "--max-side", "-1"]),
    ("--max-side 1", lambda c, out: ["batch", str(c.photo_folder), "-o", str(out / "loops"), "--max-side", "1"]),
    ("missing folder", lambda c, out: ["batch", str(c.root / "nope"), "-o", str(out / "loops")]),
    ("input is a file", lambda c, out: ["batch", str(c.photo), "-o", str(out / "loops")]),
    ("output is a file", lambda c, out: ["batch", str(c.photo_folder), "-o", str(out / "afile"), "--brush-only"]),
    ("--format avi", lambda c, out: ["batch", str(c.photo_folder), "-o", str(out / "loops"), "--format", "avi"]),
]


def _extract(*extra):
    return lambda c, out: ["extract", str(c.photo_folder), "-o", str(out / "dataset"), *extra]


EXTRACT = [
    ("--frames 0", _extract("--frames", "0")),
    ("--frames 1", _extract("--frames", "1")),
    ("--stride 0", _extract("--stride", "0")),
    ("--K 0", _extract("--K", "0")),
    ("--size 8x8", _extract("--size", "8x8")),
    ("--size 100000x100000", _extract("--size", "100000x100000")),
    ("--flow bogus", _extract("--flow", "bogus")),
    ("--fps 0", _extract("--fps", "0")),
    ("missing input", lambda c, out: ["extract", str(c.root / "nope.mp4"), "-o", str(out / "dataset")]),
]

def _flow(*extra, target="existing.mp4"):
    return lambda c, out: ["flow", str(c.photo), "--arrow", "30,20,10,0", "-o", str(out / target), *extra]


FLOW = [
    *_image_cases(lambda c, out, image: ["flow", str(image), "--arrow", "30,20,10,0",
                                         "-o", str(out / "existing.mp4")]),
    *_motion_cases(lambda c, out, motion: ["flow", str(c.photo), "--arrow", "30,20,10,0", "--motion", str(motion),
                                           "-o", str(out / "existing.mp4")])[:6],
    ("--frames 0", _flow("--frames", "0")),
    ("--frames 1000000", _flow("--frames", "1000000")),
    ("--fps 0", _flow("--fps", "0")),
    ("--speed nan", _flow("--speed", "nan")),
    ("--loops 0", _flow("--loops", "0")),
    ("--slowmo inf", _flow("--slowmo", "inf")),
    ("--size 20000x20000", _flow("--size", "20000x20000")),
    ("--arrow nan", lambda c, out: ["flow", str(c.photo), "--arrow", "nan,1,2,3", "-o", str(out / "existing.mp4")]),
    ("--arrow 1e300", lambda c, out: ["flow", str(c.photo), "--arrow", "1,1,1e300,0", "-o",
                                      str(out / "existing.mp4")]),
    ("output is the photo", lambda c, out: ["flow", str(c.photo), "--arrow", "30,20,10,0", "-o", str(c.photo)]),
    ("missing folder", _flow(target="missing/loop.mp4")),
    ("disk full", _flow()),
]

CASES = {"render": RENDER, "flow": FLOW, "poke": POKE, "brush": BRUSH, "info": INFO, "predict": PREDICT, "animate": ANIMATE,
         "batch": BATCH, "extract": EXTRACT}
