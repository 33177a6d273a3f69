"""Choosing where a shard trains, and making CPU runs deterministic."""

from __future__ import annotations

import torch


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` → CUDA when a GPU is visible, else CPU. Asking for ``cuda`` without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA device is visible")
    return torch.device(requested)


def configure_determinism(device: torch.device, threads: int = 1) -> None:
    """Fixed thread count and deterministic kernels on CPU, so a seed gives the same numbers."""
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
        torch.use_deterministic_algorithms(True)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"


def run_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
