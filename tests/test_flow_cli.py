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
