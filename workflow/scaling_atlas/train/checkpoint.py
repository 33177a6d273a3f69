"""Resumable checkpoints: atomic saves of plain tensors, checksummed, loaded with
``weights_only=True``.

Checkpoints live outside Snakemake's declared outputs (Snakemake deletes a job's outputs before
rerunning it), so a killed job resumes where it stopped. Each save writes ``<name>.pt`` and a
``<name>.pt.sha256`` beside it, and keeps the previous good checkpoint as ``<name>.prev.pt``. A
checkpoint whose bytes do not match its checksum (a disk fault, a half-copied file, an edit) is
never trusted: loading falls back to the previous good one, or to none, and says so through
``warn``. A shard's folder is deleted once its result file is written (``clear_folder``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from scaling_atlas.atomic import atomic_path, write_text
from scaling_atlas.datasets import sha256_of


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


def save(state: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    if path.exists() and _checksum_path(path).exists():  # keep the last good one
        os.replace(path, previous_path(path))
        os.replace(_checksum_path(path), _checksum_path(previous_path(path)))
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
        digest = sha256_of(tmp)
    write_text(_checksum_path(path), digest + "\n")


def _verified(path: Path, device, warn: Callable[[str], None]) -> dict | None:
    if not path.exists():
        return None
    checksum = _checksum_path(path)
    expected = checksum.read_text().strip() if checksum.exists() else None
    if expected != sha256_of(path):
        warn(f"checkpoint {path} does not match its sha256 ({'missing' if expected is None else 'differs'}): "
             "not used")
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # verified bytes that still do not load: a foreign file
        warn(f"checkpoint {path} could not be loaded ({type(error).__name__}): not used")
        return None


def load(path: str | os.PathLike, device: torch.device | str = "cpu",
         warn: Callable[[str], None] = print) -> dict | None:
    """The saved state, or the previous good one when the last is corrupt, or None (a warning
    says why when a checkpoint existed but could not be trusted). What the caller then does
    (resume, or start again) is the caller's to log: only it knows."""
    path = Path(path)
    state = _verified(path, device, warn)
    # the last save may also have died after keeping the previous one and before writing anew
    if state is None and (path.exists() or previous_path(path).exists()):
        state = _verified(previous_path(path), device, warn)
        warn(f"using the previous good checkpoint {previous_path(path)}" if state is not None
             else f"no usable checkpoint for {path}")
    return state


def remove(path: str | os.PathLike) -> None:
    """Delete a checkpoint with its checksum and its kept previous version (and theirs)."""
    path = Path(path)
    for name in (path, previous_path(path)):
        name.unlink(missing_ok=True)
        _checksum_path(name).unlink(missing_ok=True)


def clear_folder(folder: str | os.PathLike) -> int:
    """Delete a finished shard's checkpoint folder; returns the bytes freed."""
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return 0
    freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder)
    return freed
