"""One GPU per training job on a machine with several (no scheduler to hand them out).

Snakemake bounds how many training jobs run at once (``--resources gpu=K``: rule train_shard
asks for ``gpu: 1`` with ``device: cuda``) but does not say which GPU a job should use, so
every job would train on GPU 0. Each job therefore claims a slot: the first visible GPU whose
lock file no other job holds (``fcntl.flock``, released when the job's process ends, even if it
is killed), and sets ``CUDA_VISIBLE_DEVICES`` to it before CUDA starts. Under SLURM the scheduler
already sets ``CUDA_VISIBLE_DEVICES`` to the job's own GPUs, and nothing is claimed.
No PyTorch here: the slot must be chosen before CUDA is initialised.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

#: where the machine's slot locks live (one folder per user: GPUs are the machine's)
LOCK_DIR = Path(tempfile.gettempdir()) / f"scaling-atlas-gpu-slots-{os.getuid()}"


def visible_gpus(env: dict | None = None, query: Callable[[], list[str]] | None = None) -> list[str]:
    """The GPU ids a job may use: ``CUDA_VISIBLE_DEVICES`` when set, else what ``nvidia-smi``
    lists (none without it)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    return (query or _nvidia_smi)()


def _nvidia_smi() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


@contextmanager
def gpu_slot(gpus: list[str], lock_dir: Path = LOCK_DIR, log: Callable[[str], None] = print,
             poll_seconds: float = 5.0) -> Iterator[str]:
    """Hold one of ``gpus`` for the block: ``CUDA_VISIBLE_DEVICES`` is set to it inside, and
    restored after. Waits (logging once) while every GPU is held by another job."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    waited = False
    while True:
        for gpu in gpus:
            handle = open(lock_dir / f"gpu-{gpu}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                os.environ["CUDA_VISIBLE_DEVICES"] = gpu
                log(f"GPU slot: this job trains on GPU {gpu} (of {', '.join(gpus)})")
                yield gpu
                return
            finally:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
        if not waited:
            log(f"GPU slot: all of {', '.join(gpus)} are held by other jobs; waiting (give "
                "snakemake --resources gpu=K with K at most the number of GPUs)")
            waited = True
        time.sleep(poll_seconds)


@contextmanager
def job_gpu(device: str, log: Callable[[str], None] = print, env: dict | None = None,
            lock_dir: Path = LOCK_DIR) -> Iterator[str | None]:
    """The slot a training job takes: none on CPU (``device: cpu``), under SLURM, or with one
    visible GPU; otherwise one of the visible GPUs (``gpu_slot``)."""
    env = os.environ if env is None else env
    gpus = [] if device == "cpu" or env.get("SLURM_JOB_ID") else visible_gpus(env)
    if len(gpus) < 2:
        yield None
        return
    with gpu_slot(gpus, lock_dir, log) as gpu:
        yield gpu


def gpu_count(value) -> int | None:
    """How many GPUs a ``gpu`` or ``gres`` resource asks for (``2``, ``"gpu:2"``,
    ``"gpu:a100:2"``, ``"gpu"`` = 1); None where it cannot be read before the job (an
    expression of the attempt)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    parts = str(value).strip().split(":")
    if parts[0] != "gpu":
        return int(parts[0]) if parts[0].isdigit() else None
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1


def training_resource_problems(resources: dict) -> list[str]:
    """What is wrong with the resources given to rule train_shard (``--set-resources``, a
    profile's ``set-resources``): a training job is one process on one GPU, so more GPUs sit
    idle, and the SLURM executor turns ``tasks`` into ``--ntasks-per-gpu``, which would run the
    script once per GPU."""
    problems = []
    for key in ("gpu", "gres"):
        count = gpu_count(resources.get(key))
        if count is not None and count > 1:
            problems.append(
                f"set-resources train_shard:{key}={resources[key]}: a training job is one process "
                f"that trains on one GPU; {count} GPUs would leave {count - 1} idle (and with "
                "tasks ≥ 1 SLURM would start the script once per GPU). Ask for one GPU per job "
                "and let Snakemake run more jobs at once")
    return problems
