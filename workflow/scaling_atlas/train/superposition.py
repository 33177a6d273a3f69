"""The superposition toy-model trainer (Liu, Liu & Gore 2025): a group of runs of one shape.

On a CPU a group is one run; on a GPU the whole shard trains as one batched program. The model
and its optimiser are :mod:`scaling_atlas.models.superposition_toy`; the study that plans the
grid and reads the results is :mod:`scaling_atlas.studies.superposition`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from scaling_atlas.hashing import stable_hash
from scaling_atlas.models import superposition_toy as toy
from scaling_atlas.runs import Run
from scaling_atlas.train import checkpoint
from scaling_atlas.train.device import run_generator

NORM_BINS = torch.linspace(0.0, 2.0, 41, dtype=torch.float64)  # row-norm histogram, width 0.05
NORM_BIN_CENTRES = (0.5 * (NORM_BINS[1:] + NORM_BINS[:-1])).numpy()
#: what a finished run reports besides its numbers: its id and its curves
NOT_SCALARS = ("run_id", "loss_curve", "norm_hist", "curve_steps")


def alpha_of(run: Run) -> float:
    """α of a run as a number: NaN for profiles without an exponent (stored as null in the id)."""
    return math.nan if run["alpha"] is None else run["alpha"]


def run_seed(run: Run) -> int:
    """Torch seed of a run: from its id, which already hashes seed, salt and every parameter."""
    return int(run.run_id, 16) % (2**63)


def train_group(
    runs: list[Run], device: torch.device, ckpt_dir: Path,
    probabilities: Callable[..., torch.Tensor], log: Callable[[str], None],
    checkpoint_every: int = 0,
) -> list[dict]:
    """Train runs of equal shape together; resume from checkpoints; return per-run results.

    ``checkpoint_every`` is an operational knob (not part of a run's id): every that many steps
    the group's full state, generators included, is saved so a killed job resumes exactly.
    """
    done = {run.run_id: checkpoint.load(ckpt_dir / f"{run.run_id}.result.pt", warn=log) for run in runs}
    if all(result is not None for result in done.values()):
        log(f"{len(runs)} run(s) already finished: {', '.join(done)}")
        return [done[run.run_id] for run in runs]
    first = runs[0].params
    n, m, batch, steps = first["n"], first["m"], first["batch_size"], first["steps"]
    warmup = round(first["warmup_fraction"] * steps)
    p = torch.stack([probabilities(r["dist"], alpha_of(r), r["density"]) for r in runs])
    p = p.to(device=device, dtype=torch.float32)
    gens = [run_generator(run_seed(run), device) for run in runs]
    models = toy.init_models(n, m, gens, device)
    losses = torch.zeros(len(runs), steps, device=device)
    group_path = ckpt_dir / f"group-{stable_hash({'runs': [r.run_id for r in runs]}, 8)}.pt"
    start, elapsed = 0, 0.0
    state = checkpoint.load(group_path, device, warn=log)
    if state is not None:
        models = toy.ToyModels.from_state_dict(state["models"])
        losses, start, elapsed = state["losses"], int(state["step"]), float(state["elapsed"])
        for gen, gen_state in zip(gens, state["generators"]):
            gen.set_state(gen_state.cpu())  # generator states are CPU byte tensors, also for CUDA
        log(f"resumed {len(runs)} run(s) at step {start}/{steps}")
    else:
        log(f"training {len(runs)} run(s) from step 0")
    lr_W, lr_b, gamma = (
        torch.tensor([r[key] for r in runs], device=device, dtype=torch.float32)
        for key in ("lr_W", "lr_b", "gamma")
    )
    log_every = max(1, steps // 10)
    t0 = time.perf_counter() - elapsed
    for step in range(start, steps):
        batches = [toy.sample_sparse_batch(p[r], batch, gens[r]) for r in range(len(runs))]
        loss, grad_W, grad_b = toy.loss_and_grads(models.W, models.b, batches)
        losses[:, step] = loss
        factor = toy.lr_factor(step, steps, warmup, first["final_lr_fraction"])
        toy.optimizer_step(models, grad_W, grad_b, step + 1, lr_W * factor, lr_b * factor, gamma)
        if (step + 1) % log_every == 0:
            recent = losses[:, max(0, step + 1 - log_every): step + 1].mean(dim=1)
            log(f"m={m} runs={len(runs)} step {step + 1}/{steps} "
                f"loss {' '.join(f'{v:.4g}' for v in recent.tolist())} "
                f"({time.perf_counter() - t0:.1f}s)")
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            checkpoint.save({
                "models": models.state_dict(), "losses": losses, "step": step + 1,
                "elapsed": time.perf_counter() - t0,
                "generators": [g.get_state() for g in gens],
            }, group_path)
    seconds = (time.perf_counter() - t0) / len(runs)
    results = []
    for r, run in enumerate(runs):
        result = finish_run(run, models.W[r], models.b[r], p[r], losses[r], gens[r], seconds)
        checkpoint.save(result, ckpt_dir / f"{run.run_id}.result.pt")
        results.append(result)
    checkpoint.remove(group_path)
    return results


def log_spaced_steps(steps: int, points: int) -> np.ndarray:
    """End steps (1-based) of ``points`` log-spaced bins covering 1 … steps (duplicates merged)."""
    return np.unique(np.round(np.geomspace(1, steps, points)).astype(int))


def finish_run(run, W, b, p, losses, generator, seconds) -> dict:
    """Per-run metrics: final losses, representation metrics, loss curve, norm histogram."""
    prm = run.params
    last = losses[-prm["last_steps"]:].double()
    ends = log_spaced_steps(prm["steps"], prm["curve_points"])
    starts = np.concatenate([[0], ends[:-1]])
    curve = torch.stack([losses[s:e].double().mean() for s, e in zip(starts, ends)])
    diverged = not (bool(torch.isfinite(losses).all()) and bool(torch.isfinite(W).all())
                    and bool(torch.isfinite(b).all()))
    metrics = toy.weight_metrics(torch.nan_to_num(W), NORM_BINS)
    represented = round(metrics["phi_half"] * prm["n"])
    unlearned = toy.MEAN_V2 * float(p.double()[represented:].sum()) if represented < prm["n"] else 0.0
    return {
        "run_id": run.run_id,
        "loss_eval": toy.evaluate_loss(W, b, p, prm["eval_samples"], generator),
        "loss_last": float(last.mean()),
        "loss_last_std": float(last.std()) if len(last) > 1 else 0.0,
        "loss_unlearned": unlearned,
        "train_seconds": seconds,
        "diverged": float(diverged),
        **{k: (math.nan if diverged else v) for k, v in metrics.items() if k != "norm_hist"},
        "norm_hist": metrics["norm_hist"].to(torch.float64).cpu(),
        "loss_curve": curve.cpu(),
        "curve_steps": torch.as_tensor(ends),
    }


def results_to_dataset(runs: list[Run], results: list[dict], grid_dims) -> xr.Dataset:
    """Per-run results along a ``run`` dim, with the grid parameters (``grid_dims``) as
    coordinates."""
    by_id = {res["run_id"]: res for res in results}
    ordered = [by_id[run.run_id] for run in runs]
    scalars = [name for name in ordered[0] if name not in NOT_SCALARS]  # every number finish_run reports
    data = {name: ("run", [float(res[name]) for res in ordered]) for name in scalars}
    data["loss_curve"] = (("run", "step"), np.stack([res["loss_curve"].numpy() for res in ordered]))
    data["norm_hist"] = (("run", "norm_bin"), np.stack([res["norm_hist"].numpy() for res in ordered]))
    coords = {
        "run": [run.run_id for run in runs],
        "step": ordered[0]["curve_steps"].numpy(),
        "norm_bin": NORM_BIN_CENTRES,
    }
    for dim in grid_dims:
        coords[dim] = ("run", [alpha_of(run) if dim == "alpha" else run[dim] for run in runs])
    return xr.Dataset(data, coords=coords)
