"""Backtest: which fitting procedure extrapolates best across published scaling data?

Every dataset of the registry (``scaling_atlas.datasets.registry``) that has N, D and a loss is
split into families (its ``group``: a data mix, a configuration, an IsoFLOP experiment); each
family is fitted on its smaller part by every procedure (``scaling_atlas.laws.backtest``) and
scored on the held-out larger part: leave-largest-out by N, by C, and a compute cut. Scores are
the held-out loss error, the error in ln N* at held-out IsoFLOP budgets, the prediction
intervals' coverage (the reference procedure), and the compute-optimal D/N at 5.88e23 FLOP of
every procedure fitted on all points. Failures and non-identified fits are counted, never
dropped. Nothing is trained.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured, Premise
from scaling_atlas.cubes import describe_variables
from scaling_atlas.laws.parallel import worker_pool
from scaling_atlas.studies.base import NoTrainingStudy

#: what every score variable of the fits is, and its unit
SCORE_META = {
    "median_relative_error": ("median |predicted − observed| / observed loss on the held-out points", "1"),
    "mean_relative_error": ("mean |predicted − observed| / observed loss on the held-out points", "1"),
    "mean_absolute_error": ("mean |predicted − observed| loss on the held-out points",
                            "the dataset's loss units"),
    "rmse_log": ("RMSE of ln predicted − ln observed loss on the held-out points", "1"),
    "mean_log_residual": ("mean ln predicted − ln observed loss (> 0: over-predicts)", "1"),
    "nstar_log_error": ("mean |ln N*_predicted − ln N*_observed| over held-out IsoFLOP budgets", "1"),
    "nstar_log_bias": ("mean ln N*_predicted − ln N*_observed over held-out IsoFLOP budgets", "1"),
    "nstar_budgets": ("held-out IsoFLOP budgets with an interior observed N*", "1"),
    "D_over_N": ("compute-optimal tokens per parameter at 5.88e23 FLOP", "token/parameter"),
    "a": ("exponent a of N*(C) ∝ C^a", "1"),
    "n_train": ("points the procedure was fitted on", "1"),
    "n_test": ("held-out points", "1"),
    "identified": ("1 if the fit is identified (engine's identifiability check)", "1"),
    "converged": ("1 if the optimiser converged", "1"),
    "status": ("ok, failed, not identified, not applicable, or split not run", "1"),
    "reason": ("why the status is not ok", "1"),
    "at_bound": ("fitted parameters at a bound", "1"),
}
COVERAGE_LEVELS = (0.5, 0.8, 0.95)
#: Porian et al.'s tuned RefinedWeb configuration (their headline exponent)
PORIAN_TUNED = ("rw", "tuned", "short", "const", "standard", "val")
#: the cell behind each claim with an interval: claim id → (family, procedure, quantity)
CLAIM_CELLS = {
    "epoch_reference_allocation": ("epoch_chinchilla", "chinchilla", "D_over_N"),
    "porian_tuned_rw_exponent": ("porian_isoflop/" + "/".join(PORIAN_TUNED), "approach2_akima", "a"),
    "llama3_token_exponent": ("llama3_isoflops", "approach2_parabola", "a"),
}
#: what every variable of the claims' intervals is, and its unit
INTERVAL_META = {
    "family": ("dataset/group fitted (every point)", "1"),
    "procedure": ("fitting procedure", "1"),
    "quantity": ("D_over_N (compute-optimal D/N at 5.88e23 FLOP) or a (N* ∝ C^a)", "1"),
    "D_over_N": ("compute-optimal D/N at 5.88e23 FLOP, fitted on every point", "token/parameter"),
    "D_over_N_low": ("lower end of D/N's 95 % percentile bootstrap interval", "token/parameter"),
    "D_over_N_high": ("upper end of D/N's 95 % percentile bootstrap interval", "token/parameter"),
    "a": ("exponent a of N* ∝ C^a, fitted on every point", "1"),
    "a_low": ("lower end of a's 95 % percentile bootstrap interval", "1"),
    "a_high": ("upper end of a's 95 % percentile bootstrap interval", "1"),
    "resamples": ("bootstrap resamples", "1"),
    "status": ("ok, failed, not identified, not applicable, or not in this run", "1"),
    "reason": ("why the status is not ok", "1"),
    "method": ("what was resampled", "1"),
    "budgets": ("IsoFLOP budgets with an interior optimum (Approach 2)", "1"),
    "at_bound": ("fitted parameters at a bound (parametric fits)", "1"),
}


def _backtest_task(task: dict) -> dict:
    """One family: every (split, procedure), and the reference procedure's coverage (a worker)."""
    from scaling_atlas.laws import FitWarning, LawFit, interval_coverage
    from scaling_atlas.laws.backtest import backtest_family, split_masks, split_problem

    points = task["points"]
    rows = backtest_family(points, task["isoflop"], task["procedures"], task["splits"])
    coverage = []
    if task["coverage_resamples"]:
        for split, train in split_masks(points).items():
            if split == "all" or split not in task["splits"] or split_problem(points, train, split):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                try:
                    table = interval_coverage(LawFit("chinchilla"), points, points["loss"], train,
                                              COVERAGE_LEVELS, task["coverage_resamples"],
                                              task["seed"], n_jobs=1)
                except ValueError:
                    continue
            coverage.extend({"split": split, **r} for r in table.to_dict("records"))
    return {"family": task["family"], "rows": rows, "coverage": coverage}


