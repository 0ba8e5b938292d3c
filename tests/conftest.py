"""Shared test fixtures: where the real footage lives, and a skip when it is absent."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data from the repository root; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent on this machine")
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """Torch on one intra-op thread for the test, restored after it: tiny tensors run faster so, and
    run_app does the same on a 2-core machine (a core left for the GUI)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
