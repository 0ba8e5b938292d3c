"""Argument types shared by the command line and the training scripts."""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """'256x160' -> (256, 160) as (width, height); at least 8x8."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 256x160.") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"Size {text} is too small (at least 8x8).")
    return width, height
