"""Backward warping: the cheapest way to move pixels, and the baseline the splatting renderer beats.

frame(p) = image(p - F(p)): correct where the motion is smooth, smeared where it is not.
"""

from __future__ import annotations

import numpy as np


def backward_warp(image: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Warp an (H, W, C) image by a displacement field (2, H, W) in pixels (x then y)."""
    import cv2

    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x - displacement[0].astype(np.float32)
    map_y = grid_y - displacement[1].astype(np.float32)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
