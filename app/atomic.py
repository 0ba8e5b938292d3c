"""Atomic file writes: a file appears complete or not at all, never half-written.

The content goes to a temporary file in the target's folder (same file system), which is renamed
over the target only when writing succeeded; on any error the temporary file is removed and an
existing target is left untouched.
"""

from __future__ import annotations

import os
import tempfile


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write, suffix: str = "") -> str:
    """Call write(binary_file) on a temporary file beside `path`, then rename it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600 files
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
    return path


def atomic_write_bytes(path: str, data: bytes) -> str:
    """Write bytes atomically."""
    return atomic_write(path, lambda file: file.write(data))
