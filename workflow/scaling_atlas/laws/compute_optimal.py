"""Compute-optimal allocation: the closed form from an L(N, D) fit, IsoFLOP (Approach 2) and the
envelope of loss curves (Approach 1).

Compute is counted as C = 6·N·D throughout (D = C/(6N)); what N includes (embeddings, the last
layer) is the caller's bookkeeping and belongs in the fit's attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import interpolate

from scaling_atlas.laws.engine import FitDataError, _rows
from scaling_atlas.laws.forms import optimal_allocation


# ---- Approach 3: closed form (optimal_allocation lives with the forms) ----------------------------
#: the variables of :func:`frontier_band` (name → long_name, units)
FRONTIER_VARIABLES = {
    "frontier_flops": ("compute budget", "FLOP"),
    "frontier_n_opt": ("compute-optimal N at the best fit", "1"),
    "frontier_n_low": ("2.5th percentile of N_opt over bootstrap draws", "1"),
    "frontier_n_high": ("97.5th percentile of N_opt over bootstrap draws", "1"),
}


def frontier_band(fit, flops) -> xr.Dataset:
    """The compute-optimal frontier N*(C) of a bootstrapped Chinchilla-form ``LawFit`` on the
    budgets ``flops``: the best fit's N* and the 95 % percentile band of the draws' N*."""
    from scaling_atlas.laws.resampling import percentile_interval

    draws = fit.draws_
    n_draws, _, _ = optimal_allocation(draws["A"][:, None], draws["B"][:, None],
                                       draws["alpha"][:, None], draws["beta"][:, None], flops)
    best, _, _ = optimal_allocation(*(fit.natural_[k] for k in ("A", "B", "alpha", "beta")), flops)
    low, high = percentile_interval(n_draws, axis=0)
    band = xr.Dataset({"frontier_n_opt": ("frontier_flops", best),
                       "frontier_n_low": ("frontier_flops", low),
                       "frontier_n_high": ("frontier_flops", high)},
                      coords={"frontier_flops": ("frontier_flops", flops)})
    for name, (long_name, units) in FRONTIER_VARIABLES.items():
        band[name].attrs.update(long_name=long_name, units=units)
    return band


def chinchilla_derived(budgets=(5.88e23,)):
    """Derived quantities of a Chinchilla-form fit: a, b, and N_opt, D_opt, D/N (``D_over_N``) per budget.

    Returns a function of the natural-parameter dict (arrays over draws), for ``LawFit.bootstrap``.
    """
    budgets = tuple(float(c) for c in budgets)

    def derived(p):
        alpha = p["alpha"]
        beta = p.get("beta", alpha)
        out = {"a": beta / (alpha + beta), "b": alpha / (alpha + beta)}
        for c in budgets:
            n_opt, d_opt, ratio = optimal_allocation(p["A"], p["B"], alpha, beta, c)
            tag = f"{c:.3g}".replace("+", "")
            out[f"N_opt@{tag}"], out[f"D_opt@{tag}"], out[f"D_over_N@{tag}"] = n_opt, d_opt, ratio
        return out

    def explain(p, name):
        """Why a derived quantity is undefined at the parameters ``p`` (one draw)."""
        alpha = float(np.ravel(p["alpha"])[0])
        beta = float(np.ravel(p.get("beta", p["alpha"]))[0])
        if alpha <= 0 or beta <= 0:
            return (f"α = {alpha:.3g}, β = {beta:.3g}: the loss does not fall with "
                    f"{'N' if alpha <= 0 else 'D'}, so there is no finite compute-optimal split")
        if not (np.isfinite(np.ravel(p["A"])[0]) and np.isfinite(np.ravel(p["B"])[0])):
            return "A or B is not finite"
        return (f"α + β = {alpha + beta:.3g}: G = (αA/βB)^(1/(α+β)) overflows or underflows "
                f"for {name}")

    derived.explain = explain
    return derived


# ---- Approach 2: IsoFLOP profiles -----------------------------------------------------------------
#: How each IsoFLOP profile's curve is fitted: to the raw loss (Hoffmann et al., Epoch, Open-Athena)
#: or to ln(loss) (this engine's convention before wave 2).
ISOFLOP_SPACES = ("loss", "log")


def _budget_minimum(log_n, values, method, window, grid_factor):
    """argmin of one IsoFLOP profile over ln N: (log N*, value at the minimum, reason or "").

    ``values`` are the losses in the space the profile is fitted in. A non-empty reason says
    why the budget has no usable interior minimum.
    """
    order = np.argsort(log_n)
    log_n, values = log_n[order], values[order]
    if method == "parabola":
        if window is not None:
            centre = int(np.argmin(values))
            lo, hi = max(0, centre - window), min(len(log_n), centre + window + 1)
            log_n, values = log_n[lo:hi], values[lo:hi]
        if len(np.unique(log_n)) < 3:
            return math.nan, math.nan, f"{len(np.unique(log_n))} distinct N (a parabola needs 3)"
        c2, c1, c0 = np.polyfit(log_n, values, 2)
        if c2 <= 0:
            return math.nan, math.nan, "the parabola opens downward (no minimum)"
        x = -c1 / (2 * c2)
        reason = ("minimum below the smallest sampled N" if x <= log_n[0] else
                  "minimum above the largest sampled N" if x >= log_n[-1] else "")
        return x, c0 + c1 * x + c2 * x * x, reason
    if method == "akima":
        if len(np.unique(log_n)) < 3:
            return math.nan, math.nan, f"{len(np.unique(log_n))} distinct N (Akima needs 3)"
        fine = np.linspace(log_n[0], log_n[-1], (len(log_n) - 1) * grid_factor)
        curve = interpolate.Akima1DInterpolator(log_n, values)(fine)
        i = int(np.argmin(curve))
        reason = ("minimum at the smallest sampled N" if i == 0 else
                  "minimum at the largest sampled N" if i == len(fine) - 1 else "")
        return fine[i], curve[i], reason
    raise ValueError(f"unknown IsoFLOP method {method!r}; use 'parabola' or 'akima'")


@dataclass
class IsoFlopResult:
    """Per-budget optima and the power law N*(C) = k·C^a fitted to them."""

    optima: pd.DataFrame   # flops, n_opt, d_opt, loss_opt, n_star_std_log, on_edge, used
    exponent: float        # a in N* ∝ C^a
    intercept: float       # ln k
    r2: float
    exponent_ci: tuple[float, float] = (math.nan, math.nan)
    d_exponent: float = math.nan  # b in D* ∝ C^b (= 1 − a under C = 6ND)
    settings: dict = field(default_factory=dict)  # how the optima were found (optima.attrs)

    def n_opt(self, flops):
        return np.exp(self.intercept) * np.asarray(flops, float) ** self.exponent


def weighted_power_law(flops, values, weights=None):
    """Weighted least squares of ln value on ln C: (slope, intercept, R²)."""
    x, y = np.log(np.asarray(flops, float)), np.log(np.asarray(values, float))
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    slope = np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2)
    intercept = ym - slope * xm
    resid = y - intercept - slope * x
    r2 = 1 - np.sum(w * resid**2) / np.sum(w * (y - ym) ** 2)
    return float(slope), float(intercept), float(r2)


def _isoflop_columns(points, columns, flops, n, loss):
    """The frame's column for flops, n_params and loss, refusing missing ones by name."""
    mapping = {"flops": flops, "n_params": n, "loss": loss}
    unknown = set(columns or {}) - set(mapping)
    if unknown:
        raise FitDataError(f"columns= maps unknown key(s) {sorted(unknown)}; the keys are "
                           "'flops', 'n_params' and 'loss'")
    mapping.update(columns or {})
    missing = {k: v for k, v in mapping.items() if v not in points}
    if missing:
        raise FitDataError(
            "IsoFLOP points lack column(s) " + ", ".join(f"{v!r} (for {k})" for k, v in missing.items())
            + f"; the table has {', '.join(map(repr, points.columns))}. Map them with "
            "columns={'flops': ..., 'n_params': ..., 'loss': ...}")
    return mapping


