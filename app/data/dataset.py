"""A torch Dataset over extracted shards, with augmentations that keep the motion physically right.

Each item is one window: the start image and its spectral volume, normalized with the dataset's
per-frequency scales. Augmentations: horizontal flip (image mirrored, x displacement negated),
random crop resized back to the training size (displacements scale with the resize), and colour
jitter on the image only.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from app.core.normalize import normalize_spectrum
from app.core.spectral import Motion, crop_motion, flip_horizontal, resize_motion
from app.data.extract import load_index


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """Random brightness, contrast and saturation of a float (H, W, 3) image in [0, 1]."""
    brightness = 1.0 + rng.uniform(-strength, strength)
    contrast = 1.0 + rng.uniform(-strength, strength)
    saturation = 1.0 + rng.uniform(-strength, strength)
    image = image * brightness
    mean = image.mean()
    image = (image - mean) * contrast + mean
    gray = image.mean(axis=2, keepdims=True)
    image = (image - gray) * saturation + gray
    return np.clip(image, 0.0, 1.0)


class SpectralDataset(torch.utils.data.Dataset):
    """Windows of an extracted dataset.

    split: "train", "val" or "all". Items are dicts of
        image       float32 (3, H, W) in [0, 1]
        normalized  float32 (K, 4, H, W): (Re x, Im x, Re y, Im y) per band, normalized
        spectrum    complex64 (K, 2, H, W) in pixels
    """

    def __init__(self, dataset_dir: str, split: str = "train", augment: bool = False,
                 min_crop: float = 0.7, seed: int = 0):
        if split not in ("train", "val", "all"):
            raise ValueError(f"Unknown split '{split}': use train, val or all.")
        self.dataset_dir = dataset_dir
        self.index = load_index(dataset_dir)
        self.scales = np.asarray(self.index["scales"], np.float32)
        self.num_frames = int(self.index["settings"]["num_frames"])
        self.fps = float(self.index["settings"]["fps"])
        self.windows = [w for w in self.index["windows"] if split == "all" or w["split"] == split]
        self.augment = augment
        self.min_crop = min_crop
        self.seed = seed
        self._shards: dict[str, dict] = {}
        self._calls = 0

    def __len__(self) -> int:
        return len(self.windows)

    def _shard(self, relative_path: str) -> dict:
        if relative_path not in self._shards:
            with np.load(os.path.join(self.dataset_dir, relative_path)) as shard:
                self._shards[relative_path] = {"images": shard["images"], "spectra": shard["spectra"]}
        return self._shards[relative_path]

    def raw(self, index: int):
        """(image uint8 (H, W, 3), Motion) of one window, without augmentation."""
        window = self.windows[index]
        shard = self._shard(window["shard"])
        motion = Motion(shard["spectra"][window["row"]], self.num_frames, self.fps)
        return shard["images"][window["row"]], motion

    def __getitem__(self, index: int) -> dict:
        import cv2

        image, motion = self.raw(index)
        image = image.astype(np.float32) / 255.0
        if self.augment:
            self._calls += 1
            rng = np.random.default_rng((self.seed, index, self._calls, os.getpid()))
            height, width = image.shape[:2]
            if rng.random() < 0.5:
                image = image[:, ::-1]
                motion = flip_horizontal(motion)
            crop = rng.uniform(self.min_crop, 1.0)
            crop_height, crop_width = int(round(height * crop)), int(round(width * crop))
            top = int(rng.integers(0, height - crop_height + 1))
            left = int(rng.integers(0, width - crop_width + 1))
            image = image[top:top + crop_height, left:left + crop_width]
            image = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR)
            motion = resize_motion(crop_motion(motion, top, left, crop_height, crop_width), height, width)
            image = color_jitter(image, rng)
        normalized = normalize_spectrum(motion.spectrum, self.scales)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float(),
            "normalized": torch.from_numpy(normalized),
            "spectrum": torch.from_numpy(np.ascontiguousarray(motion.spectrum)),
        }
