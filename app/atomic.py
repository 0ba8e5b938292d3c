"""Atomic file writes: a file appears complete or not at all, never half-written.

Every file the app writes goes through here. The content goes to a temporary file in the target's
folder (same file system), which is renamed over the target only when writing succeeded; on any
error (or a cancel, or a signal) the temporary file is removed and an existing target is left
untouched. Written files get the mode the umask gives new files (0644 under the usual 022), not
mkstemp's private 0600.

    atomic_write(path, write)          write(binary_file) into the temporary file
    atomic_write_bytes(path, data)
    atomic_path(path, suffix)          a context manager yielding the temporary path, for writers
                                       that want a file name (ffmpeg, OpenCV)

A write that fails raises WriteError (a ValueError) with one sentence naming the file and the
reason ("Cannot write 'loop.mp4': the disk is full.").
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile

REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "its folder does not exist",
    errno.ENOTDIR: "a part of its folder path is a file, not a folder",
    errno.EISDIR: "a folder of that name is in the way",
    errno.EEXIST: "a file of that name is in the way",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EFBIG: "the file is too large for the file system",
}


class WriteError(ValueError):
    """A file that could not be written; nothing was left behind (one sentence)."""


def write_error(path, error: OSError) -> WriteError:
    """The one-sentence WriteError for an OSError met while writing path."""
    reason = REASONS.get(error.errno) or (error.strerror or str(error)).rstrip(".").lower()
    return WriteError(f"Cannot write '{path}': {reason}.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o644 under the usual 0o022)."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode a new folder gets under the current umask (0o755 under the usual 0o022)."""
    return 0o777 & ~_umask()


def check_folder(path) -> str:
    """The folder path goes into; WriteError when it is missing, not a folder, or not writable."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.exists(folder):
        probe = folder
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if probe and not os.path.isdir(probe):
            raise WriteError(f"Cannot write '{path}': a part of its folder path is a file, not a folder.")
        raise WriteError(f"Cannot write '{path}': its folder does not exist.")
    if not os.path.isdir(folder):
        raise WriteError(f"Cannot write '{path}': a part of its folder path is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(f"Cannot write '{path}': its folder is not writable.")
    return folder


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary file path beside `path` (the file exists, empty); when the block ends
    without an error it is renamed over `path` with the umask's mode, else removed."""
    path = os.fspath(path)
    folder = check_folder(path)
    if os.path.isdir(path):
        raise WriteError(f"Cannot write '{path}': a folder of that name is in the way.")
    temp_path = None
    try:
        handle, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
        os.close(handle)
        yield temp_path
        os.chmod(temp_path, file_mode())
        os.replace(temp_path, path)
        temp_path = None
    except OSError as error:
        raise write_error(path, error) from error
    finally:
        if temp_path is not None and os.path.lexists(temp_path):
            os.remove(temp_path)


def atomic_write(path, write, suffix: str = "") -> str:
    """Call write(binary_file) on a temporary file beside `path`, then rename it to `path`."""
    path = os.fspath(path)
    with atomic_path(path, suffix) as temp_path:
        with open(temp_path, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
    return path


def atomic_write_bytes(path, data: bytes) -> str:
    """Write bytes atomically."""
    return atomic_write(path, lambda file: file.write(data))


def same_file(first, second) -> bool:
    """True when two paths name the same file (an output must never be one of the inputs)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(os.fspath(first)) == os.path.realpath(os.fspath(second))
