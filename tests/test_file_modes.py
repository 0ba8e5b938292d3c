"""Every file the app writes gets the umask's normal mode (0644 under umask 022), not mkstemp's 0600,
and a failed write leaves nothing behind."""

import os
import stat

import numpy as np
import pytest

from app.atomic import WriteError, atomic_write
from app.core.spectral import Motion, save_motion
from app.data.images import save_image
from app.project import Project, save_project
from app.render.export import ExportError, export_frames


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def frames(count=4, height=16, width=24):
    return [np.full((height, width, 3), 40 * number, np.uint8) for number in range(count)]


def small_motion():
    return Motion(np.full((2, 2, 8, 12), 0.5 + 0.25j, np.complex64), 8, 30.0)


def test_motions_projects_images_and_videos_are_written_0644(tmp_path, umask_022):
    save_motion(str(tmp_path / "motion.npz"), small_motion())
    save_project(str(tmp_path / "scene.aeolus"), Project(image=np.zeros((8, 12, 3), np.uint8), motion=small_motion()))
    save_image(tmp_path / "photo.png", np.zeros((8, 12, 3), np.uint8))
    for name in ("loop.mp4", "loop.gif", "loop.webm"):
        export_frames(tmp_path / name, frames(), 30.0)
    export_frames(tmp_path / "frames", frames(), 30.0)
    written = ["motion.npz", "scene.aeolus", "photo.png", "loop.mp4", "loop.gif", "loop.webm"]
    assert {name: oct(mode(tmp_path / name)) for name in written} == {name: oct(0o644) for name in written}
    assert oct(mode(tmp_path / "frames")) == oct(0o755)
    assert {oct(mode(tmp_path / "frames" / name)) for name in os.listdir(tmp_path / "frames")} == {oct(0o644)}
    assert sorted(os.listdir(tmp_path)) == sorted(written + ["frames"])  # no temporary file left


def test_model_files_are_written_0644(tmp_path, umask_022):
    from app.diffusion.pixel import PixelModelConfig, PixelMotionModel, PixelMotionNet, save_pixel_model
    from app.diffusion.weights import save_motion_model, save_vae, tiny_motion_model
    from app.render.net import LearnedRenderer, save_renderer
    from app.train.common import save_checkpoint

    save_renderer(tmp_path / "renderer.safetensors", LearnedRenderer({"channels": [4, 8, 8]}))
    save_checkpoint(str(tmp_path / "checkpoint.pt"), {"model": {}, "step": 1})
    motion_model = tiny_motion_model()
    save_motion_model(tmp_path / "motion_model.safetensors", motion_model)
    save_vae(tmp_path / "vae.safetensors", motion_model.vae)
    config = PixelModelConfig(width=16, height=8, num_bands=3, channels=(8, 16), image_channels=8)
    save_pixel_model(str(tmp_path / "pixel.safetensors"), PixelMotionModel(PixelMotionNet(config), [1.0] * 3, config))
    written = ["renderer.safetensors", "checkpoint.pt", "motion_model.safetensors", "vae.safetensors",
               "pixel.safetensors"]
    assert {name: oct(mode(tmp_path / name)) for name in written} == {name: oct(0o644) for name in written}
    assert sorted(os.listdir(tmp_path)) == sorted(written)  # no temporary file left


def test_a_stricter_umask_is_honoured(tmp_path):
    previous = os.umask(0o077)
    try:
        save_motion(str(tmp_path / "motion.npz"), small_motion())
    finally:
        os.umask(previous)
    assert oct(mode(tmp_path / "motion.npz")) == oct(0o600)


def test_a_full_disk_is_one_sentence_and_keeps_the_old_file(tmp_path):
    import errno

    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")

    def full(file):
        file.write(b"new, half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError) as caught:
        atomic_write(str(target), full)
    assert str(caught.value) == f"Cannot write '{target}': the disk is full."
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["keep.bin"]


@pytest.mark.parametrize("where, reason", [
    ("missing/out", "its folder does not exist"),
    ("afile/out", "a part of its folder path is a file, not a folder"),
    ("a_folder", "a folder of that name is in the way"),
])
def test_write_faults_are_one_sentence(tmp_path, where, reason):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "a_folder.npz").mkdir()
    with pytest.raises(WriteError, match=reason):
        save_motion(str(tmp_path / (where + ".npz")), small_motion())
    if where != "a_folder":  # for an export, an existing folder means a PNG sequence
        with pytest.raises(ExportError, match=reason):
            export_frames(tmp_path / (where + ".mp4"), frames(), 30.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_sentence(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WriteError, match="not writable"):
            save_motion(str(folder / "m.npz"), small_motion())
    finally:
        folder.chmod(0o700)
