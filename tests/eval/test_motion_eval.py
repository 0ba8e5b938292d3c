"""`python -m app eval motion` end to end on a tiny synthetic dataset (2 validation and 2 training
clips at 64 x 48, 30-frame windows, 8 bands) with a tiny random model."""

import json
import os

import numpy as np
import pytest

SEEDS = (0, 1)
FIGURE_KEYS = {"name", "split", "method", "seed", "clip", "items", "iou", "iou_chance", "band_log_ratio",
               "band_log_error", "low_band_share", "first_frame_px", "frame_step_px", "mean_displacement_px",
               "photo_dependence", "magnitude_dependence", "seam_ratio"}


def clip_names(split, count, prefix="sway"):
    """`count` folder names whose clips land in `split`."""
    from app.data.extract import split_of

    names = [f"{prefix}{n}" for n in range(2000) if split_of(f"{prefix}{n}-0000") == split]
    return names[:count]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Four clips of 50 frames swaying at 1-2 Hz, 3 windows each; two of them validation clips."""
    from app.data.extract import ExtractSettings, extract_dataset
    from app.data.images import save_image
    from app.data.synthetic import render_synthetic_video, sinusoidal_motion_texture, textured_image

    root = tmp_path_factory.mktemp("motion-eval")
    folders = []
    for number, name in enumerate(clip_names("val", 2) + clip_names("train", 2)):
        image = textured_image(48, 64, seed=number)
        texture = sinusoidal_motion_texture(48, 64, 50, seed=10 + number, max_amplitude_px=3.0, min_hz=1.0, max_hz=2.0)
        folder = root / name
        os.makedirs(folder)
        for index, frame in enumerate(render_synthetic_video(image, texture)):
            save_image(str(folder / f"f{index:04d}.png"), frame)
        folders.append(str(folder))
    settings = ExtractSettings(width=64, height=48, num_frames=30, stride=10, num_bands=8, fps=30.0)
    out = root / "dataset"
    reports = extract_dataset(folders, str(out), settings)
    assert [report.windows_kept for report in reports] == [3, 3, 3, 3]
    return str(out)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from app.diffusion.weights import save_motion_model, tiny_motion_model

    folder = tmp_path_factory.mktemp("weights")
    model = tiny_motion_model(size=(64, 48), num_bands=8, num_frames=30, fps=30.0)
    return save_motion_model(str(folder / "tiny.safetensors"), model)


def dataset_clips(dataset_dir, split):
    """The clip names (with their hash) of a split, in dataset order."""
    from app.data.extract import load_index

    windows = load_index(dataset_dir)["windows"]
    return list(dict.fromkeys(w["clip"] for w in windows if w["split"] == split))


def rows_by_key(rows):
    return {(row["split"], row["method"], row["seed"], row["clip"]): row for row in rows}


def test_the_report_has_a_row_per_split_method_seed_and_clip(tiny_dataset, tiny_weights, tmp_path, capsys):
    from app.eval.motion_eval import main

    report_path = tmp_path / "report.json"
    assert main(["--data", tiny_dataset, "--weights", tiny_weights, "--seeds", *map(str, SEEDS), "--steps", "1",
                 "--split", "both", "--max-items", "2", "--no-fvd", "--json", "--out", str(report_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    report = json.loads(report_path.read_text())
    assert report["rows"] == lines and report["settings"]["seeds"] == list(SEEDS)
    rows = rows_by_key(lines)
    methods = [("tiny.safetensors", seed) for seed in SEEDS] + [("brush", None), ("still", None), ("reference", None)]
    val_clips, train_clips = dataset_clips(tiny_dataset, "val"), dataset_clips(tiny_dataset, "train")
    assert len(val_clips) == len(train_clips) == 2
    expected = {(split, method, seed, clip) for split, clips in (("val", val_clips), ("train", train_clips))
                for method, seed in methods for clip in clips + ["mean"]}
    assert set(rows) == expected and len(lines) == len(expected)
    for row in lines:
        assert FIGURE_KEYS <= set(row) and row["name"] == "eval-motion" and "fvd" not in row
        assert len(row["band_log_ratio"]) == 7  # bands 1..7
        assert row["items"] == (4 if row["clip"] == "mean" else 2)
        assert row["first_frame_px"] < 1e-3  # frame 0 is the photo, for every method
    for split, clips in (("val", val_clips), ("train", train_clips)):
        reference = rows[(split, "reference", None, "mean")]
        assert reference["iou"] == 1.0 and reference["band_log_error"] == 0.0
        assert reference["band_log_ratio"] == [0.0] * 7 and reference["clips"] == 2
        assert reference["frame_step_px"] > 0 and 0.0 < reference["low_band_share"] <= 1.0
        assert reference["photo_dependence"] < 0.9  # real motions of different photos differ
        assert reference["magnitude_dependence"] > reference["photo_dependence"]  # phases differ between photos
        still = rows[(split, "still", None, "mean")]
        assert still["frame_step_px"] == 0.0 and still["mean_displacement_px"] == 0.0 and still["iou"] == 0.0
        assert still["low_band_share"] is None and still["photo_dependence"] is None
        assert max(still["band_log_ratio"]) <= 0.0 and min(still["band_log_ratio"]) < -2.0  # no band as strong
        brush = rows[(split, "brush", None, "mean")]
        assert brush["photo_dependence"] == pytest.approx(1.0)  # one brush motion for every photo
        assert brush["magnitude_dependence"] == pytest.approx(1.0)
        for clip in clips:
            assert rows[(split, "brush", None, clip)]["photo_dependence"] == pytest.approx(1.0)
            clip_ious = [rows[(split, "tiny.safetensors", seed, clip)]["iou"] for seed in SEEDS]
            assert all(0.0 <= iou <= 1.0 for iou in clip_ious)
        mean_of_clips = np.mean([rows[(split, "brush", None, clip)]["frame_step_px"] for clip in clips])
        assert brush["frame_step_px"] == pytest.approx(mean_of_clips, abs=1e-5)
        seed_rows = [rows[(split, "tiny.safetensors", seed, "mean")] for seed in SEEDS]
        assert seed_rows[0]["band_log_ratio"] != seed_rows[1]["band_log_ratio"]  # the seed is used
        assert all(row["photo_dependence"] is not None for row in seed_rows)
        assert all(row["magnitude_dependence"] >= row["photo_dependence"] - 1e-6 for row in seed_rows)


def test_the_table_shows_every_method_and_the_band_ratios(tiny_dataset, capsys):
    from app.eval.motion_eval import main

    assert main(["--data", tiny_dataset, "--no-fvd", "--max-items", "1"]) == 0
    captured = capsys.readouterr()
    assert "no --weights" in captured.err
    assert "| val | brush | - | mean | 2 |" in captured.out and "| val | reference | - | mean |" in captured.out
    assert "| b1 | b2 |" in captured.out and "| b7 |" in captured.out and "| b8 |" not in captured.out
    assert "| train |" not in captured.out


def test_several_models_are_labelled_by_file_name_and_a_bad_one_is_skipped(tiny_dataset, tiny_weights, tmp_path, capsys):
    from app.eval.motion_eval import main

    other = tmp_path / "other"
    other.mkdir()
    copy = other / "tiny.safetensors"
    copy.write_bytes(open(tiny_weights, "rb").read())
    renamed = tmp_path / "second.safetensors"
    renamed.write_bytes(open(tiny_weights, "rb").read())
    assert main(["--data", tiny_dataset, "--weights", tiny_weights, str(copy), "--weights", str(renamed),
                 str(tmp_path / "missing.safetensors"), "--seeds", "3", "--steps", "1", "--max-items", "1",
                 "--no-fvd", "--json"]) == 0
    captured = capsys.readouterr()
    methods = {json.loads(line)["method"] for line in captured.out.strip().splitlines()}
    assert methods == {tiny_weights, str(copy), "second.safetensors", "brush", "still", "reference"}
    assert "model skipped: cannot load" in captured.err and "missing.safetensors" in captured.err


def test_bad_options_and_a_missing_dataset_get_one_sentence(tiny_dataset, tmp_path, capsys):
    from app.eval.motion_eval import main

    assert main(["--data", str(tmp_path / "nowhere"), "--no-fvd"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["--data", tiny_dataset, "--no-fvd", "--max-items", "0"]) == 2
    assert "--max-items must be at least 1" in capsys.readouterr().err
    assert main(["--data", tiny_dataset, "--no-fvd", "--out", str(tmp_path / "no" / "report.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_fvd_of_every_method_against_the_real_frames(tiny_dataset, tiny_video_net):
    from app.eval.motion_eval import Method, brush_predictor, evaluate_split, reference_predictor, still_predictor

    methods = [Method("brush", brush_predictor), Method("still", still_predictor),
               Method("reference", reference_predictor)]
    rows = evaluate_split(tiny_dataset, "val", methods, fvd=True, fvd_items=3, fvd_model=tiny_video_net,
                          progress=False)
    means = {row["method"]: row for row in rows if row["clip"] == "mean"}
    assert set(means) == {"brush", "still", "reference"}
    assert all(row["fvd_reference"] == "video" and row["fvd_items"] == 3 for row in means.values())
    assert all(row["fvd"] is not None and row["fvd"] >= 0 for row in means.values())
    assert all("fvd" not in row for row in rows if row["clip"] != "mean")
