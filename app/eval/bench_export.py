"""Export benchmark: frames per second and peak memory of a full streaming export at several sizes.

This module owns the measurement behind the export's memory and speed claims. Each size exports
the bundled example (its photo resized to the size, its motion kept on its own grid, as the studio
does) to an MP4 with softmax splatting on the CPU, 150 frames by default, in a fresh subprocess
so that its peak resident memory is its own:

    fps            frames rendered and encoded per second, end to end
    peak_rss_mb    the exporting process's peak resident memory (VmHWM)
    encoder_mb     ffmpeg's peak resident memory (a child process; its VmHWM, polled)
    time_ratio     (seconds per pixel) / (seconds per pixel at the first size): 1 = linear in pixels
    memory_ratio   (peak RSS per pixel) / (that at the first size)

    python -m app bench export                            # readable table
    python -m app bench export --json --frames 30         # one JSON object per line
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

SIZES = ((512, 288), (1920, 1080), (4000, 3000))  # (width, height)
NUM_FRAMES = 150


def _parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def _peak_mb() -> float:
    """Peak resident memory of this program in MB: VmHWM (ru_maxrss would count the parent's at fork)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class EncoderMemory(threading.Thread):
    """Polls the peak resident memory (VmHWM) of this process's ffmpeg children until stopped.

    ru_maxrss of children is no use here: it counts the moment after fork, before ffmpeg runs,
    when the child still maps all of this process's memory.
    """

    def __init__(self, interval_s: float = 0.2):
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            for pid in _children():
                try:
                    with open(f"/proc/{pid}/comm") as comm:
                        if not comm.read().startswith("ffmpeg"):
                            continue
                    with open(f"/proc/{pid}/status") as status:
                        for line in status:
                            if line.startswith("VmHWM:"):
                                self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024.0)
                except OSError:
                    pass  # the child has just finished

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return self.peak_mb


def _children() -> list[int]:
    """Process ids of this process's children (Linux /proc)."""
    pids = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as children:
                pids += [int(pid) for pid in children.read().split()]
    except OSError:
        pass
    return pids


def export_once(width: int, height: int, num_frames: int, renderer: str = "splat") -> dict:
    """Export num_frames of the bundled example at width x height to a temporary MP4; the figures."""
    import cv2
    import torch  # noqa: F401  (imported before the clock starts)

    from app.core.spectral import load_motion
    from app.pipeline import example_paths, load_photo, render_to_file
    from app.render.frames import RenderSettings

    photo_path, motion_path = example_paths()
    motion = load_motion(str(motion_path))
    image = cv2.resize(load_photo(str(photo_path)), (width, height), interpolation=cv2.INTER_CUBIC)
    slowdown = num_frames / motion.num_frames  # num_frames of one loop
    settings = RenderSettings(renderer=renderer, device="cpu", slowdown=slowdown)
    before_mb = _peak_mb()
    with tempfile.TemporaryDirectory(prefix="aeolus-bench-export-") as folder:
        encoder = EncoderMemory()
        encoder.start()
        began = time.perf_counter()
        path = render_to_file(image, motion, os.path.join(folder, "loop.mp4"), settings)
        seconds = time.perf_counter() - began
        encoder_mb = encoder.stop()
        size_mb = os.path.getsize(path) / 1e6
    return {"name": f"export-{renderer}-mp4", "size": f"{width}x{height}", "device": "cpu",
            "frames": num_frames, "seconds": round(seconds, 2), "fps": round(num_frames / seconds, 3),
            "peak_rss_mb": round(_peak_mb(), 1), "setup_rss_mb": round(before_mb, 1),
            "encoder_mb": round(encoder_mb, 1), "file_mb": round(size_mb, 2)}


def run_export_benchmark(sizes=SIZES, num_frames: int = NUM_FRAMES, renderer: str = "splat") -> list[dict]:
    """One subprocess per size; rows with time and memory ratios per pixel against the first size."""
    rows = []
    for width, height in sizes:
        command = [sys.executable, "-m", "app.eval.bench_export", "--one", f"{width}x{height}",
                   "--frames", str(num_frames), "--renderer", renderer]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"The {width}x{height} export failed: {result.stderr.strip()[-500:]}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    base = rows[0]
    base_pixels = _pixels(base)
    for row in rows:
        pixel_ratio = _pixels(row) / base_pixels
        row["pixels_ratio"] = round(pixel_ratio, 2)
        row["time_ratio"] = round(row["seconds"] / base["seconds"] / pixel_ratio, 3)
        row["memory_ratio"] = round(row["peak_rss_mb"] / base["peak_rss_mb"] / pixel_ratio, 4)
    return rows


def _pixels(row: dict) -> int:
    width, height = _parse_size(row["size"])
    return width * height


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench export", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help="frames per export, 15 to 15000 (default 150)")
    parser.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES),
                        help="comma-separated WxH list; ratios are against the first")
    parser.add_argument("--renderer", default="splat", choices=["splat", "warp"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one size, one JSON line
    args = parser.parse_args(argv)
    if not 15 <= args.frames <= 15000:  # one loop of the 150-frame example, 0.1x to 100x slow motion
        parser.error("--frames must be from 15 to 15000.")
    if args.one:
        print(json.dumps(export_once(*_parse_size(args.one), args.frames, args.renderer)))
        return 0
    sizes = [_parse_size(text) for text in args.sizes.split(",") if text]
    rows = run_export_benchmark(sizes, args.frames, args.renderer)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'size':>10} {'frames':>6} {'s':>8} {'fps':>7} {'peak MB':>8} {'ffmpeg MB':>9} "
          f"{'time/px':>8} {'mem/px':>7}")
    for row in rows:
        print(f"{row['size']:>10} {row['frames']:>6} {row['seconds']:>8.1f} {row['fps']:>7.2f} "
              f"{row['peak_rss_mb']:>8.0f} {row['encoder_mb']:>9.0f} {row['time_ratio']:>8.2f} "
              f"{row['memory_ratio']:>7.3f}")
    print("time/px and mem/px: per pixel, as a ratio to the first size (1 = linear in pixels).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