def isoflop_optima(points: pd.DataFrame, method: str = "akima", window: int | None = None,
                   grid_factor: int = 25, drop_edge: bool = True, noise_resamples: int = 0,
                   noise_sigma: float = 0.0, seed: int = 0, min_std_fraction: float = 0.33,
                   space: str = "loss", columns: dict | None = None, nan_policy: str = "raise",
                   flops="flops", n="n_params", loss="loss") -> pd.DataFrame:
    """The loss-minimising N at every compute budget (Approach 2).

    ``points`` has one row per (budget, N) with the loss at that budget; ``columns`` maps the
    keys ``flops``, ``n_params`` and ``loss`` to other column names. ``method``: a parabola in
    ln N (over all points, or ``window`` points either side of the lowest) or an Akima
    interpolant evaluated on a fine grid (Porian et al.). ``space``: the curve is fitted to the
    raw loss (``"loss"``, the default: Hoffmann et al., Epoch's and Open-Athena's analyses) or
    to ln(loss) (``"log"``); on public IsoFLOP data the choice moves a by up to 0.8 % and N* by
    2–4 %. ``nan_policy``: ``"raise"`` refuses rows with a NaN or infinite value (naming them);
    ``"drop"`` leaves those rows out, counted per budget (``n_dropped_nan``) instead of losing
    the budget. Budgets without a usable interior minimum are kept in the table with their
    ``reason`` and not ``used`` (edge minima only with ``drop_edge``).

    ``noise_resamples`` > 0 adds Porian's seed-noise bootstrap: Gaussian noise of relative size
    ``noise_sigma`` on each loss, the minimum re-found per replicate; the optimum becomes the
    replicate median and ``n_star_std_log`` the std of ln N*, floored at ``min_std_fraction`` of
    the budget's ln N grid spacing.

    The settings are in ``optima.attrs`` (``space``, ``method``, ``nan_policy``, counts).
    """
    if space not in ISOFLOP_SPACES:
        raise ValueError(f"space must be one of {ISOFLOP_SPACES}, got {space!r}")
    if nan_policy not in ("raise", "drop"):
        raise ValueError(f"nan_policy must be 'raise' or 'drop', got {nan_policy!r}")
    if method not in ("parabola", "akima"):
        raise ValueError(f"unknown IsoFLOP method {method!r}; use 'parabola' or 'akima'")
    cols = _isoflop_columns(points, columns, flops, n, loss)
    table = pd.DataFrame({k: pd.to_numeric(points[v], errors="coerce") for k, v in cols.items()},
                         index=points.index)
    for key, column in cols.items():
        text = points[column].notna() & table[key].isna()
        if text.any():
            first = points.loc[text, column].iloc[0]
            raise FitDataError(f"non-numeric value(s) in column {column!r}, row(s) "
                               f"{_rows(points.index, text.to_numpy())} (e.g. {first!r})")
    finite = np.isfinite(table.to_numpy(float)).all(axis=1)
    if not finite.all() and nan_policy == "raise":
        raise FitDataError(f"NaN or infinite values in row(s) {_rows(points.index, ~finite)} "
                           "of the IsoFLOP points; clean them or pass nan_policy='drop' (dropped "
                           "rows are counted per budget)")
    for key in ("flops", "n_params", "loss"):
        bad = finite & ~(table[key].to_numpy(float) > 0)
        if bad.any():
            raise FitDataError(f"non-positive {key} (column {cols[key]!r}) in row(s) "
                               f"{_rows(points.index, bad)}: Approach 2 works in ln N and ln C and "
                               "needs positive values")
    dropped_per_budget = (table.loc[~finite & np.isfinite(table["flops"])]
                          .groupby("flops").size().to_dict())
    n_unassigned = int((~finite & ~np.isfinite(table["flops"].to_numpy(float))).sum())
    table = table.loc[finite]

    def to_space(values):
        return np.log(values) if space == "log" else values

    def from_space(value):
        return math.exp(value) if space == "log" else value

    rng = np.random.default_rng(seed)
    rows = []
    budgets = sorted(set(table["flops"]) | set(dropped_per_budget))
    for c in budgets:
        group = table[table["flops"] == c]
        log_n = np.log(group["n_params"].to_numpy(float))
        raw = group["loss"].to_numpy(float)
        if len(group) == 0:
            x, v, reason = math.nan, math.nan, "every point's value is NaN"
        else:
            x, v, reason = _budget_minimum(log_n, to_space(raw), method, window, grid_factor)
        std = math.nan
        if noise_resamples and math.isfinite(x):
            draws = []
            for _ in range(noise_resamples):
                noisy = raw * (1 + noise_sigma * rng.standard_normal(len(raw)))
                xi, vi, why = _budget_minimum(log_n, to_space(noisy), method, window, grid_factor)
                if not why:
                    draws.append((xi, vi))
            if draws:
                draws = np.array(draws)
                x, v = np.median(draws[:, 0]), np.median(draws[:, 1])
                spacing = np.median(np.diff(np.sort(log_n))) if len(log_n) > 1 else 0.0
                std = max(float(np.std(draws[:, 0])), min_std_fraction * spacing)
            else:
                reason = reason or "no noise replicate has an interior minimum"
        on_edge = reason.startswith("minimum") or not math.isfinite(x)
        # a nearly flat parabola puts its vertex hundreds of e-folds away: exp under- or
        # overflows, and that budget (already outside the sampled N) has no N*
        n_opt = float(np.exp(x)) if math.isfinite(x) and abs(x) < 700 else math.nan
        rows.append({"flops": c, "n_opt": n_opt,
                     "d_opt": c / (6 * n_opt) if math.isfinite(n_opt) else math.nan,
                     "loss_opt": from_space(v) if math.isfinite(v) else math.nan,
                     "n_star_std_log": std, "on_edge": bool(on_edge), "n_points": len(group),
                     "n_dropped_nan": int(dropped_per_budget.get(c, 0)), "reason": reason})
    optima = pd.DataFrame(rows, columns=["flops", "n_opt", "d_opt", "loss_opt", "n_star_std_log",
                                         "on_edge", "n_points", "n_dropped_nan", "reason"])
    edge = optima["reason"].str.startswith("minimum")
    optima["used"] = np.isfinite(optima["n_opt"]) & ~(edge & drop_edge)
    optima.loc[edge & ~drop_edge, "reason"] = ""  # kept on request: not a reason to drop
    optima.attrs.update(space=space, method=method, window=window, nan_policy=nan_policy,
                        n_dropped_nan=int(sum(dropped_per_budget.values())) + n_unassigned,
                        n_dropped_nan_no_budget=n_unassigned,
                        curve=("parabola" if method == "parabola" else "Akima interpolant")
                        + (" in ln N fitted to the raw loss" if space == "loss"
                           else " in ln N fitted to ln(loss)"))
    return optima


