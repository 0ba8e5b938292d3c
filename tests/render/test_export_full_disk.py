"""Exporting over an existing video on a full disk: the old file stays byte-identical, nothing is
left beside it, and the error is one sentence naming the file ("... the disk is full.")."""

import os
import subprocess

import numpy as np
import pytest

import app.render.export as export
from app.render.export import ExportWriteError, export_frames


def frames(count=30, height=96, width=128):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs when this machine lets us mount one (root in a container), else a skip."""
    folder = tmp_path / "disk"
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_real_full_disk_keeps_the_old_video(small_disk):
    target = small_disk / "loop.mp4"
    target.write_bytes(os.urandom(700_000))
    before = target.read_bytes()
    with pytest.raises(ExportWriteError) as caught:
        export_frames(target, frames(count=200, height=256, width=320), 30.0)
    assert str(caught.value) == f"Cannot write '{target}': the disk is full."
    assert target.read_bytes() == before and os.listdir(small_disk) == ["loop.mp4"]


def test_an_unfinished_mp4_is_never_renamed_over_the_target(tmp_path, monkeypatch):
    """ffmpeg exits without finishing the file (as on a full disk): the check of the MP4's boxes
    catches it, and free space tells why."""
    target = tmp_path / "loop.mp4"
    target.write_bytes(b"yesterday's loop")
    monkeypatch.setattr(export, "_mp4_is_complete", lambda path: False)

    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(export.os, "statvfs", lambda path: Full())
    with pytest.raises(ExportWriteError, match="disk is full"):
        export_frames(target, frames(), 30.0)
    assert target.read_bytes() == b"yesterday's loop" and os.listdir(tmp_path) == ["loop.mp4"]


def test_mp4_completeness_check(tmp_path):
    path = export_frames(tmp_path / "ok.mp4", frames(), 30.0)
    assert export._mp4_is_complete(path)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - 100])
    assert not export._mp4_is_complete(str(cut))
