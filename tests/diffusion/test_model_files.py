"""A motion model file that lies (metadata out of range, tensors of the wrong shape, NaN weights,
a truncated file) is refused with one sentence naming the file, before any module is built."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from app.diffusion.weights import load_motion_model, save_motion_model, tiny_motion_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_motion_model(str(path), tiny_motion_model())
    return path


def rewritten(model_file, tmp_path, section=None, changes=None, tensors=None):
    """A copy of the model file with some metadata settings (or tensors) changed."""
    from safetensors import safe_open

    with safe_open(str(model_file), framework="pt") as file:
        metadata = dict(file.metadata())
    state = load_file(str(model_file))
    if section is not None:
        values = json.loads(metadata[section])
        values.update(changes)
        metadata[section] = json.dumps(values)
    if tensors is not None:
        tensors(state)
    path = tmp_path / "crafted.safetensors"
    save_file(state, str(path), metadata=metadata)
    return path


def first_tensor(prefix):
    def change(state):
        name = sorted(name for name in state if name.startswith(prefix) and state[name].ndim >= 2)[0]
        state[name] = torch.zeros(tuple(state[name].shape[:-1]) + (state[name].shape[-1] + 1,), dtype=state[name].dtype)
    return change


def nan_weights(state):
    name = sorted(name for name in state if state[name].is_floating_point())[0]
    state[name] = torch.full_like(state[name], float("nan"))


CASES = {
    "num_frames 1": dict(section="model", changes={"num_frames": 1}),
    "zero width": dict(section="model", changes={"width": 0}),
    "huge height": dict(section="model", changes={"height": 10**9}),
    "0 schedule steps": dict(section="schedule", changes={"num_train_steps": 0}),
    "unknown schedule": dict(section="schedule", changes={"kind": "bogus"}),
    "head_channels 0": dict(section="unet", changes={"head_channels": 0}),
    "huge channels": dict(section="unet", changes={"channels": [1_000_000, 2_000_000]}),
    "negative channels": dict(section="vae", changes={"channels": [-8, 16]}),
    "channels that fit no tensor": dict(section="unet", changes={"channels": [64, 64]}),
    "a string for a number": dict(section="model", changes={"num_bands": "16"}),
    "wrong-shape tensor": dict(tensors=first_tensor("unet.")),
    "NaN weights": dict(tensors=nan_weights),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_lying_model_file_is_one_sentence(model_file, tmp_path, case):
    path = rewritten(model_file, tmp_path, **CASES[case])
    with pytest.raises(ValueError) as caught:
        load_motion_model(str(path))
    message = str(caught.value)
    assert "crafted.safetensors" in message and "\n" not in message


def test_a_truncated_model_file_is_one_sentence(model_file, tmp_path):
    path = tmp_path / "cut.safetensors"
    data = model_file.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.safetensors"):
        load_motion_model(str(path))


def test_the_real_file_still_loads(model_file):
    model = load_motion_model(str(model_file))
    assert model.num_bands == tiny_motion_model().num_bands
