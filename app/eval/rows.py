"""A benchmark's rows on stdout: one JSON object per line (--json), or one line of text each."""

from __future__ import annotations

import json


def print_rows(rows: list[dict], as_json: bool, text) -> None:
    """Print each row as JSON when as_json, else as the line text(row)."""
    for row in rows:
        print(json.dumps(row) if as_json else text(row))
