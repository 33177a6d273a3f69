"""Compute-optimal allocation: the closed form from an L(N, D) fit, IsoFLOP (Approach 2) and the
envelope of loss curves (Approach 1).

Compute is counted as C = 6·N·D throughout (D = C/(6N)); what N includes (embeddings, the last
layer) is the caller's bookkeeping and belongs in the fit's attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate


# ---- Approach 3: closed form ----------------------------------------------------------------------
def optimal_allocation(A, B, alpha, beta, C):
    """Hoffmann et al.'s eq. 4: N_opt, D_opt and D/N at compute C for L = E + A/N^α + B/D^β.

    G = (αA/(βB))^(1/(α+β)), N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)/N_opt. Broadcasts.
    """
    A, B, alpha, beta, C = (np.asarray(v, float) for v in (A, B, alpha, beta, C))
    with np.errstate(all="ignore"):
        a = beta / (alpha + beta)
        G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
        n_opt = G * (C / 6.0) ** a
        d_opt = (C / 6.0) / n_opt
    return n_opt, d_opt, d_opt / n_opt


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

    return derived


# ---- Approach 2: IsoFLOP profiles -----------------------------------------------------------------
def _budget_minimum(log_n, log_loss, method, window, grid_factor):
    """argmin of one IsoFLOP profile: (log N*, log L*, on_edge)."""
    order = np.argsort(log_n)
    log_n, log_loss = log_n[order], log_loss[order]
    if method == "parabola":
        if window is not None:
            centre = int(np.argmin(log_loss))
            lo, hi = max(0, centre - window), min(len(log_n), centre + window + 1)
            log_n, log_loss = log_n[lo:hi], log_loss[lo:hi]
        if len(log_n) < 3:
            return math.nan, math.nan, True
        c2, c1, c0 = np.polyfit(log_n, log_loss, 2)
        if c2 <= 0:
            return math.nan, math.nan, True
        x = -c1 / (2 * c2)
        on_edge = not (log_n[0] < x < log_n[-1])
        return x, c0 + c1 * x + c2 * x * x, on_edge
    if method == "akima":
        fine = np.linspace(log_n[0], log_n[-1], (len(log_n) - 1) * grid_factor)
        values = interpolate.Akima1DInterpolator(log_n, log_loss)(fine)
        i = int(np.argmin(values))
        return fine[i], values[i], i in (0, len(fine) - 1)
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


def isoflop_optima(points: pd.DataFrame, method: str = "akima", window: int | None = None,
                   grid_factor: int = 25, drop_edge: bool = True, noise_resamples: int = 0,
                   noise_sigma: float = 0.0, seed: int = 0, min_std_fraction: float = 0.33,
                   flops="flops", n="n_params", loss="loss") -> pd.DataFrame:
    """The loss-minimising N at every compute budget (Approach 2).

    ``points`` has one row per (budget, N) with the loss at that budget. ``method``: a parabola
    in ln N (over all points, or ``window`` points either side of the lowest) or an Akima
    interpolant evaluated on a fine grid (Porian et al.). Budgets whose minimum lies on the edge
    of the sampled N range are marked and, with ``drop_edge``, not ``used``.

    ``noise_resamples`` > 0 adds Porian's seed-noise bootstrap: Gaussian noise of relative size
    ``noise_sigma`` on each loss, the minimum re-found per replicate; the optimum becomes the
    replicate median and ``n_star_std_log`` the std of ln N*, floored at ``min_std_fraction`` of
    the budget's ln N grid spacing.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for c, group in points.groupby(flops, sort=True):
        log_n = np.log(group[n].to_numpy(float))
        log_loss = np.log(group[loss].to_numpy(float))
        x, v, on_edge = _budget_minimum(log_n, log_loss, method, window, grid_factor)
        std = math.nan
        if noise_resamples and math.isfinite(x):
            draws = []
            for _ in range(noise_resamples):
                noisy = np.log(np.exp(log_loss) * (1 + noise_sigma * rng.standard_normal(len(log_loss))))
                xi, vi, edge_i = _budget_minimum(log_n, noisy, method, window, grid_factor)
                if not edge_i:
                    draws.append((xi, vi))
            if draws:
                draws = np.array(draws)
                x, v = np.median(draws[:, 0]), np.median(draws[:, 1])
                spacing = np.median(np.diff(np.sort(log_n))) if len(log_n) > 1 else 0.0
                std = max(float(np.std(draws[:, 0])), min_std_fraction * spacing)
        rows.append({"flops": c, "n_opt": math.exp(x) if math.isfinite(x) else math.nan,
                     "d_opt": c / (6 * math.exp(x)) if math.isfinite(x) else math.nan,
                     "loss_opt": math.exp(v) if math.isfinite(v) else math.nan,
                     "n_star_std_log": std, "on_edge": bool(on_edge), "n_points": len(group)})
    optima = pd.DataFrame(rows)
    optima["used"] = np.isfinite(optima["n_opt"]) & ~(optima["on_edge"] & drop_edge)
    return optima


def fit_isoflop(optima: pd.DataFrame, weighted: bool = True, n_boot: int = 0, seed: int = 0,
                ci: float = 0.95) -> IsoFlopResult:
    """Regress ln N* on ln C over the used budgets (weights 1/σ²(ln N*) when known)."""
    used = optima[optima["used"]]
    if len(used) < 2:
        raise ValueError(f"IsoFLOP fit needs at least 2 usable budgets, got {len(used)}")
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
    return IsoFlopResult(optima, a, k, r2, low_high, b)


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
