"""Argument types shared by the command line and the training scripts.

Each type checks its range while parsing, so a value out of range is argparse's one-line usage
error (exit 2) and never reaches the library:

    parse_size("256x160") -> (256, 160)            at least 8x8, at most MAX_SIDE a side
    whole(low, high)("25") -> 25                   an int in [low, high]
    number(low, high)("1.5") -> 1.5                a finite float in [low, high]
    motion_path("out.npz")                         a path ending in .npz
"""

from __future__ import annotations

import argparse

MAX_SIDE = 8192
MAX_SEED = 2**63 - 1


def parse_size(text: str, low: int = 8, high: int = MAX_SIDE) -> tuple[int, int]:
    """'256x160' -> (256, 160) as (width, height); each side in [low, high]."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 256x160.") from None
    if width < low or height < low:
        raise argparse.ArgumentTypeError(f"Size {text} is too small (at least {low}x{low}).")
    if width > high or height > high:
        raise argparse.ArgumentTypeError(f"Size {text} is too large (at most {high} pixels a side).")
    return width, height


def size_between(low: int, high: int = MAX_SIDE):
    """parse_size with its own limits."""
    def parse(text: str) -> tuple[int, int]:
        return parse_size(text, low, high)

    parse.__name__ = "size"
    return parse


def _ranged(convert, low, high, noun: str, show):
    """An argparse type: convert(text) within [low, high] (NaN and infinities are never within)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {noun}.") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range (from {show(low)} to {show(high)}).")
        return value

    parse.__name__ = noun
    return parse


def whole(low: int, high: int):
    """An argparse type: a whole number from low to high."""
    return _ranged(int, low, high, "whole number", lambda value: f"{value:,}")


def number(low: float, high: float):
    """An argparse type: a finite number from low to high."""
    return _ranged(float, low, high, "number", lambda value: f"{value:g}")


def motion_path(text: str) -> str:
    """An output motion file: it must end in .npz (never a photo's or a video's name)."""
    if not text.lower().endswith(".npz"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a motion file name; it must end in .npz.")
    return text
