"""Backtests of fitting procedures: fit on the smaller part of a dataset, predict the larger part.

>>> from scaling_atlas.laws.backtest import PROCEDURES, backtest_family, leaderboard
>>> rows = backtest_family(points, isoflop=True, procedures=["chinchilla", "approach2_parabola"])

``points`` is one family of runs in the registry's schema (N, D, C, loss). Splits
(``SPLITS``): the largest model sizes held out (≥ 10 % of the points), the largest compute
values held out (whole budgets, ≥ 10 %), and a compute cut (fit on the lower half of the log-C
range, predict the upper half); ``all`` fits every point and gives only the allocation.

Scores per (split, procedure): the held-out loss error of procedures that predict loss
(median and mean relative error, RMSE and mean of ln predicted − ln observed), and, on IsoFLOP
data, the error in ln N* at each held-out budget, where the observed N* is that budget's own
raw-loss parabola vertex (Hoffmann et al.'s convention; it favours parabola procedures a
little, and says so in the table's attributes). A fit that fails or is not identified is
counted with its reason, never dropped.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling_atlas.laws.compute_optimal import (chinchilla_derived, fit_isoflop, isoflop_optima,
                                                optimal_allocation)
from scaling_atlas.laws.engine import FitDataError, FitWarning, LawFit
from scaling_atlas.laws.objectives import Objective

#: compute at which every procedure's compute-optimal D/N is compared (Chinchilla's)
REFERENCE_C = 5.88e23
#: a split needs at least this many training points and 3 model sizes
MIN_TRAIN = 8


@dataclass(frozen=True)
class Procedure:
    """One way to fit: a law form with its objective and optimiser settings, or Approach 2."""

    name: str
    description: str
    kind: str = "parametric"  # "parametric" (predicts loss) or "approach2" (N* per budget only)
    form: str = "chinchilla"
    objective: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    isoflop: dict = field(default_factory=dict)
    #: a slow procedure (log-MAE's exact solve): left out of the quick scale
    slow: bool = False

    def law_fit(self) -> LawFit:
        """The procedure's unfitted ``LawFit`` (no objective given: the solver's own)."""
        objective = Objective(**self.objective) if self.objective else None
        return LawFit(self.form, objective=objective, **self.settings)


#: a single neutral start, the midpoint of the default grid (ln A = ln B = 5, ln E = 0, α = β = 0.5)
SINGLE_START = {"a": [5.0], "b": [5.0], "e": [0.0], "alpha": [0.5], "beta": [0.5]}

PROCEDURES: dict[str, Procedure] = {p.name: p for p in [
    Procedure("chinchilla", "Chinchilla form, log-Huber δ = 1e-3, full start grid, L-BFGS-B "
              "(Hoffmann et al.; the engine's default)"),
    Procedure("chinchilla_tied", "tied exponents α = β (Gadre et al.), log-Huber δ = 1e-3",
              form="chinchilla_tied"),
    Procedure("kaplan", "Kaplan et al.'s L(N, D) form, log-Huber δ = 1e-3 (no compute-optimal "
              "allocation)", form="kaplan"),
    Procedure("huber_1e-4", "Chinchilla form, log-Huber δ = 1e-4", objective={"delta": 1e-4}),
    Procedure("huber_1e-2", "Chinchilla form, log-Huber δ = 1e-2", objective={"delta": 1e-2}),
    Procedure("mse", "Chinchilla form, log-MSE", objective={"loss": "mse"}),
    Procedure("mae", "Chinchilla form, log-MAE (Epoch's estimate; exact, slow)",
              objective={"loss": "mae"}, slow=True),
    Procedure("asymmetric", "Chinchilla form, log-Huber with over-estimates weighted 10× (the "
              "lower envelope; the chinchilla package, OLMo's ladder)",
              objective={"overestimate_weight": 10.0}),
    Procedure("single_start", "Chinchilla form, log-Huber δ = 1e-3 from one neutral start "
              "(ln A = ln B = 5, ln E = 0, α = β = 0.5) instead of the grid",
              settings={"starts": SINGLE_START, "top_k": 1}),
    Procedure("vpnls", "Chinchilla form by variable projection: NNLS for (A, B, E) on an (α, β) "
              "grid, least squares in linear loss", settings={"solver": "vpnls"}),
    Procedure("approach2_parabola", "Approach 2: a parabola in ln N per budget fitted to the raw "
              "loss, then N* = k·C^a", kind="approach2", isoflop={"method": "parabola", "space": "loss"}),
    Procedure("approach2_parabola_log", "Approach 2: the parabola fitted to ln(loss)",
              kind="approach2", isoflop={"method": "parabola", "space": "log"}),
    Procedure("approach2_akima", "Approach 2: an Akima interpolant per budget (Porian et al.)",
              kind="approach2", isoflop={"method": "akima", "space": "loss"}),
]}


# ---- splits -------------------------------------------------------------------------------------
def _largest(values: np.ndarray, share: float = 0.1, minimum: int = 3) -> np.ndarray:
    """Train mask holding out the largest distinct values that together hold ≥ ``share`` of the
    points (and ≥ ``minimum``)."""
    distinct = np.sort(np.unique(values))[::-1]
    counts = np.cumsum([int((values == v).sum()) for v in distinct])
    cut = distinct[int(np.argmax(counts >= max(minimum, math.ceil(share * len(values)))))]
    return values < cut


def split_masks(points: pd.DataFrame) -> dict[str, np.ndarray]:
    """Train masks of every split (``all`` trains on everything)."""
    N, C = points["N"].to_numpy(float), points["C"].to_numpy(float)
    log_c = np.log(C)
    return {
        "largest_N": _largest(N),
        "largest_C": _largest(C),
        "compute_cut": log_c <= 0.5 * (log_c.min() + log_c.max()),
        "all": np.ones(len(points), bool),
    }


SPLITS = {
    "largest_N": "the largest model sizes held out (whole sizes, ≥ 10 % of the points)",
    "largest_C": "the largest compute values held out (whole budgets, ≥ 10 % of the points)",
    "compute_cut": "fit on the lower half of the log-compute range, predict the upper half",
    "all": "every point (the compute-optimal allocation only)",
}


def split_problem(points: pd.DataFrame, train: np.ndarray, split: str) -> str:
    """Why a split cannot be fitted (too few training points or sizes, nothing held out), or ""."""
    if split != "all" and train.all():
        return "nothing held out"
    if int(train.sum()) < MIN_TRAIN:
        return f"{int(train.sum())} training points (need {MIN_TRAIN})"
    if points.loc[train, "N"].nunique() < 3:
        return f"{points.loc[train, 'N'].nunique()} model size(s) in the training part (need 3)"
    return ""


# ---- scoring ------------------------------------------------------------------------------------
def observed_optima(points: pd.DataFrame) -> pd.Series:
    """Each budget's raw-loss parabola vertex N* (interior budgets only), indexed by C."""
    optima = isoflop_optima(points, method="parabola", space="loss",
                            columns={"flops": "C", "n_params": "N", "loss": "loss"})
    used = optima[optima["used"]]
    return pd.Series(used["n_opt"].to_numpy(), index=used["flops"].to_numpy())


