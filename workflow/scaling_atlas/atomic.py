"""Atomic writes: every output appears whole or not at all.

A job killed mid-write (SIGKILL, node failure, out of memory) must never leave a truncated file
that a rerun would take for a finished one; so every writer writes to a temporary file beside
the target and renames it onto the target only when the write succeeded (``os.replace`` is
atomic on POSIX file systems).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` as the process umask lets a new file have it (what ``open`` would give)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename a finished temporary file onto ``path`` with the permissions a plain write would
    have given it: ``mkstemp`` creates 0600 files, which colleagues on a shared cluster (or a web
    server serving the report) could not read."""
    os.chmod(tmp, umask_mode())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that infer the format from it
    work), renamed onto ``path`` when the block succeeds and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(handle)
    try:
        yield Path(tmp)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)

