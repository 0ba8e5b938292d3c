"""resize_motion speed: contiguous planes (now) against planes sliced from an (H, W, 4K) stack (before).

    python -m app.eval.bench_resize [--json]

Rows: a 16-band motion resized between photo and preview grids (shrinking: INTER_AREA; enlarging:
INTER_LINEAR). ratio = before / now, both measured in this run (best of --repeats), with the largest
difference between the two results (they agree within 1e-5).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from app.core.spectral import Motion, resize_motion

CASES = ((640, 360, 1280, 720), (1280, 720, 640, 360), (512, 288, 640, 360), (1920, 1080, 640, 360))


def resize_before(motion: Motion, height: int, width: int) -> Motion:
    """The reference: resize_motion as it was, one cv2.resize per plane sliced from an (H, W, 4K) stack."""
    import cv2

    shrinking = height * width < motion.height * motion.width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    planes = motion.spectrum.reshape(-1, motion.height, motion.width)  # (2K, H, W)
    stacked = np.concatenate([planes.real, planes.imag], axis=0).transpose(1, 2, 0)  # (H, W, 4K)
    resized = np.stack([cv2.resize(np.ascontiguousarray(stacked[:, :, i]), (width, height), interpolation=interpolation)
                        for i in range(stacked.shape[2])], axis=0)  # (4K, h, w)
    half = planes.shape[0]
    spectrum = (resized[:half] + 1j * resized[half:]).reshape(motion.num_bands, 2, height, width)
    scale = np.array([width / motion.width, height / motion.height], np.float32)[None, :, None, None]
    return replace(motion, spectrum=(spectrum * scale).astype(np.complex64))


def best_seconds(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - began)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval.bench_resize", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    for width, height, to_width, to_height in CASES:
        spectrum = (rng.normal(size=(16, 2, height, width)) + 1j * rng.normal(size=(16, 2, height, width)))
        motion = Motion(spectrum.astype(np.complex64), 150, 30.0)
        before, reference = best_seconds(lambda: resize_before(motion, to_height, to_width), args.repeats)
        now, result = best_seconds(lambda: resize_motion(motion, to_height, to_width), args.repeats)
        row = {"name": "resize_motion", "from": f"{width}x{height}", "to": f"{to_width}x{to_height}",
               "before_ms": round(1000 * before, 1), "now_ms": round(1000 * now, 1),
               "ratio": round(before / now, 2),
               "max_difference": float(np.abs(result.spectrum - reference.spectrum).max())}
        print(json.dumps(row) if args.json else
              f"{row['from']:>9s} -> {row['to']:9s} before {row['before_ms']:7.1f} ms  now "
              f"{row['now_ms']:7.1f} ms  ratio {row['ratio']:.2f}  max difference {row['max_difference']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