#: every variable of the fit groups (``group/name``)
FIT_VARIABLES = {
    **{f"scores/{k}": v for k, v in {**SCORE_META, **{
        "family": ("dataset/group fitted as one family", "1"),
        "split": ("held-out protocol (see the attribute splits)", "1"),
        "procedure": ("fitting procedure (see the attribute procedures)", "1")}}.items()},
    **{f"leaderboard/{k}": v for k, v in {
        "rank": ("place on the leaderboard (1 = lowest mean rank)", "1"),
        "procedure": ("fitting procedure", "1"),
        "mean_rank": ("mean rank of the held-out median relative error over (family, split) "
                      "cells (1 = best in a cell)", "1"),
        "cells": ("(family, split) cells the procedure was scored in", "1"),
        "median_error": ("median over cells of the held-out median relative error", "1"),
        "median_nstar_log_error": ("median over cells of the ln N* error", "1"),
        "mean_rank_nstar": ("mean rank of the ln N* error over IsoFLOP (family, split) cells",
                            "1"),
        "cells_nstar": ("IsoFLOP cells scored on ln N*", "1"),
        "wins_nstar": ("IsoFLOP cells where the procedure had the lowest ln N* error", "1"),
        "wins": ("cells where the procedure had the lowest error", "1"),
        "failed": ("cells where the fit failed", "1"),
        "not_identified": ("cells where the fit was not identified", "1")}.items()},
    **{f"families/{k}": v for k, v in {
        "D_over_N_spread": ("max/min compute-optimal D/N at 5.88e23 FLOP over the "
                            "procedures fitted on all points (identified fits)", "1"),
        "D_over_N_low": ("lowest D/N at 5.88e23 FLOP over the procedures", "token/parameter"),
        "D_over_N_high": ("highest D/N at 5.88e23 FLOP over the procedures", "token/parameter"),
        "n_points": ("points fitted (after QC)", "1"),
        "isoflop": ("1 if the family is an IsoFLOP grid", "1"),
        "n_sizes": ("distinct model sizes", "1"),
        "family": ("dataset/group fitted as one family", "1")}.items()},
    **{f"coverage/{k}": v for k, v in {
        "coverage": ("fraction of held-out points inside the prediction interval", "1"),
        "parameter_only_coverage": ("the same for the parameter-bootstrap part alone", "1"),
        "n_test": ("held-out points", "1"),
        "median_relative_error": ("median held-out relative error", "1"),
        "family": ("dataset/group fitted as one family", "1"),
        "split": ("held-out protocol", "1"),
        "nominal": ("nominal coverage of the interval", "1")}.items()},
    **{f"intervals/{k}": v for k, v in {**INTERVAL_META,
                                        "claim": ("claim the cell is measured for", "1")}.items()},
}


