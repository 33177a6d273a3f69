"""The matrix-sensing trainer: plain GD on a factorisation, every run of a block at once.

One block = runs of equal (parameterisation, k): stacked (R, n, k) float64 factors advance as
one program, with a checkpoint every ``checkpoint_every`` steps. Per run it records the squared
Frobenius error at log-spaced steps and the first step below each decade 10⁰ … 10⁻³⁰. The model
(loss, gradients, rebalancing) is :mod:`scaling_atlas.models.matrix_sensing`; the study that
plans the grid and reads the results is :mod:`scaling_atlas.studies.matrix_sensing`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from scaling_atlas.hashing import stable_hash
from scaling_atlas.models import matrix_sensing as ms
from scaling_atlas.runs import Run
from scaling_atlas.train import checkpoint
from scaling_atlas.train.device import run_generator

DECADES = np.arange(0, 31)  # error thresholds 10^0 … 10^-30


def log_steps(total: int, points: int) -> np.ndarray:
    """Integer steps 0, 1, … T, roughly log-spaced, always including 0 and T."""
    steps = np.unique(np.round(np.geomspace(1, total, points)).astype(int))
    return np.concatenate([[0], steps])


def problem_seed(seed: int, salt: int) -> int:
    """The seed of one problem (M*, A): shared by every run of that seed, whatever k or α."""
    return int(stable_hash({"problem": seed, "salt": salt}, 8), 16)


def train_batch(runs: list[Run], device: torch.device, ckpt_dir: Path, log, checkpoint_every: int):
    """GD for every run of a shard at once: stacked (R, n, k) factors, float64."""
    first = runs[0]
    n, k, total = first["n"], first["k"], first["steps"]
    asymmetric = first["param"] != "sym"
    steps = log_steps(total, first["log_points"])
    R = len(runs)
    targets, sensing, factors, others = [], [], [], []
    problems: dict[int, tuple] = {}
    for run in runs:
        pseed = problem_seed(run["seed"], run["seed_salt"])
        if pseed not in problems:
            gen = run_generator(pseed, torch.device("cpu"))
            target = ms.ground_truth(n, run["r"], gen)
            a = (ms.sensing_gram(ms.measurements(n, run["measurements"], not asymmetric, gen))
                 if run["operator"] == "gaussian" else None)
            problems[pseed] = (target, a)
        target, a = problems[pseed]
        targets.append(target)
        sensing.append(a)
        gen = run_generator(int(run.run_id[:8], 16), torch.device("cpu"))
        x0, g0 = ms.initial_factors(n, k, run["alpha"], asymmetric, gen)
        factors.append(x0)
        others.append(g0)
    target = torch.stack(targets).to(device)
    A = torch.stack(sensing).to(device) if sensing[0] is not None else None
    X = torch.stack(factors).to(device)
    G = torch.stack(others).to(device) if asymmetric else None
    eta = torch.tensor([run["eta"] for run in runs], dtype=torch.float64, device=device)[:, None, None]
    below = torch.tensor([run["rebalance_below"] for run in runs], dtype=torch.float64, device=device)
    diverge_above = first["diverge_above"]

    curve = torch.full((R, len(steps)), float("nan"), dtype=torch.float64, device=device)
    passage = torch.full((R, len(DECADES)), float("nan"), dtype=torch.float64, device=device)
    diverged = torch.zeros(R, dtype=torch.bool, device=device)
    rebalanced_at = torch.full((R,), float("nan"), dtype=torch.float64, device=device)
    levels = torch.tensor(DECADES, dtype=torch.float64, device=device)
    start = 0
    ckpt = ckpt_dir / "state.pt"
    state = checkpoint.load(ckpt, device, warn=log)
    if state is not None and state.get("run_ids") == [run.run_id for run in runs]:
        X, G, curve, passage = state["X"], state.get("G"), state["curve"], state["passage"]
        diverged, rebalanced_at, start = state["diverged"], state["rebalanced_at"], state["step"]
        log(f"resumed at step {start}")
    log_index = {int(s): i for i, s in enumerate(steps)}
    # decided once: only rebalanced blocks pay the per-step trigger check (a host sync on GPU)
    rebalancing = G is not None and any(run["rebalance_below"] > 0 for run in runs)
    t0 = time.time()
    for t in range(start, total + 1):
        error = ms.product(X, G) - target
        err = ms.squared_error(error)
        if t in log_index:
            curve[:, log_index[t]] = err
        # first passage below each decade (no host sync: masked writes only)
        depth = torch.floor(-torch.log10(err.clamp_min(1e-300)))
        newly = (levels[None, :] <= depth[:, None]) & torch.isnan(passage) & ~diverged[:, None]
        passage = torch.where(newly, float(t), passage)
        diverged = diverged | ~torch.isfinite(err) | (err > diverge_above)
        if t == total:
            break
        if rebalancing:
            trigger = (err < below) & torch.isnan(rebalanced_at) & ~diverged
            if bool(trigger.any()):
                F_new, G_new = ms.rebalance(X, G)
                pick = trigger[:, None, None]
                X, G = torch.where(pick, F_new, X), torch.where(pick, G_new, G)
                rebalanced_at = torch.where(trigger, float(t), rebalanced_at)
                error = ms.product(X, G) - target
        grad_x, grad_g = ms.gradients(X, G, error, A)
        live = (~diverged).to(X.dtype)[:, None, None]
        X = X - live * eta * torch.nan_to_num(grad_x)
        if G is not None:
            G = G - live * eta * torch.nan_to_num(grad_g)
        if checkpoint_every and t and t % checkpoint_every == 0:
            checkpoint.save({"run_ids": [run.run_id for run in runs], "X": X, "G": G, "curve": curve,
                             "passage": passage, "diverged": diverged, "rebalanced_at": rebalanced_at,
                             "step": t + 1}, ckpt)
            done = int((torch.isfinite(passage[:, -1]) | diverged).sum())
            log(f"step {t}/{total}: {done}/{R} runs at 1e-30 or diverged ({time.time() - t0:.0f} s)")
        if t % 500 == 0 and bool((torch.isfinite(passage[:, -1]) | diverged).all()):
            log(f"every run reached 1e-30 or diverged at step {t}; stopping early")
            break
    log(f"{R} runs, {total} steps in {time.time() - t0:.1f} s")
    data = {
        "param": ("run", [run["param"] for run in runs]), "k": ("run", [run["k"] for run in runs]),
        "alpha": ("run", [run["alpha"] for run in runs]), "eta": ("run", [run["eta"] for run in runs]),
        "seed": ("run", [run["seed"] for run in runs]),
        "diverged": ("run", diverged.cpu().numpy().astype(float)),
        "rebalance_step": ("run", rebalanced_at.cpu().numpy()),
        "err_fro2": (("run", "step"), curve.cpu().numpy()),
        "first_passage": (("run", "decade"), passage.cpu().numpy()),
    }
    return xr.Dataset(data, coords={"run": [run.run_id for run in runs], "step": steps,
                                    "decade": DECADES})

