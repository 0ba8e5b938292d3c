"""Project files (.aeolus): exact round trip, and one-sentence errors for bad files."""

import json
import os
import zipfile

import numpy as np
import pytest

from app.core.procedural import BrushSettings
from app.core.spectral import Motion
from app.project import FORMAT_VERSION, Project, ProjectError, load_project, save_project


def make_project() -> Project:
    rng = np.random.default_rng(1)
    spectrum = (rng.standard_normal((4, 2, 12, 20)) + 1j * rng.standard_normal((4, 2, 12, 20))).astype(np.complex64)
    return Project(
        image=rng.integers(0, 256, (24, 40, 3), dtype=np.uint8),
        motion=Motion(spectrum, num_frames=60, fps=24.0),
        brush_mask=rng.random((12, 20), dtype=np.float32),
        freeze_mask=rng.random((12, 20), dtype=np.float32),
        gains=np.array([1.0, 0.5, 1.25, 2.0], np.float32),
        magnitude=1.5, slowdown=2.0,
        brush=BrushSettings(amplitude_px=6.0, direction_deg=45.0, dominant_hz=None, coherence_px=12.0, seed=3),
        name="meadow", settings={"export_format": "gif"},
    )


def test_a_project_round_trips_exactly(tmp_path):
    project = make_project()
    path = save_project(str(tmp_path / "meadow.aeolus"), project)
    loaded = load_project(path)
    np.testing.assert_array_equal(loaded.image, project.image)
    assert loaded.image.dtype == np.uint8
    np.testing.assert_array_equal(loaded.motion.spectrum, project.motion.spectrum)
    assert loaded.motion.num_frames == 60 and loaded.motion.fps == 24.0
    np.testing.assert_array_equal(loaded.brush_mask, project.brush_mask)
    np.testing.assert_array_equal(loaded.freeze_mask, project.freeze_mask)
    np.testing.assert_array_equal(loaded.gains, project.gains)
    assert loaded.magnitude == 1.5 and loaded.slowdown == 2.0
    assert loaded.brush == project.brush
    assert loaded.name == "meadow" and loaded.settings == {"export_format": "gif"}


def test_a_project_without_motion_or_masks_round_trips(tmp_path):
    project = Project(image=np.zeros((8, 8, 3), np.uint8))
    loaded = load_project(save_project(str(tmp_path / "empty.aeolus"), project))
    assert loaded.motion is None and loaded.brush_mask is None and loaded.freeze_mask is None
    assert loaded.gains is None and loaded.brush == BrushSettings()


def test_a_file_that_is_not_a_zip_is_one_sentence(tmp_path):
    path = tmp_path / "junk.aeolus"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ProjectError, match="truncated or not an Aeolus project"):
        load_project(str(path))


def test_a_truncated_project_is_one_sentence(tmp_path):
    path = save_project(str(tmp_path / "whole.aeolus"), make_project())
    data = open(path, "rb").read()
    cut = tmp_path / "cut.aeolus"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError):
        load_project(str(cut))


def test_a_project_missing_its_photo_names_the_part(tmp_path):
    path = tmp_path / "nophoto.aeolus"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.json", json.dumps({"format": 1}))
    with pytest.raises(ProjectError, match="missing its photo.png"):
        load_project(str(path))


def test_a_newer_format_says_so(tmp_path):
    path = save_project(str(tmp_path / "new.aeolus"), make_project())
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(parts["project.json"])
    manifest["format"] = 3
    parts["project.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(ProjectError) as error:
        load_project(path)
    assert str(error.value) == (f"Project '{os.path.basename(path)}' was made by a newer Aeolus (format 3); "
                                f"this version reads up to {FORMAT_VERSION}.")


def test_a_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        load_project(str(tmp_path / "nowhere.aeolus"))


def test_a_failed_save_leaves_the_old_project(tmp_path):
    path = save_project(str(tmp_path / "keep.aeolus"), make_project())
    before = open(path, "rb").read()
    with pytest.raises(ValueError):
        save_project(path, Project(image=np.zeros((4, 4), np.float32)))
    assert open(path, "rb").read() == before


# --- the flow layer (format 2) ----------------------------------------------------------------------


def flow_hints(mask=True):
    from app.core.flow_field import FlowHints

    rng = np.random.default_rng(4)
    return FlowHints(20, 12, arrows=[[1.1, 2.25, 13.375, -0.1], [15.0, 9.5, -4.0, 2.0]], anchors=[[3.3, 4.4]],
                     mask=rng.random((12, 20), dtype=np.float32) if mask else None, speed=1.75, num_frames=72, fps=24.0)


@pytest.mark.parametrize("with_mask", [True, False])
def test_the_flow_layer_round_trips_exactly(tmp_path, with_mask):
    project = make_project()
    project.flow = flow_hints(with_mask)
    loaded = load_project(save_project(str(tmp_path / "river.aeolus"), project))
    assert loaded.flow is not None and loaded.flow.same_as(project.flow)
    np.testing.assert_array_equal(loaded.flow.arrows, project.flow.arrows)
    if with_mask:
        np.testing.assert_array_equal(loaded.flow.mask, project.flow.mask)
    assert FORMAT_VERSION == 2


def test_a_format_1_project_still_opens_without_flow(tmp_path):
    path = save_project(str(tmp_path / "old.aeolus"), make_project())
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(parts["project.json"])
    manifest = {key: value for key, value in manifest.items() if key not in ("flow", "has_flow_mask")}
    manifest["format"] = 1
    parts["project.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    loaded = load_project(path)
    assert loaded.flow is None
    np.testing.assert_array_equal(loaded.motion.spectrum, make_project().motion.spectrum)


def test_a_broken_flow_layer_is_one_sentence(tmp_path):
    project = make_project()
    project.flow = flow_hints(False)
    path = save_project(str(tmp_path / "broken.aeolus"), project)
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(parts["project.json"])
    del manifest["flow"]["width"]
    parts["project.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(ProjectError, match="unreadable flow layer"):
        load_project(path)