def fit_isoflop(optima: pd.DataFrame, weighted: bool = True, n_boot: int = 0, seed: int = 0,
                ci: float = 0.95) -> IsoFlopResult:
    """Regress ln N* on ln C over the used budgets (weights 1/σ²(ln N*) when known)."""
    used = optima[optima["used"]]
    if len(used) < 2:
        reasons = ""
        if "reason" in optima:
            reasons = "; ".join(f"C={c:.3g}: {r}" for c, r in
                                zip(optima["flops"], optima["reason"]) if r)
        raise ValueError(f"IsoFLOP fit needs at least 2 usable budgets, got {len(used)}"
                         + (f" (dropped: {reasons})" if reasons else ""))
    std = used["n_star_std_log"].to_numpy(float)
    weights = 1 / std**2 if weighted and np.all(np.isfinite(std)) else None
    a, k, r2 = weighted_power_law(used["flops"], used["n_opt"], weights)
    b, _, _ = weighted_power_law(used["flops"], used["d_opt"], weights)
    low_high = (math.nan, math.nan)
    if n_boot:
        rng = np.random.default_rng(seed)
        slopes = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(used), len(used))
            if len(np.unique(used["flops"].to_numpy()[idx])) < 2:
                continue
            w = None if weights is None else weights[idx]
            slopes.append(weighted_power_law(used["flops"].to_numpy()[idx],
                                             used["n_opt"].to_numpy()[idx], w)[0])
        tail = 100 * (1 - ci) / 2
        low_high = tuple(np.percentile(slopes, [tail, 100 - tail]))
    return IsoFlopResult(optima, a, k, r2, low_high, b, dict(optima.attrs))