class BacktestStudy(NoTrainingStudy):
    kind = "backtest"
    title = "Backtest of fitting procedures across published scaling data"
    VARIABLES = FIT_VARIABLES
    fit_threads = 2
    def __init__(self, name: str, section: dict, config: dict):
        super().__init__(name, section, config)
        if not section.get("coverage_resamples", 1):
            self.figures = {k: v for k, v in self.figures.items() if k != "coverage"}

    # ---- config ----------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        from scaling_atlas.datasets.registry import REGISTRY
        from scaling_atlas.laws.backtest import PROCEDURES, SPLITS

        cfg, problems = self.settings, []
        for name in cfg["datasets"]:
            if name not in REGISTRY:
                problems.append(f"datasets: unknown dataset {name!r} (known: {', '.join(REGISTRY)})")
            elif not REGISTRY[name].usable:
                problems.append(f"datasets: {name} has no " + ", ".join(
                    f"{c} ({why})" for c, why in REGISTRY[name].missing.items())
                    + "; an L(N, D) law cannot be fitted to it")
        for family in cfg["only_groups"]:  # a preset may select fewer datasets: typos are errors
            name = family.split("/", 1)[0]
            if "/" not in family or name not in REGISTRY:
                problems.append(f"only_groups: {family!r} is not DATASET/GROUP with a registered "
                                f"dataset (known: {', '.join(REGISTRY)})")
        for p in cfg["procedures"]:
            if p not in PROCEDURES:
                problems.append(f"procedures: unknown procedure {p!r} (known: {', '.join(PROCEDURES)})")
        for s in cfg["splits"]:
            if s not in SPLITS:
                problems.append(f"splits: unknown split {s!r} (known: {', '.join(SPLITS)})")
        mirror = cfg["mirror_dir"]
        if cfg["source"] == "mirror" and (not mirror or not Path(mirror).is_dir()):
            problems.append(f"mirror_dir: {mirror} does not exist (from {Path.cwd()}); point it at "
                            "a copy of shared/data/published (rule: mirror needed)")
        return problems

    # ---- data ------------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return list(self.settings["datasets"])

    def prepare_dataset(self, name: str, cache_dir: Path, log: Callable[[str], None] = print):
        from scaling_atlas.datasets.registry import QC_FLAGS, SCHEMA, get, load

        cfg = self.settings
        spec = get(name)
        table = load(name, cfg["mirror_dir"], cfg["source"], cache_dir, log, cfg["url_base"])
        columns = [c for c in SCHEMA if c in table] + ["source_reason"] + list(QC_FLAGS)
        ds = xr.Dataset({c: ("point", table[c].to_numpy()) for c in columns})
        ds = ds.assign_coords(point=np.arange(len(table)))
        ds["point"].attrs.update(long_name="row of the dataset", units="1")
        meta = {c: SCHEMA[c] for c in SCHEMA} | {f: (text, "1") for f, text in QC_FLAGS.items()}
        meta["loss"] = ("loss as the source reports it", spec.loss_units)
        meta["source_reason"] = ("why the source marks the row (empty: not marked)", "1")
        describe_variables(ds, meta)
        for flag in QC_FLAGS:
            ds[flag] = ds[flag].astype("int8")
        provenance = spec.provenance()
        ds.attrs.update(
            dataset=name, title=spec.title, paper=spec.paper, license=spec.license,
            n_counting=spec.n_counting, d_counting=spec.d_counting, c_counting=spec.c_counting,
            isoflop=int(spec.isoflop), notes=spec.notes,
            files="; ".join(f"{r['file']} ← {r['repository']}@{r['commit']}:{r['path']} "
                            f"(sha256 {r['upstream_sha256']})" for r in provenance))
        log(f"{name}: {len(table)} rows, {table['group'].nunique()} group(s), "
            f"{int(table[list(QC_FLAGS)].any(axis=1).sum())} flagged")
        return ds

    def assemble(self, shard_results, datasets=None) -> xr.DataTree:
        if set(datasets or {}) != set(self.datasets()):
            raise ValueError(f"expected datasets {self.datasets()}, got {sorted(datasets or {})}")
        return xr.DataTree.from_dict({f"/{name}": ds for name, ds in datasets.items()})

    # ---- fits ------------------------------------------------------------------------------------
    def families(self, cube) -> dict[str, tuple[pd.DataFrame, bool]]:
        """Family label → (points to fit, IsoFLOP?): one per (dataset, group), after dropping
        invalid and duplicate rows (and the source's outliers, as configured), keeping the best
        learning rate per (N, D)."""
        from scaling_atlas.datasets.registry import best_per_point

        out = {}
        for name in self.datasets():
            ds = cube[name].to_dataset()
            table = ds.to_dataframe()
            drop = (table["qc_invalid"] == 1) | (table["qc_duplicate"] == 1)
            if self.settings["drop_source_outliers"]:
                drop |= table["qc_source_outlier"] == 1
            table = best_per_point(table[~drop])
            wanted = [f.split("/", 1)[1] for f in self.settings["only_groups"]
                      if f.split("/", 1)[0] == name]
            unknown = sorted(set(wanted) - set(table["group"]))
            if unknown:
                raise ValueError(f"only_groups: no group {', '.join(map(repr, unknown))} in "
                                 f"{name} (it has {', '.join(sorted(set(table['group'])))})")
            for group, points in table.groupby("group", sort=True):
                if wanted and group not in wanted:
                    continue
                label = name if table["group"].nunique() == 1 else f"{name}/{group}"
                out[label] = (points[["N", "D", "C", "loss"]].reset_index(drop=True),
                              bool(int(ds.attrs["isoflop"])))
        return out

    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.DataTree:
        from scaling_atlas.laws.backtest import PROCEDURES, leaderboard

        cfg = self.settings
        families = self.families(cube)
        tasks = [{"family": f, "points": p, "isoflop": iso, "procedures": cfg["procedures"],
                  "splits": cfg["splits"], "coverage_resamples": cfg["coverage_resamples"],
                  "seed": cfg["seed"]} for f, (p, iso) in families.items()]
        workers = cfg["n_jobs"] or n_jobs or self.fit_threads
        results = []
        if workers > 1 and len(tasks) > 1:
            with worker_pool(workers) as pool:
                for i, result in enumerate(pool.map(_backtest_task, tasks), 1):
                    print(f"backtest: {i}/{len(tasks)} families done ({result['family']})", flush=True)
                    results.append(result)
        else:
            for i, task in enumerate(tasks, 1):
                results.append(_backtest_task(task))
                print(f"backtest: {i}/{len(tasks)} families done ({task['family']})", flush=True)
        rows = [{"family": r["family"], **row} for r in results for row in r["rows"]]
        scores = pd.DataFrame(rows)
        for column in SCORE_META:
            if column not in scores:
                scores[column] = np.nan
        text = ["status", "reason", "at_bound"]
        scores[text] = scores[text].fillna("").astype(str)
        for flag in ("identified", "converged"):
            scores[flag] = scores[flag].map({True: 1, False: 0}).astype(float)
        cube_scores = xr.Dataset.from_dataframe(
            scores.set_index(["family", "split", "procedure"])[list(SCORE_META)])
        for name in text:
            cube_scores[name] = cube_scores[name].fillna("").astype(str)
        from scaling_atlas.laws.backtest import REFERENCE_C, SPLITS

        cube_scores.attrs.update(
            procedures="; ".join(f"{p}: {PROCEDURES[p].description}" for p in cfg["procedures"]),
            splits="; ".join(f"{s}: {SPLITS[s]}" for s in cfg["splits"]),
            reference_compute=REFERENCE_C,
            observed_nstar="each held-out budget's raw-loss parabola vertex (Hoffmann et al.'s "
                           "convention; it favours the parabola procedures a little)")
        board = leaderboard(scores)
        board_ds = xr.Dataset.from_dataframe(board.rename_axis("rank").set_index(
            pd.Index(np.arange(1, len(board) + 1), name="rank")))
        board_ds["procedure"] = board_ds["procedure"].astype(str)
        spread = {}
        for family in families:
            ok = scores[(scores["family"] == family) & (scores["split"] == "all")
                        & (scores["status"] == "ok") & (scores["D_over_N"] > 0)]["D_over_N"]
            spread[family] = (float(ok.max() / ok.min()) if len(ok) >= 2 else math.nan,
                              float(ok.min()) if len(ok) else math.nan,
                              float(ok.max()) if len(ok) else math.nan)
        fam = xr.Dataset({
            "n_points": ("family", [len(families[f][0]) for f in families]),
            "isoflop": ("family", [int(families[f][1]) for f in families]),
            "n_sizes": ("family", [families[f][0]["N"].nunique() for f in families]),
            "D_over_N_spread": ("family", [spread[f][0] for f in families]),
            "D_over_N_low": ("family", [spread[f][1] for f in families]),
            "D_over_N_high": ("family", [spread[f][2] for f in families]),
        }, coords={"family": list(families)})
        groups = {"scores": cube_scores, "leaderboard": board_ds, "families": fam,
                  "intervals": self._claim_intervals(families)}
        coverage = [{"family": r["family"], **row} for r in results for row in r["coverage"]]
        if coverage:
            cov = xr.Dataset.from_dataframe(pd.DataFrame(coverage).set_index(
                ["family", "split", "nominal"])[["coverage", "parameter_only_coverage", "n_test",
                                                 "median_relative_error"]])
            cov.attrs["resamples"] = cfg["coverage_resamples"]
            groups["coverage"] = cov
        return self.describe(xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()}))

    def _claim_intervals(self, families) -> xr.Dataset:
        """The claims' cells refitted on every point with a bootstrap interval
        (``interval_resamples``); a cell whose family or procedure is not in the run says so."""
        from scaling_atlas.laws.backtest import procedure_interval

        cfg, rows = self.settings, []
        for claim, (family, procedure, quantity) in CLAIM_CELLS.items():
            row = {"claim": claim, "family": family, "procedure": procedure, "quantity": quantity}
            if family in families and procedure in cfg["procedures"]:
                found = procedure_interval(procedure, families[family][0], quantity,
                                           cfg["interval_resamples"], seed=cfg["seed"])
            else:
                found = {"value": math.nan, "low": math.nan, "high": math.nan, "resamples": 0,
                         "status": "not in this run", "method": "", "budgets": 0, "at_bound": "",
                         "reason": f"{family} or {procedure} is not in this run's config"}
            row.update({k: v for k, v in found.items() if k not in ("value", "low", "high")})
            row.update({quantity: found["value"], f"{quantity}_low": found["low"],
                        f"{quantity}_high": found["high"]})
            rows.append(row)
        table = pd.DataFrame(rows).set_index("claim").reindex(columns=list(INTERVAL_META))
        ds = xr.Dataset.from_dataframe(table)
        for name in ("family", "procedure", "quantity", "status", "reason", "method", "at_bound"):
            ds[name] = ds[name].fillna("").astype(str)
        ds.attrs["ci_level"] = 0.95
        return ds

    # ---- figures ---------------------------------------------------------------------------------
    def _heatmap(self, fits, variable, splits, procedures, families, label):
        """One panel per split: families (rows) × procedures (columns), log colour scale."""
        import matplotlib
        from matplotlib.colors import LogNorm
        from matplotlib.ticker import NullFormatter

        from scaling_atlas.figures import new_figure

        scores = fits["scores"].to_dataset()
        fig, axes = new_figure(ncols=len(splits), width=0.9 + 0.42 * len(procedures),
                               height=1.6 + 0.3 * len(families))
        values = scores[variable].sel(family=families, procedure=procedures)
        finite = values.values[np.isfinite(values.values) & (values.values > 0)]
        norm = LogNorm(vmin=max(finite.min(), 1e-4), vmax=finite.max()) if finite.size else None
        cmap = matplotlib.colormaps["viridis"].copy()
        cmap.set_bad("0.88")
        image = None
        for ax, split in zip(axes[0], splits):
            grid = values.sel(split=split).transpose("family", "procedure").values
            image = ax.imshow(np.ma.masked_invalid(np.where(grid > 0, grid, np.nan)),
                              aspect="auto", cmap=cmap, norm=norm)
            ax.set_xticks(range(len(procedures)), procedures, rotation=55, ha="right", fontsize=6.5)
            ax.set_yticks(range(len(families)),
                          families if ax is axes[0][0] else [""] * len(families), fontsize=6.5)
            ax.set_title(split, fontsize=8)
            ax.grid(False)
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    if np.isfinite(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=5,
                                color="white")
        if image is not None:
            bar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
            bar.set_label(label, fontsize=7)
            bar.ax.yaxis.set_minor_formatter(NullFormatter())
            bar.ax.tick_params(which="both", labelsize=6)
        return fig

    def _figure_leaderboard(self, cube, fits):
        from scaling_atlas.figures import new_figure

        board = fits["leaderboard"].to_dataset().to_dataframe().reset_index()
        scores = fits["scores"].to_dataset()
        n_families = scores.sizes["family"]
        columns = [("rank", "rank", "{:d}"), ("procedure", "procedure", "{}"),
                   ("mean_rank", "mean\nrank", "{:.2f}"),
                   ("median_error", "median\nrel. error", "{:.4f}"),
                   ("wins", "cells\nwon", "{:d}"), ("cells", "cells", "{:d}"),
                   ("mean_rank_nstar", "mean rank\nN*", "{:.2f}"),
                   ("median_nstar_log_error", "median\n|Δ ln N*|", "{:.3f}"),
                   ("wins_nstar", "won\nN*", "{:d}"), ("cells_nstar", "cells\nN*", "{:d}"),
                   ("failed", "failed", "{:d}"), ("not_identified", "not\nidentified", "{:d}")]
        columns = [c for c in columns if c[0] in board]

        def text(value, fmt):
            if isinstance(value, float) and not np.isfinite(value):
                return "—"
            return fmt.format(int(value) if fmt == "{:d}" else value)

        cells = [[text(row[c], fmt) for c, _, fmt in columns] for _, row in board.iterrows()]
        fig, axes = new_figure(width=9.0, height=1.1 + 0.24 * max(len(cells), 1))
        ax = axes[0][0]
        ax.axis("off")
        if cells:
            widths = [0.05 if c == "rank" else 0.2 if c == "procedure" else 0.075
                      for c, _, _ in columns]
            table = ax.table(cellText=cells, colLabels=[label for _, label, _ in columns],
                             colWidths=widths, loc="center", cellLoc="center")
            table.auto_set_font_size(False)
            table.set_fontsize(6.5)
            unit = min(0.09, 0.9 / (len(cells) + 2))
            for (r, _), cell in table.get_celld().items():
                cell.set_height(2 * unit if r == 0 else unit)
        ax.set_title(f"{n_families} families × splits {', '.join(s for s in scores['split'].values.astype(str) if s != 'all')}",
                     fontsize=8)
        return fig

    def _figure_error_heatmap(self, cube, fits):
        from scaling_atlas.laws.backtest import PROCEDURES

        scores = fits["scores"].to_dataset()
        procedures = [p for p in scores["procedure"].values.astype(str)
                      if PROCEDURES[p].kind == "parametric"]
        splits = [s for s in scores["split"].values.astype(str) if s != "all"]
        return self._heatmap(fits, "median_relative_error", splits, procedures,
                             list(scores["family"].values.astype(str)),
                             "held-out median relative error of the loss")

    def _figure_nstar_heatmap(self, cube, fits):
        from scaling_atlas.laws.backtest import PROCEDURES

        scores = fits["scores"].to_dataset()
        fam = fits["families"].to_dataset()
        families = [str(f) for f in fam["family"].values if int(fam["isoflop"].sel(family=f))]
        from scaling_atlas.laws import get_form

        # the procedures with an N*(C): Approach 2 and the forms with an allocation
        procedures = [p for p in scores["procedure"].values.astype(str)
                      if PROCEDURES[p].kind == "approach2"
                      or get_form(PROCEDURES[p].form).has_allocation]
        splits = [s for s in ("largest_C", "compute_cut") if s in scores["split"].values]
        if not families:
            from scaling_atlas.figures import new_figure

            fig, axes = new_figure()
            axes[0][0].text(0.5, 0.5, "no IsoFLOP family in this run", ha="center")
            return fig
        return self._heatmap(fits, "nstar_log_error", splits, procedures, families,
                             "mean |ln N* predicted − ln N* observed|")

    def _figure_allocation_spread(self, cube, fits):
        from scaling_atlas.figures import new_figure

        scores = fits["scores"].to_dataset()
        if "all" not in scores["split"].values:
            fig, axes = new_figure()
            axes[0][0].text(0.5, 0.5, "the split 'all' was not run", ha="center")
            return fig
        ratio = scores["D_over_N"].sel(split="all")
        families = list(scores["family"].values.astype(str))
        procedures = [p for p in scores["procedure"].values.astype(str)
                      if np.isfinite(ratio.sel(procedure=p).values).any()]
        fig, axes = new_figure(width=6.0, height=1.2 + 0.28 * len(families))
        ax = axes[0][0]
        markers = "osD^v<>ph*X"
        for k, p in enumerate(procedures):
            values = ratio.sel(procedure=p, family=families).values
            ax.scatter(values, np.arange(len(families)), marker=markers[k % len(markers)], s=16,
                       label=p, alpha=0.8)
        ax.axvline(20, color="0.5", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(families)), families, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("compute-optimal D/N at 5.88e23 FLOP (dotted: 20)")
        ax.legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return fig

    def _figure_coverage(self, cube, fits):
        from scaling_atlas.figures import new_figure

        cov = fits["coverage"].to_dataset()
        splits = list(cov["split"].values.astype(str))
        fig, axes = new_figure(ncols=len(splits), width=3.4, height=3.4)
        for ax, split in zip(axes[0], splits):
            for family in cov["family"].values.astype(str):
                sel = cov["coverage"].sel(family=family, split=split)
                if np.isfinite(sel.values).any():
                    ax.plot(cov["nominal"].values, sel.values, marker="o", ms=3, lw=0.8, alpha=0.7,
                            label=family)
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
            ax.set_title(split, fontsize=8)
            ax.set_xlabel("nominal coverage")
        axes[0][0].set_ylabel("held-out points inside the interval")
        axes[0][-1].legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
        return fig

    # ---- claims ----------------------------------------------------------------------------------
    FIGURES = {
        "leaderboard": (
            'Leaderboard: procedures ranked by their mean rank of held-out loss error over '
            '(family, split) cells (1 = best in a cell), then those that predict no loss '
            '(Approach 2) by their mean rank of the ln N* error at held-out IsoFLOP budgets; with '
            'the median errors, cells won, and the fits that failed or were not identified '
            '(counted, not dropped). fits.nc group leaderboard holds the table; group scores '
            'every cell.', _figure_leaderboard),
        "error_heatmap": (
            'Held-out loss error (median relative error, colour on a log scale) of each procedure '
            '(rows) on each family (columns), per split. Grey: the procedure does not predict '
            'loss, failed, or the split was not run.', _figure_error_heatmap),
        "nstar_heatmap": (
            "Error in ln N* at held-out IsoFLOP budgets (observed N*: each budget's raw-loss "
            'parabola vertex), per procedure and IsoFLOP family.', _figure_nstar_heatmap),
        "allocation_spread": (
            'Compute-optimal tokens per parameter at 5.88e23 FLOP from every procedure fitted on '
            'all points of each family; the spread across procedures on the same data.', _figure_allocation_spread),
        "coverage": (
            'Prediction intervals of the reference procedure (Chinchilla, log-Huber) on the '
            'held-out points: empirical against nominal coverage per family and split (dashed: '
            'equality).', _figure_coverage),
    }

    CLAIMS = (
        ClaimSpec(
            "epoch_reference_allocation",
            "Our reference procedure (Chinchilla form, log-Huber δ = 1e-3, full grid) fitted on "
            "Epoch's 240 points gives the compute-optimal D/N at 5.88e23 FLOP of Epoch's "
            "published fit",
            "D/N = 18.3 from Besiroglu et al. 2024's published parameters (A 482.01, B 2085.43, "
            "α 0.3478, β 0.3658; reference fitting.md §3.3 and §4)",
            "paper (recomputed from its parameters)", 18.3, 1.8,
            deviations="log-Huber δ = 1e-3 where Epoch minimise a Huber likelihood (≈ log-MAE: "
                       "18.3 against our 17.9 on the same points). The tolerance, 10 %, is ours; "
                       "the interval resamples points (one descent from the optimum each)"),
        ClaimSpec(
            "porian_tuned_rw_exponent",
            "Approach 2 on Porian et al.'s tuned RefinedWeb IsoFLOP points (tuned / short warmup / "
            "constant LR / standard counting / validation loss) gives N* ∝ C^a with a ≈ 0.5",
            "a = 0.497 (0.491, 0.505) (Porian et al. 2024, recomputed in reference fitting.md §5.3)",
            "paper (recomputed)", 0.497, 0.015,
            deviations="an Akima minimum per budget and an unweighted power law; Porian weight "
                       "each budget by its seed-noise bootstrap (1/σ²). The estimator alone moves "
                       "a by ≈ ±0.015 (fitting.md §5.2), the tolerance used. Our interval "
                       "resamples whole budgets, not seed noise, so it is wider than Porian's"),
        ClaimSpec(
            "llama3_token_exponent",
            "Approach 2 on Llama 3's IsoFLOP points (a parabola per budget, then a power law) "
            "gives the compute-optimal tokens D*(C) ∝ C^b with Llama 3's exponent",
            "b = 0.53 (Llama Team 2024, §3.2.1: N*(C) = A·C^α for the optimal number of training "
            "tokens, (α, A) = (0.53, 0.29); secondary sources print 0.537)",
            "paper (digitised data)", 0.53, 0.03,
            deviations="the points are digitised from the paper's Figure 2 (N = C/6D), so the "
                       "tolerance ±0.03 allows for the digitisation and the estimator; the "
                       "interval resamples whole budgets"),
        ClaimSpec(
            "misfitting_form_spread",
            "On the (Mis)Fitting runs, fits of similar quality with different forms or objectives "
            "extrapolate to very different compute-optimal allocations (our reading: D/N at "
            "5.88e23 FLOP differs by more than 2× across procedures)",
            "qualitative: 'very different N_opt at Chinchilla-scale compute' (Li et al. 2025, §4; "
            "reference fitting.md §9)", "paper (qualitative; the 2× threshold is ours)",
            5001.0, 4999.0,
            deviations="the paper states no number; we test a ratio between 2 and 1e4. No "
                       "interval: it would take a bootstrap of five procedures' full fits"),
    )

    @staticmethod
    def _interval(intervals, claim) -> tuple:
        """(value, (low, high), status, premises) of a claim's cell."""
        family, procedure, quantity = CLAIM_CELLS[claim]
        if intervals is None or claim not in intervals["claim"].values:
            return math.nan, (math.nan, math.nan), "not run", (
                Premise(f"{family} and {procedure} are in the run", False, "not run"),)
        row = intervals.sel(claim=claim)
        status = str(row["status"].values)
        value = float(row[quantity])
        ci = (float(row[f"{quantity}_low"]), float(row[f"{quantity}_high"]))
        premises = [Premise(f"{family} and {procedure} are in the run",
                            status != "not in this run", status),
                    Premise("the fit is identified", status == "ok",
                            str(row["reason"].values) or status)]
        if quantity == "a":
            budgets = int(row["budgets"])
            premises.append(Premise("at least 3 budgets have their minimum inside the sampled "
                                    "sizes", budgets >= 3, f"{budgets} budgets"))
        else:
            at_bound = str(row["at_bound"].values)
            premises.append(Premise("no fitted parameter at a bound", not at_bound,
                                    at_bound or "none"))
        return value, ci, status, tuple(premises)

    def measure(self, cube, fits) -> dict[str, Measured]:
        scores = fits["scores"].to_dataset()
        families = list(scores["family"].values.astype(str))
        procedures = list(scores["procedure"].values.astype(str))
        have_all = "all" in scores["split"].values
        intervals = fits["intervals"].to_dataset() if "intervals" in fits else None
        out = {}
        value, ci, status, premises = self._interval(intervals, "epoch_reference_allocation")
        out["epoch_reference_allocation"] = Measured(
            value, f"backtest refit on every point, status {status}", ci=ci, premises=premises)
        value, ci, status, premises = self._interval(intervals, "porian_tuned_rw_exponent")
        out["porian_tuned_rw_exponent"] = Measured(
            value, f"approach2_akima on all budgets, status {status}", ci=ci, premises=premises)
        value, ci, status, premises = self._interval(intervals, "llama3_token_exponent")
        out["llama3_token_exponent"] = Measured(
            1 - value, f"1 − a of approach2_parabola on every budget, status {status}",
            ci=(1 - ci[1], 1 - ci[0]), premises=premises)
        ratios, names = [], []
        if have_all and "misfitting_final" in families:
            for p in ("chinchilla", "chinchilla_tied", "vpnls", "mse", "huber_1e-2"):
                if p not in procedures:
                    continue
                cell = scores.sel(family="misfitting_final", procedure=p, split="all")
                v, st = float(cell["D_over_N"]), str(cell["status"].values)
                if st == "ok" and math.isfinite(v) and v > 0:
                    ratios.append(v)
                    names.append(p)
        out["misfitting_form_spread"] = Measured(
            max(ratios) / min(ratios) if len(ratios) >= 2 else math.nan,
            "max/min D/N over " + (", ".join(names) or "no procedure") + " on misfitting_final",
            premises=(Premise("at least two identified fits on misfitting_final", len(ratios) >= 2,
                              f"{len(ratios)} identified" if "misfitting_final" in families
                              else "misfitting_final is not in this run"),))
        return out
