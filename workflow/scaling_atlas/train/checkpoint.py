"""Resumable checkpoints: atomic saves of plain tensors, loaded with ``weights_only=True``.

Checkpoints live outside Snakemake's declared outputs (Snakemake deletes a job's outputs before
rerunning it), so a killed job resumes where it stopped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def save(state: dict, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict | None:
    """The saved state, or None when there is none (or it is unreadable: it is then retrained)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception:  # a truncated or foreign file: do not trust it, start over
        return None
