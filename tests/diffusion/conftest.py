"""Shared set-up of the diffusion tests."""
import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every diffusion test on one torch thread (tests/conftest.py)."""