# ---- Approach 1: envelope of training curves ------------------------------------------------------
def envelope_optima(curves: pd.DataFrame, n_budgets: int = 30, run="run", n="n_params",
                    tokens="tokens", loss="loss") -> pd.DataFrame:
    """For log-spaced budgets C, the run (and so N) with the lowest loss at C = 6·N·D.

    Each run's curve is interpolated in ln D; a run covers a budget only where its curve does.
    """
    curves = curves.assign(_flops=6.0 * curves[n] * curves[tokens])
    lo, hi = curves["_flops"].min(), curves["_flops"].max()
    budgets = np.geomspace(lo, hi, n_budgets)
    best = {c: (math.inf, math.nan) for c in budgets}
    for _, curve in curves.groupby(run):
        curve = curve.sort_values(tokens)
        n_run = float(curve[n].iloc[0])
        f = np.log(curve["_flops"].to_numpy())
        values = np.log(curve[loss].to_numpy())
        for c in budgets:
            if f[0] <= math.log(c) <= f[-1]:
                v = float(np.interp(math.log(c), f, values))
                if v < best[c][0]:
                    best[c] = (v, n_run)
    rows = [{"flops": c, "n_opt": n_opt, "d_opt": c / (6 * n_opt), "loss_opt": math.exp(v)}
            for c, (v, n_opt) in best.items() if math.isfinite(v)]
    return pd.DataFrame(rows)
