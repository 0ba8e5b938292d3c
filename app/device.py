"""The one place that turns a device preference ("auto", "cpu" or "cuda") into a device.

    resolve_device(preference, strict=False) -> "cuda" | "cpu"
    torch_device(preference) -> torch.device   (strict: "cuda" without a GPU is a ValueError)

"auto" means CUDA when torch sees a GPU, else the CPU; "cpu" is always the CPU. An explicit "cuda"
on a machine without one is a ValueError with one sentence when strict (the command line), and the
CPU otherwise (the studio, whose preference may come from another machine). Every part of the app
asks here: the studio's preference, the command line's --device, the preview, batch and training.
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(preference: str = "auto", strict: bool = False) -> str:
    """'cuda' or 'cpu' for a preference; see the module docstring."""
    if preference not in DEVICES:
        raise ValueError(f"Unknown device '{preference}'; choose auto, cpu or cuda.")
    if preference == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if preference == "cuda" and strict:
        raise ValueError("CUDA was requested but this machine has no CUDA GPU; choose cpu or auto.")
    return "cpu"


def torch_device(preference: str = "auto"):
    """torch.device for a preference (strict)."""
    import torch

    return torch.device(resolve_device(preference, strict=True))
