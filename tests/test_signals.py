"""Ctrl-C and SIGTERM in the middle of an export over an existing file: the old file stays
byte-identical, nothing is left beside it, and the command says so (130 "Cancelled.", 143
"Terminated.").

The render runs as a terminal's foreground job would: with SIGINT at its default. A test run
started in the background by a non-interactive shell (`make test &`, many CI runners) has SIGINT
ignored, children inherit an ignored signal, and Python then installs no KeyboardInterrupt
handler: the render would ignore Ctrl-C, as a background job of a script is meant to."""

import contextlib
import hashlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "resources" / "examples" / "willow.png"
MOTION = REPO / "resources" / "examples" / "willow.npz"


def sha1(path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


@contextlib.contextmanager
def sigint_as_in_a_terminal():
    """Children started inside get SIGINT at its default, even if this process ignores it: a
    handler (unlike an ignore) is reset to the default by exec."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted_render(tmp_path, send):
    """Start a long render over an existing loop.mp4, call send(process) once frames are being
    written, and return (exit status, stderr, the old file's hash before and after, the listing)."""
    target = tmp_path / "loop.mp4"
    target.write_bytes(b"the loop the user exported yesterday")
    before = sha1(target)
    command = [sys.executable, "-m", "app", "render", str(PHOTO), str(MOTION), "-o", str(target),
               "--size", "64x48", "--loops", "200"]
    with sigint_as_in_a_terminal():
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    stderr = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the export is under way (some frames written)
        ready, _, _ = select.select([process.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            stderr += chunk
            counts = [int(n) for n in re.findall(rb"\| *(\d+)/\d+ \[", stderr)]
            if counts and max(counts) >= 20:
                break
    assert process.poll() is None, "the render ended before it could be interrupted"
    send(process)
    _, rest = process.communicate(timeout=60)
    stderr += rest or b""
    return process.returncode, stderr.decode(errors="replace"), before, sha1(target), sorted(os.listdir(tmp_path))


def test_children_get_sigint_at_its_default_even_when_the_tests_ignore_it():
    """The run may have been started with SIGINT ignored; the render must still see Ctrl-C."""
    probe = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigint_as_in_a_terminal():
            result = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.timeout(240)
def test_ctrl_c_keeps_the_old_file_and_says_cancelled(tmp_path):
    status, stderr, before, after, listing = interrupted_render(tmp_path, lambda p: p.send_signal(signal.SIGINT))
    assert status == 130 and "Cancelled." in stderr and "Traceback" not in stderr
    assert after == before and listing == ["loop.mp4"]


@pytest.mark.timeout(240)
def test_ctrl_c_to_the_process_group_keeps_the_old_file(tmp_path):
    """What a terminal does: SIGINT to every process of the group (ffmpeg included)."""
    status, stderr, before, after, listing = interrupted_render(tmp_path, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert status == 130 and "Cancelled." in stderr and "Traceback" not in stderr
    assert after == before and listing == ["loop.mp4"]


@pytest.mark.timeout(240)
def test_sigterm_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    status, stderr, before, after, listing = interrupted_render(tmp_path, lambda p: p.send_signal(signal.SIGTERM))
    assert status == 143 and "Terminated." in stderr and "Traceback" not in stderr
    assert after == before and listing == ["loop.mp4"]
