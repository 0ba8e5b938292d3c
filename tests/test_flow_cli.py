"""The flow verb and the bundled water example."""

import contextlib
import os

import numpy as np
import pytest

from app.cli import main
from app.core.flow_field import flow_from_hints, load_flow
from app.data.images import save_image
from app.pipeline import flow_example
from app.render.export import seam_error
from app.render.frames import RenderSettings, render_loop


@pytest.fixture
def photo_path(tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.uniform(0, 255, (40, 56, 3))).astype(np.uint8)
    path = str(tmp_path / "photo.png")
    save_image(path, image)
    return path


def test_flow_writes_frames_and_the_field(photo_path, tmp_path):
    out = str(tmp_path / "frames")
    field = str(tmp_path / "flow.npz")
    code = main(["flow", photo_path, "--arrow", "10,20,20,0", "--arrow=40,10,-10,5", "--anchor", "50,35",
                 "--frames", "12", "--loops", "2", "--save-flow", field, "-o", out])
    assert code == 0
    assert len(os.listdir(out)) == 24
    flow = load_flow(field)
    assert flow.velocity.shape == (2, 40, 56) and flow.num_frames == 12
    assert flow.velocity[0, 20, 10] == pytest.approx(20 / 30, abs=1e-4)


def test_flow_with_a_mask_keeps_the_rest_still(photo_path, tmp_path):
    mask = np.zeros((40, 56, 3), np.uint8)
    mask[10:30] = 255
    mask_path = str(tmp_path / "mask.png")
    save_image(mask_path, mask)
    field = str(tmp_path / "flow.npz")
    assert main(["flow", photo_path, "--arrow", "10,20,20,0", "--mask", mask_path, "--frames", "6",
                 "--save-flow", field, "-o", str(tmp_path / "out.gif")]) == 0
    velocity = load_flow(field).velocity
    assert np.abs(velocity[:, :5]).max() == 0 and np.abs(velocity[:, 35:]).max() == 0
    assert os.path.getsize(tmp_path / "out.gif") > 0


@pytest.mark.parametrize("arguments, phrase", [
    (["--arrow", "100,20,5,0"], "outside the 56x40 photo"),
    (["--arrow", "10,20,0,0"], "zero length"),
    (["--arrow", "10,20,5"], "is not 4 numbers"),
    (["--arrow", "10,20,5,0", "--mask", "MASK"], "no pixels"),
])
def test_bad_hints_are_one_sentence(photo_path, tmp_path, capsys, arguments, phrase):
    empty = np.zeros((40, 56, 3), np.uint8)
    save_image(str(tmp_path / "empty.png"), empty)
    arguments = [str(tmp_path / "empty.png") if value == "MASK" else value for value in arguments]
    out = str(tmp_path / "out.mp4")
    with pytest.raises(SystemExit) if "not 4" in phrase else contextlib.nullcontext():
        code = main(["flow", photo_path, *arguments, "-o", out])
        assert code == 2
    error = capsys.readouterr().err
    assert phrase in error
    assert not os.path.exists(out)


def test_the_bundled_water_example_loops_seamlessly():
    image, hints = flow_example()
    assert len(hints.arrows) > 0 and hints.mask is not None
    import cv2

    small = cv2.resize(image, (176, 144), interpolation=cv2.INTER_AREA)
    flow = flow_from_hints(hints, 144, 176)
    frames = list(render_loop(small, None, RenderSettings(device="cpu"), flow=flow))
    seam = seam_error(frames)
    assert len(frames) == hints.num_frames
    assert seam["median_step"] > 0.5
    assert seam["seam"] <= seam["median_step"]


def test_hints_from_a_file_and_from_the_command_line_add_up(tmp_path):
    from app.pipeline import EXAMPLES_DIR

    image, hints = flow_example()
    field = str(tmp_path / "flow.npz")
    code = main(["flow", str(EXAMPLES_DIR / "fountain.png"), "--hints", str(EXAMPLES_DIR / "fountain.flow.json"),
                 "--arrow", "300,270,20,0", "--frames", "4", "--size", "176x144", "--save-flow", field,
                 "-o", str(tmp_path / "out")])
    assert code == 0
    flow = load_flow(field)
    expected = flow_from_hints(hints, *image.shape[:2]).velocity
    assert flow.num_frames == 4
    # the file's arrows are there (the jet goes up) and so is the new one
    assert flow.velocity[1, 240, 200] == pytest.approx(expected[1, 240, 200], abs=1e-4)
    assert flow.velocity[0, 270, 300] == pytest.approx(20 / 30, rel=0.1)  # solved on a coarser grid
    assert len(os.listdir(tmp_path / "out")) == 4


def test_a_bad_hints_file_is_one_sentence(photo_path, tmp_path, capsys):
    bad = tmp_path / "bad.flow.json"
    bad.write_text("{not json")
    assert main(["flow", photo_path, "--hints", str(bad), "-o", str(tmp_path / "out.mp4")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["flow", photo_path, "-o", str(tmp_path / "out.mp4")]) == 2
    assert "at least one arrow" in capsys.readouterr().err
