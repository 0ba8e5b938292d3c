"""Generation in the studio against the command line, with one core kept busy by another program.

This module owns the measurement behind the studio's threading choice. In one run it starts a
busy loop (`python -c "while True: pass"`, one core) and then, each in a fresh subprocess, times:

    cli      predict_motion on the bundled example as `python -m app predict` runs it (its thread
             choice), the model loaded before the clock starts
    studio   the studio (offscreen, CPU viewport playing, as run_app sets it up) from Generate to
             the motion landing in the document, the model loaded before the clock starts

Same photo, steps, guidance and seed (loop guidance off, as the command line's default). ratio =
studio seconds / cli seconds, measured in the same run; the busy loop runs through both. --idle
leaves it out.

    python -m app bench generate [--json] [--steps 25] [--idle] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from app.eval.rows import print_rows

STEPS = 25
BUSY_LOOP = "while True: pass"

CLI_CHILD = r"""
import json, sys, time
from app.cli import leave_one_core_free
leave_one_core_free()  # what the predict verb does
import torch
from app.diffusion.predict import predict_motion
from app.diffusion.weights import load_motion_model
from app.pipeline import MOTION_MODEL_WEIGHTS, example_paths, load_photo
steps = int(sys.argv[1])
image = load_photo(str(example_paths()[0]))
model = load_motion_model(MOTION_MODEL_WEIGHTS, "cpu")
began = time.perf_counter()
predict_motion(image, model, num_steps=steps, seed=0, device="cpu")
print(json.dumps({"seconds": time.perf_counter() - began, "threads": torch.get_num_threads()}))
"""

STUDIO_CHILD = r"""
import json, os, sys, tempfile, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from app.ui.studio import leave_a_core_for_the_interface
leave_a_core_for_the_interface()  # what run_app does
import torch
from app.diffusion.weights import load_motion_model
from app.pipeline import MOTION_MODEL_WEIGHTS
from app.ui.main_window import MainWindow
from app.ui.viewport import CpuViewport
steps = int(sys.argv[1])
folder = tempfile.mkdtemp(prefix="aeolus-bench-generate-")
window = MainWindow(settings=QSettings(os.path.join(folder, "settings.ini"), QSettings.IniFormat),
                    autosave_dir=os.path.join(folder, "autosave"), viewport=CpuViewport())
window.show()
assert window.open_example("willow")
window.set_motion_model(load_motion_model(MOTION_MODEL_WEIGHTS, "cpu"))
panel = window.generate_panel
panel.steps_spin.setValue(steps)
panel.seed_spin.setValue(0)
panel.loop_check.setChecked(False)
result = {}
def finished(_motion):
    result["seconds"] = time.perf_counter() - result.pop("began")
    QTimer.singleShot(0, app.quit)
def begin():
    result["began"] = time.perf_counter()
    window.start_generation()
    window.generation_worker.finished.connect(finished)
    window.generation_worker.failed.connect(lambda message: (result.update(error=message), app.quit()))
QTimer.singleShot(500, begin)  # the viewport playing for a moment first, as after opening a photo
app.exec()
result["threads"] = torch.get_num_threads()
print(json.dumps(result))
"""


def _child(code: str, steps: int) -> dict:
    result = subprocess.run([sys.executable, "-c", code, str(steps)], capture_output=True, text=True,
                            check=False, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[-800:])
    row = json.loads(result.stdout.strip().splitlines()[-1])
    if "error" in row:
        raise RuntimeError(row["error"])
    return row


def run_generate_benchmark(steps: int = STEPS, busy: bool = True, repeats: int = 1) -> list[dict]:
    """Rows for cli and studio (seconds, threads) and the studio / cli ratio, one busy core or none."""
    from app.pipeline import MOTION_MODEL_WEIGHTS

    if not MOTION_MODEL_WEIGHTS.is_file():
        raise RuntimeError("No models/motion_model.safetensors to generate with.")
    loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        seconds = {"cli": [], "studio": []}
        threads = {}
        for _ in range(repeats):
            for name, code in (("cli", CLI_CHILD), ("studio", STUDIO_CHILD)):
                row = _child(code, steps)
                seconds[name].append(row["seconds"])
                threads[name] = row["threads"]
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    best = {name: min(values) for name, values in seconds.items()}
    load = "one busy core" if busy else "idle"
    rows = [{"name": f"generate-{name}", "steps": steps, "load": load, "device": "cpu",
             "seconds": round(best[name], 2), "threads": threads[name],
             "ratio": round(best[name] / best["cli"], 3)} for name in ("cli", "studio")]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app bench generate", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--idle", action="store_true", help="no busy loop")
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs each")
    args = parser.parse_args(argv)
    try:
        rows = run_generate_benchmark(args.steps, busy=not args.idle, repeats=max(1, args.repeats))
    except RuntimeError as error:
        print(f"bench generate: {error}", file=sys.stderr)
        return 1
    print_rows(rows, args.json, lambda row: f"{row['name']:>16}  {row['steps']} steps, {row['load']}: "
                                            f"{row['seconds']:.1f} s ({row['threads']} torch threads), "
                                            f"ratio to cli {row['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
