"""Every command-line verb survives the bad-input corpus (tests/bad_input_corpus.py, made at test
time): exit status 1 or 2, one line on stderr, no traceback, nothing left in the output folder, an
existing output file untouched, and the inputs untouched; each case is bounded in time.

AEOLUS_CORPUS_REPORT=FILE appends one JSON line per case (verb, case, status, message) to FILE.
"""

import errno
import hashlib
import json
import os
import re

import pytest

from app import cli
from bad_input_corpus import CASES, PROJECT_NAMES, make_corpus

PROGRESS = re.compile(r"^\s*[\w-]+:\s+(\d+%\||\d+\w* \[)")  # tqdm's progress lines (they share stderr)
CASE_SECONDS = 120


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def snapshot(folder):
    """{relative path: sha1} of every file under folder (folders as None)."""
    found = {}
    for where, folders, files in os.walk(folder):
        for name in folders:
            found[os.path.relpath(os.path.join(where, name), folder)] = None
        for name in files:
            path = os.path.join(where, name)
            with open(path, "rb") as file:
                found[os.path.relpath(path, folder)] = hashlib.sha1(file.read()).hexdigest()
    return found


def run_case(verb, case, corpus, tmp_path, monkeypatch, capsys):
    build = dict(CASES[verb])[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "existing.mp4").write_bytes(b"an existing loop the user made")
    (out / "existing.npz").write_bytes(b"an existing motion the user made")
    (out / "afile").write_text("a file where a folder should be")
    argv = build(corpus, out)
    before, inputs_before = snapshot(out), snapshot(corpus.root)
    if case == "disk full":
        import app.atomic

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(app.atomic.os, "replace", full)
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exit:  # argparse
        status = exit.code
    captured = capsys.readouterr()
    monkeypatch.undo()
    lines = [line for line in re.split(r"[\r\n]+", captured.err) if line.strip() and not PROGRESS.match(line)]
    report = os.environ.get("AEOLUS_CORPUS_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as file:
            file.write(json.dumps({"verb": verb, "case": case, "status": status, "lines": lines}) + "\n")

    assert status in (1, 2), f"exit status {status}; stderr: {captured.err[-500:]}"
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert snapshot(out) == before, "the output folder changed"
    assert snapshot(corpus.root) == inputs_before, "an input changed"


def cases(verb):
    return pytest.mark.parametrize("case", [name for name, _ in CASES[verb]])


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("render")
def test_render_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("render", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("flow")
def test_flow_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("flow", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("poke")
def test_poke_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("poke", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("brush")
def test_brush_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("brush", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("info")
def test_info_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("info", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("predict")
def test_predict_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("predict", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("animate")
def test_animate_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("animate", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("batch")
def test_batch_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("batch", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@cases("extract")
def test_extract_survives_bad_input(corpus, tmp_path, monkeypatch, capsys, case):
    run_case("extract", case, corpus, tmp_path, monkeypatch, capsys)


@pytest.mark.timeout(CASE_SECONDS, method="thread")
@pytest.mark.parametrize("case", PROJECT_NAMES)
def test_projects_go_through_the_same_checks(corpus, case):
    """Every crafted project is one ProjectError sentence (the studio shows it in a dialog)."""
    from app.project import ProjectError, load_project

    with pytest.raises(ProjectError) as caught:
        load_project(str(corpus.projects[case]))
    assert "\n" not in str(caught.value) and corpus.projects[case].name in str(caught.value)


def test_a_project_member_name_is_never_a_path(corpus, tmp_path, monkeypatch):
    from app.project import load_project

    monkeypatch.chdir(tmp_path)
    assert load_project(str(corpus.projects["member path traversal"])).image.shape[2] == 3
    assert not (corpus.root.parent / "evil.txt").exists() and not list(tmp_path.iterdir())