def _loss_scores(prediction, observed) -> dict:
    prediction, observed = np.asarray(prediction, float), np.asarray(observed, float)
    rel = np.abs(prediction - observed) / np.abs(observed)
    with np.errstate(all="ignore"):
        log_r = np.log(prediction) - np.log(observed)
    return {"median_relative_error": float(np.median(rel)),
            "mean_relative_error": float(np.mean(rel)),
            "mean_absolute_error": float(np.mean(np.abs(prediction - observed))),
            "rmse_log": float(np.sqrt(np.mean(log_r**2))),
            "mean_log_residual": float(np.mean(log_r))}


def _nstar_scores(n_opt_at, held_out: pd.Series) -> dict:
    if held_out.empty:
        return {"nstar_log_error": math.nan, "nstar_budgets": 0}
    predicted = np.asarray(n_opt_at(held_out.index.to_numpy(float)), float)
    error = np.log(predicted) - np.log(held_out.to_numpy(float))
    return {"nstar_log_error": float(np.mean(np.abs(error))),
            "nstar_log_bias": float(np.mean(error)), "nstar_budgets": int(len(error))}


def _fit_approach2(procedure: Procedure, points: pd.DataFrame, **fit_kwargs):
    """Approach 2 on ``points``: (optima, IsoFlopResult), or (None, why it failed)."""
    try:
        optima = isoflop_optima(points, method=procedure.isoflop["method"],
                                space=procedure.isoflop["space"],
                                columns={"flops": "C", "n_params": "N", "loss": "loss"})
        return optima, fit_isoflop(optima, weighted=False, **fit_kwargs)
    except (ValueError, FitDataError) as error:
        return None, str(error)[:200]


