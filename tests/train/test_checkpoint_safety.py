"""A training checkpoint is data, never code: --resume refuses a crafted pickle with one sentence."""

import os
import pickle

import pytest
import torch

from app.train.common import load_checkpoint, save_checkpoint


class _RunsCode:
    """Unpickling this calls os.mkdir(path): what a crafted checkpoint would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "step": 1, "payload": _RunsCode(str(marker))}, str(path))
    with pytest.raises(ValueError) as caught:
        load_checkpoint(str(path), "cpu")
    message = str(caught.value)
    assert "checkpoint.pt" in message and "not loaded" in message and "\n" not in message
    assert not marker.exists()


def test_a_plain_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(ValueError):
        load_checkpoint(str(path), "cpu")
    assert not marker.exists()


def test_a_real_checkpoint_round_trips(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    path = str(tmp_path / "checkpoint.pt")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7,
             "config": {"channels": [8, 16], "name": "tiny"}, "args": {"size": (64, 48), "resume": False, "lr": 1e-3}}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path, "cpu")
    assert loaded["step"] == 7 and loaded["args"]["size"] == (64, 48)
    assert torch.equal(loaded["model"]["weight"], model.state_dict()["weight"])
    torch.optim.AdamW(model.parameters(), lr=1e-3).load_state_dict(loaded["optimizer"])


def test_something_that_is_not_a_checkpoint_is_one_sentence(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save([1, 2, 3], str(path))
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(str(path), "cpu")
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(str(path), "cpu")
