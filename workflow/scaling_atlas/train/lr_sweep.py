"""The peak learning rate chosen by a sweep (Porian et al.: per-size tuned LRs), per size
(``lr_sweep_scope: size``, rule choose_lr) or per grid point. No PyTorch: the choose_lr job and
the cube read it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: the sweep runs' columns that choose_size_lrs reads
SWEEP_COLUMNS = ("width", "lr", "final_val_loss", "diverged", "tokens")


def sweep_table(results: xr.Dataset) -> pd.DataFrame:
    """The sweep runs' columns that choose_size_lrs reads, from per-run results (one
    table for the choose_lr job and for the cube's check, so both read the same)."""
    return pd.DataFrame({name: results[name].values for name in SWEEP_COLUMNS})


def choose_size_lrs(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per width from the sweep's runs (columns width, lr, final_val_loss,
    diverged): the LR with the lowest final validation loss (a diverged or non-finite run is
    never chosen), its loss, and whether it is the sweep's smallest or largest value.
    Raises ValueError naming a width whose every LR diverged."""
    rows = []
    for width, group in sweep.groupby("width", sort=True):
        group = group.sort_values("lr")
        rates = group["lr"].to_numpy(float)
        loss = group["final_val_loss"].to_numpy(float)
        ok = np.isfinite(loss) & (group["diverged"].to_numpy(float) == 0)
        if not ok.any():
            raise ValueError(f"width {width}: every LR of the sweep "
                             f"({', '.join(f'{r:g}' for r in rates)}) diverged or gave no "
                             "finite loss; lower lr_sweep")
        best = int(np.argmin(np.where(ok, loss, np.inf)))
        rows.append({"width": int(width), "lr": float(rates[best]),
                     "final_val_loss": float(loss[best]),
                     "at_edge": int(best in (0, len(rates) - 1)), "sweep_runs": len(rates)})
    return pd.DataFrame(rows, columns=["width", "lr", "final_val_loss", "at_edge", "sweep_runs"])



def choose_learning_rates(cube: xr.Dataset) -> xr.Dataset:
    """Per grid point, the run of the LR sweep with the lowest final validation loss
    (Porian et al.: per-size tuned LRs); the sweep's losses stay as ``sweep_*`` variables
    over ``lr_sweep``, the choice as ``lr`` and ``lr_at_sweep_edge``."""
    loss = cube["final_val_loss"]
    best = loss.where(np.isfinite(loss)).fillna(np.inf).argmin("lr")
    rates = cube["lr"].values
    tuned = cube.isel(lr=best).reset_coords("lr")
    ran = loss.notnull().any("lr")
    tuned["lr"] = tuned["lr"].where(ran)
    edge = ((best == 0) | (best == len(rates) - 1)).astype(float).where(ran)
    tuned["lr_at_sweep_edge"] = edge
    for name in ("final_val_loss", "diverged"):
        tuned[f"sweep_{name}"] = cube[name].rename(lr="lr_sweep")
    return tuned.assign_coords(lr_sweep=("lr_sweep", rates))


def split_size_sweep(combined: xr.Dataset, plan: dict, rates: list[float],
                     choice_path) -> tuple[xr.Dataset, xr.Dataset]:
    """``lr_sweep_scope: size``: the grid's runs (tuned runs, plus the sweep's best run where
    the sweep point is a grid point) with ``lr`` the peak LR they trained with, and the
    sweep as variables over (width, lr_sweep). Refuses a tuned run trained with another LR
    than its sweep chooses (a stale lr_choice.tsv). ``plan``: width → (sweep point, whether
    the sweep's best run is a grid run), as ``sweep_plan()`` gives it."""
    is_sweep = combined["lr_sweep_run"].values == 1.0
    sweep = combined.isel(run=np.flatnonzero(is_sweep))
    table = sweep_table(sweep)
    choice = choose_size_lrs(table).set_index("width")
    tuned = combined.isel(run=np.flatnonzero(~is_sweep))
    for run, width, lr in zip(tuned["run"].values, tuned["width"].values, tuned["peak_lr"].values):
        if float(lr) != choice.loc[int(width), "lr"]:
            raise ValueError(
                f"run {run} (width {width}) trained with peak LR {lr:g} but its sweep now "
                f"chooses {choice.loc[int(width), 'lr']:g}: {choice_path} was stale "
                "when it trained; delete that run's shard and rerun")
    reused = [i for i, (width, lr) in enumerate(zip(sweep["width"].values, sweep["lr"].values))
              if plan[int(width)][1] and float(lr) == choice.loc[int(width), "lr"]]
    grid_runs = xr.concat([tuned, sweep.isel(run=reused)], dim="run")
    grid_runs["lr"] = grid_runs["peak_lr"]
    widths = sorted(choice.index)
    loss = table.pivot_table(index="width", columns="lr", values="final_val_loss",
                             dropna=False).reindex(index=widths, columns=rates)
    diverged = table.pivot_table(index="width", columns="lr", values="diverged",
                                 dropna=False).reindex(index=widths, columns=rates)
    horizon = table.groupby("width")["tokens"].max().reindex(widths)
    out = xr.Dataset(
        {"sweep_final_val_loss": (("width", "lr_sweep"), loss.to_numpy(float)),
         "sweep_diverged": (("width", "lr_sweep"), diverged.to_numpy(float)),
         "sweep_tokens": ("width", horizon.to_numpy(float)),
         "lr_at_sweep_edge": ("width", choice.loc[widths, "at_edge"].to_numpy(float))},
        coords={"width": widths, "lr_sweep": rates})
    return grid_runs, out