def _fit_parametric(procedure: Procedure, points: pd.DataFrame):
    """The procedure's LawFit fitted on ``points`` (fit warnings silenced: the fit's own
    identifiability attributes carry them), or (None, why it failed)."""
    fit = procedure.law_fit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            fit.fit(points, points["loss"])
    except (ValueError, FitDataError, FloatingPointError, np.linalg.LinAlgError) as error:
        return None, str(error)[:200]
    return fit, ""


def run_procedure(procedure: Procedure, train: pd.DataFrame, test: pd.DataFrame | None,
                  isoflop: bool, held_out_optima: pd.Series | None) -> dict:
    """Fit one procedure on ``train`` and score it on ``test``: a flat dict (status, scores,
    D/N at ``REFERENCE_C``)."""
    out: dict = {"status": "ok", "reason": "", "identified": True, "D_over_N": math.nan,
                 "a": math.nan}
    if procedure.kind == "approach2":
        if not isoflop:
            return {**out, "status": "not applicable", "reason": "not IsoFLOP data"}
        optima, result = _fit_approach2(procedure, train)
        if optima is None:
            return {**out, "status": "failed", "reason": result, "identified": False}
        n_star = result.n_opt(REFERENCE_C)
        out.update(a=result.exponent, D_over_N=float(REFERENCE_C / (6 * n_star) / n_star),
                   budgets_used=int(optima["used"].sum()))
        if held_out_optima is not None:
            out.update(_nstar_scores(result.n_opt, held_out_optima))
        return out
    fit, reason = _fit_parametric(procedure, train)
    if fit is None:
        return {**out, "status": "failed", "reason": reason, "identified": False}
    out["identified"] = bool(fit.identified_)
    if not fit.identified_:
        out.update(status="not identified",
                   reason="; ".join(map(str, fit.identifiability_warnings_))[:200]
                   or "the data do not determine the fit")
    out["at_bound"] = ",".join(fit.parameters_at_bound())
    out["converged"] = bool(fit.converged_)
    if test is not None and len(test):
        out.update(_loss_scores(fit.predict(test), test["loss"]))
    if fit.law_form.has_allocation:
        p = fit.natural_
        beta = p.get("beta", p["alpha"])
        n_at = lambda c: optimal_allocation(p["A"], p["B"], p["alpha"], beta, c)[0]
        _, _, ratio = optimal_allocation(p["A"], p["B"], p["alpha"], beta, REFERENCE_C)
        out.update(D_over_N=float(ratio), a=float(beta / (p["alpha"] + beta)))
        if held_out_optima is not None and fit.identified_:
            out.update(_nstar_scores(n_at, held_out_optima))
    return out


def backtest_family(points: pd.DataFrame, isoflop: bool, procedures=None, splits=None) -> list[dict]:
    """Every (split, procedure) of one family: a list of flat rows (see ``run_procedure``)."""
    procedures = [PROCEDURES[p] if isinstance(p, str) else p for p in (procedures or PROCEDURES)]
    points = points.reset_index(drop=True)
    rows = []
    for split, train in split_masks(points).items():
        if splits is not None and split not in splits:
            continue
        base = {"split": split, "n_train": int(train.sum()), "n_test": int((~train).sum())}
        problem = split_problem(points, train, split)
        if problem:
            rows.extend({**base, "procedure": p.name, "status": "split not run", "reason": problem}
                        for p in procedures)
            continue
        test = None if split == "all" else points[~train]
        held = None
        if isoflop and test is not None:
            try:
                held = observed_optima(test)
            except (ValueError, FitDataError):
                held = pd.Series(dtype=float)
        for procedure in procedures:
            rows.append({**base, "procedure": procedure.name,
                         **run_procedure(procedure, points[train], test, isoflop, held)})
    return rows


