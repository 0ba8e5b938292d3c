"""Batch animation of a folder: every good photo becomes a loop, a broken one is reported and skipped."""

import os

import numpy as np
import pytest
from PIL import Image

from app.batch import BatchSettings, animate_folder, photos_in, summary
from app.core.procedural import BrushSettings
from app.render.export import read_frame_count


def write_photo(path, height=32, width=48, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


def small_settings(tmp_path):
    return BatchSettings(model_path=str(tmp_path / "no-model.safetensors"), device="cpu",
                         brush=BrushSettings(amplitude_px=2.0, coherence_px=8.0))


def test_a_folder_is_animated_and_a_broken_photo_is_skipped(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    write_photo(folder / "a.png", seed=1)
    (folder / "b.jpg").write_bytes(b"this is not a jpeg")
    write_photo(folder / "c.png", seed=2)
    (folder / "notes.txt").write_text("not a photo")
    seen = []
    results = animate_folder(str(folder), str(tmp_path / "out"), small_settings(tmp_path),
                             on_file=lambda index, total, result: seen.append((index, total, result.ok)))
    assert [os.path.basename(result.photo) for result in results] == ["a.png", "b.jpg", "c.png"]
    assert [result.ok for result in results] == [True, False, True]
    assert seen == [(0, 3, True), (1, 3, False), (2, 3, True)]
    for result in (results[0], results[2]):
        assert result.output.endswith(".mp4") and os.path.isfile(result.output)
        assert result.motion_source == "brush"
        assert read_frame_count(result.output) == 150
    assert "\n" not in results[1].error and results[1].error
    assert not os.path.exists(tmp_path / "out" / "b-loop.mp4")
    assert summary(results).startswith("2 of 3 photos animated.")


def test_photos_in_lists_only_photos_sorted(tmp_path):
    write_photo(tmp_path / "z.png")
    write_photo(tmp_path / "a.jpg")
    (tmp_path / "x.txt").write_text("")
    assert [os.path.basename(path) for path in photos_in(str(tmp_path))] == ["a.jpg", "z.png"]


def test_a_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        animate_folder(str(tmp_path / "nowhere"), str(tmp_path / "out"))


def test_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown batch format"):
        animate_folder(str(tmp_path), str(tmp_path / "out"), BatchSettings(format="avi"))


def test_photos_that_share_a_stem_get_outputs_of_their_own():
    from app.batch import output_names

    photos = ["in/good.bmp", "in/good.jpg", "in/good.png", "in/other.png"]
    names = output_names(photos, "mp4")
    assert len(set(names.values())) == len(photos)
    assert names["in/good.jpg"] == "good-jpg-loop.mp4" and names["in/other.png"] == "other-loop.mp4"
