"""Choosing where a shard trains, making CPU runs deterministic, and accounting for the job.

Inside a SLURM GPU allocation the scheduler sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it
granted; PyTorch numbers the visible ones from 0, so ``cuda`` (device 0) is the allocated GPU.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` → CUDA when a GPU is visible, else CPU. Asking for ``cuda`` without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        raise RuntimeError(f"device: cuda was requested but no CUDA device is visible{hint}; on "
                           "SLURM, request a GPU for the job (profiles/slurm sets gpu: 1)")
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


def allocation() -> dict[str, str]:
    """What the scheduler granted this job (empty strings outside SLURM)."""
    return {key.lower(): os.environ.get(key, "") for key in
            ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_PARTITION", "CUDA_VISIBLE_DEVICES")}


@contextmanager
def accounted(device: torch.device, log: Callable[[str], None]) -> Iterator[dict]:
    """Wall time, GPU-hours and peak GPU memory of the block, logged and returned (filled on exit).

    Snakemake's ``benchmark:`` records CPU time and RSS but nothing about GPUs."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    usage: dict = {}
    start = time.time()
    try:
        yield usage
    finally:
        wall = time.time() - start
        usage.update(wall_seconds=round(wall, 3), gpu_hours=wall / 3600 if cuda else 0.0,
                     cpu_core_hours=0.0 if cuda else wall / 3600 * torch.get_num_threads(),
                     peak_gpu_memory_bytes=int(torch.cuda.max_memory_allocated(device)) if cuda else 0,
                     **allocation())
        log(f"usage: {wall:.1f} s wall, {usage['gpu_hours']:.4f} GPU-hours, peak GPU memory "
            f"{usage['peak_gpu_memory_bytes'] / 2**30:.2f} GiB, "
            f"SLURM job {usage['slurm_job_id'] or '-'}, CUDA_VISIBLE_DEVICES "
            f"{usage['cuda_visible_devices'] or '-'}")


def run_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