def procedure_interval(procedure: Procedure | str, points: pd.DataFrame, quantity: str,
                       n_resamples: int, seed: int = 0, ci: float = 0.95) -> dict:
    """One procedure fitted on every point of a family, with a percentile bootstrap interval of
    ``quantity``: ``"D_over_N"`` (at ``REFERENCE_C``) for a parametric procedure, or ``"a"``
    (N* ∝ C^a) for either kind.

    A parametric fit resamples points (``LawFit.bootstrap``: one descent from the full-data
    optimum per resample); Approach 2 resamples whole budgets' optima (``fit_isoflop``). Returns
    the estimate, the interval (NaN without resamples), the method, a status with its reason,
    the budgets with an interior optimum (Approach 2) and the parameters at a bound (parametric).
    """
    procedure = PROCEDURES[procedure] if isinstance(procedure, str) else procedure
    out = {"value": math.nan, "low": math.nan, "high": math.nan, "resamples": int(n_resamples),
           "status": "ok", "reason": "", "method": "", "budgets": 0, "at_bound": ""}
    if procedure.kind == "approach2":
        if quantity != "a":
            raise ValueError(f"Approach 2 gives only the exponent a, not {quantity!r}")
        optima, result = _fit_approach2(procedure, points, n_boot=n_resamples, seed=seed, ci=ci)
        if optima is None:
            return {**out, "status": "failed", "reason": result}
        budgets = int(optima["used"].sum())
        low, high = result.exponent_ci  # NaN without resamples
        return {**out, "value": float(result.exponent), "low": float(low), "high": float(high),
                "budgets": budgets, "method": f"percentile bootstrap over the {budgets} budgets' "
                                              "optima (unweighted power law)"}
    if quantity not in ("a", "D_over_N"):
        raise ValueError(f"quantity must be 'a' or 'D_over_N', got {quantity!r}")
    key = "a" if quantity == "a" else f"D_over_N@{REFERENCE_C:.3g}".replace("+", "")
    fit, reason = _fit_parametric(procedure, points)
    if fit is None:
        return {**out, "status": "failed", "reason": reason}
    if not fit.law_form.has_allocation:
        return {**out, "status": "not applicable", "reason": f"{fit.law_form.name} has no allocation"}
    derived = chinchilla_derived([REFERENCE_C])
    out["value"] = fit.derived_estimates(derived)[key]
    out["at_bound"] = ",".join(fit.parameters_at_bound())
    if not fit.identified_:
        return {**out, "status": "not identified",
                "reason": "; ".join(map(str, fit.identifiability_warnings_))[:200]}
    if n_resamples:
        fit.bootstrap(n_resamples, seed=seed, n_jobs=1, ci=ci, derived=derived)
        out["low"], out["high"] = (float(v) for v in fit.intervals()[key])
        out["method"] = (f"percentile bootstrap over points ({n_resamples} resamples, "
                         f"{fit.n_failed_draws_} failed)")
    return out


# ---- summaries ----------------------------------------------------------------------------------
def _ranks(held: pd.DataFrame, error: str) -> pd.DataFrame:
    ok = held[held["status"] == "ok"].dropna(subset=[error])
    if ok.empty:
        return pd.DataFrame(columns=["rank", "cells", "median", "wins"])
    ok = ok.assign(rank=ok.groupby(["family", "split"])[error].rank(method="average"))
    best = ok.loc[ok.groupby(["family", "split"])[error].idxmin(), "procedure"].value_counts()
    table = ok.groupby("procedure").agg(rank=("rank", "mean"), cells=("rank", "size"),
                                        median=(error, "median"))
    table["wins"] = best.reindex(table.index).fillna(0).astype(int)
    return table


def leaderboard(scores: pd.DataFrame, error: str = "median_relative_error") -> pd.DataFrame:
    """Procedures ranked by their mean rank over (family, split) cells on the held-out loss
    ``error`` (1 = best in a cell), then, for procedures that predict no loss (Approach 2), by
    their mean rank on the ln N* error at held-out IsoFLOP budgets; with the median errors, the
    cells won, and the failures and non-identified fits."""
    held = scores[scores["split"] != "all"]
    loss = _ranks(held, error).add_suffix("_loss")
    nstar = (_ranks(held, "nstar_log_error").add_suffix("_nstar") if "nstar_log_error" in held
             else pd.DataFrame())
    table = loss.join(nstar, how="outer") if len(nstar) else loss
    table = table.rename(columns={"rank_loss": "mean_rank", "cells_loss": "cells",
                                  "median_loss": "median_error", "wins_loss": "wins",
                                  "rank_nstar": "mean_rank_nstar", "cells_nstar": "cells_nstar",
                                  "median_nstar": "median_nstar_log_error",
                                  "wins_nstar": "wins_nstar"})
    status = held.groupby("procedure")["status"]
    table["failed"] = status.apply(lambda s: int((s == "failed").sum())).reindex(table.index)
    table["not_identified"] = status.apply(
        lambda s: int((s == "not identified").sum())).reindex(table.index)
    for column in ("cells", "wins", "cells_nstar", "wins_nstar", "failed", "not_identified"):
        if column in table:
            table[column] = table[column].fillna(0).astype(int)
    sort = [c for c in ("mean_rank", "mean_rank_nstar", "median_error") if c in table]
    return table.sort_values(sort, na_position="last").rename_axis("procedure").reset_index()
