"""The fitting engine: multi-start screening, L-BFGS-B refinement, VPNLS, bootstrap CIs.

scikit-learn style::

    fit = LawFit("chinchilla").fit(df, df["loss"], columns={"N": "Model Size", "D": "tokens"})
    fit.natural_["alpha"], fit.objective_value_, fit.n_reached_best_
    fit.bootstrap(4000, seed=42, derived=chinchilla_derived([5.88e23]))
    fit.to_dataset()      # parameters, draws, derived quantities, the (Mis)Fitting checklist
    fit.summary()         # the same, flat (one JSON/CSV row)

Optimisation: every start of the grid is evaluated in one vectorised call; the ``top_k`` best
are refined with ``scipy.optimize.minimize(method="L-BFGS-B")`` using the form's analytic
gradient; the lowest objective wins and ``n_reached_best_`` says how many refined starts reached
it (within ``reach_rtol``). Refining every start, as Epoch's notebook does, reaches the same
optimum ~100× slower (``benchmarks/bench_fitting.py``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, sparse

from scaling_atlas.laws.forms import LawForm, get_form, optimal_allocation
from scaling_atlas.laws.objectives import Objective
from scaling_atlas.laws.parallel import worker_pool


#: Bootstrap refits start at the full-data optimum, where a summed log-Huber objective of ~1e-3
#: has a gradient below scipy's default gtol (1e-5) and L-BFGS-B's ftol test, relative to
#: max(|f|, 1), is effectively absolute: with defaults the refit returns its start and the CIs
#: collapse. Each refit therefore sees the objective divided by its full-data value (f ≈ 1),
#: which makes scipy's default tolerances relative ones (see ``_start_scale``).
BOOTSTRAP_SCALING = "objective divided by its full-data optimum inside L-BFGS-B; scipy defaults"


class FitDataError(ValueError):
    """The data cannot be fitted as given; the message names the problem and the rows."""


class FitWarning(UserWarning):
    """The fit ran, but the data barely determine it (e.g. as many points as parameters)."""


def _rows(labels, mask, limit=8) -> str:
    bad = [str(label) for label in np.asarray(labels)[mask]]
    more = f" … ({len(bad)} rows)" if len(bad) > limit else ""
    return ", ".join(bad[:limit]) + more


#: Start × point cells evaluated at once while screening (32 MiB per float array).
_BLOCK = 1 << 22


def _aligned(values, X, what):
    """``values`` in the order of ``X``'s rows: pandas objects are matched by index label."""
    if isinstance(values, (pd.Series, pd.DataFrame)) and isinstance(X, pd.DataFrame):
        if isinstance(values, pd.DataFrame):
            if values.shape[1] != 1:
                raise FitDataError(f"the {what} is a table with {values.shape[1]} columns; "
                                   "pass one column")
            values = values.iloc[:, 0]
        if values.index.equals(X.index):
            return values
        if not X.index.is_unique or not values.index.is_unique:
            raise FitDataError(f"the {what} and X have different indexes and one of them has "
                               "repeated labels: they cannot be matched row by row")
        extra = values.index.difference(X.index)
        absent = X.index.difference(values.index)
        if len(extra) or len(absent):
            raise FitDataError(
                f"the {what}'s index does not match X's: rows missing from the {what}: "
                f"{_rows(absent, np.ones(len(absent), bool))}; rows not in X: "
                f"{_rows(extra, np.ones(len(extra), bool))} (pass aligned data or plain arrays)"
            )
        return values.reindex(X.index)
    return values


def _numeric(values, name, labels) -> np.ndarray:
    """A float array of ``values``; text, dates, durations and complex numbers are refused,
    naming the column and the first offending rows."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise FitDataError(f"{name} must be one value per point (got shape {array.shape})")
    if array.dtype.kind in "mM":
        raise FitDataError(f"column {name!r} holds dates or durations ({array.dtype}); convert "
                           "it to numbers in the unit you mean")
    if array.dtype.kind == "c":
        raise FitDataError(f"column {name!r} holds complex numbers; a law is fitted to real ones")
    if array.dtype.kind in "fiub":
        return array.astype(float)
    out = np.empty(len(array))
    bad = np.zeros(len(array), bool)
    for i, value in enumerate(array):
        if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)) or value is None:
            out[i] = np.nan if value is None else float(value)
        else:
            bad[i] = True
    if bad.any():
        rows = labels if labels is not None and len(labels) == len(array) else np.arange(len(array))
        first = array[bad][0]
        raise FitDataError(f"non-numeric value(s) in column {name!r}, row(s) {_rows(rows, bad)} "
                           f"(e.g. {first!r}); the law needs numbers")
    return out


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1



#: every variable and coordinate of ``LawFit.to_dataset()``: name → (long_name, units); a long
#: name may cite the fit's attributes (``{objective_space}``). Studies that store a fit describe
#: it with this table.
LAWFIT_VARIABLES = {
    "estimate": ("best-fit value", "1"),
    "theta": ("fitted vector in the optimiser's parametrisation", "1"),
    "ci_low": ("lower CI bound", "1"),
    "ci_high": ("upper CI bound", "1"),
    "draws": ("bootstrap refit", "1"),
    "draws_theta": ("bootstrap refit in the optimiser's parametrisation", "1"),
    "derived": ("derived quantity at the best fit", "1"),
    "derived_ci_low": ("lower CI bound of the derived quantity", "1"),
    "derived_ci_high": ("upper CI bound of the derived quantity", "1"),
    "derived_draws": ("derived quantity of each bootstrap refit", "1"),
    "refined_theta": ("refined start's optimum, optimiser's parametrisation", "1"),
    "refined_objective": ("objective at each refined optimum", "1"),
    "residual": ("residual in {objective_space} space", "1"),
    "parameter": ("natural parameter of the law", "1"),
    "fit_parameter": ("parameter in the optimiser's parametrisation", "1"),
    "quantity": ("quantity derived from the parameters", "1"),
    "draw": ("bootstrap resample", "1"),
    "refined_start": ("grid start refined by L-BFGS-B", "1"),
}

#: what VPNLS minimises, by construction: least squares in linear loss space, summed
VPNLS_OBJECTIVE = Objective("mse", space="linear", reduction="sum")

@dataclass
class LawFit:
    """Fit one law form to data. Parameters are set at construction, results after ``fit``.

    form: a registered name (``get_form``) or a ``LawForm`` instance.
    objective: an ``Objective``; None (default) takes the solver's own: log-Huber, δ = 1e−3,
        summed for L-BFGS-B, least squares in linear space for VPNLS (``fit_objective`` says
        which; VPNLS refuses any other).
    starts: None (the form's default grid), an (S, P) array, or a dict of per-parameter values
        (their product).
    top_k: how many of the best grid starts L-BFGS-B refines.
    screen_points: above this many points, the start grid is screened and the ``top_k`` starts
        refined on a fixed, seeded subsample of this many points; the ``final_k`` best distinct
        results are then refined on every point (the result says so). None screens on all.
    final_k: how many subsample optima are refined on all points.
    solver: ``lbfgsb`` or ``vpnls`` (variable projection: linear coefficients by NNLS for fixed
        exponents; least squares in linear space; forms with ``linear_basis``).
    bounds: per-parameter (lower, upper) overriding the form's.
    nan_policy: ``raise`` (default) or ``drop`` (dropped rows are counted in the result).
    options: L-BFGS-B options (scipy's defaults unless given). The defaults stop once the
        objective (scaled to 1 at the start) changes by less than ~2e-9 per step: enough for the
        published estimates, but a parameter along a flat direction stops early (e.g. an offset
        E heading for its bound of 0 stops at 3.7e-6 where 1e-11 is reachable). Pass
        ``options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 50_000}`` when the exact value of
        such a parameter matters: a claim that the offset is zero, ``parameters_at_bound``, or
        a fit that ``summary()`` says is weakly determined.
    derived: a function of the natural-parameter dict giving derived quantities (e.g.
        ``chinchilla_derived([5.88e23])``); ``bootstrap(derived=...)`` overrides it.
    scale_objective: refine each start on the objective divided by its value there, so that
        scipy's tolerances act relatively (False reproduces plain scipy on the raw objective).
    bookkeeping: how quantities were counted and selected (e.g. ``{"N": "with embeddings"}``);
        copied into the result's attributes, as the (Mis)Fitting checklist asks.
    """

    form: str | LawForm
    objective: Objective | None = None
    starts: np.ndarray | dict | None = None
    top_k: int = 32
    screen_points: int | None = 20_000
    final_k: int = 4
    solver: str = "lbfgsb"
    bounds: dict | None = None
    nan_policy: str = "raise"
    options: dict = field(default_factory=dict)
    reach_rtol: float = 1e-6
    bookkeeping: dict = field(default_factory=dict)
    scale_objective: bool = True
    derived: Callable[[dict], dict] | None = None

    def __post_init__(self):
        """Checks the settings and changes none of them (the fitted state comes from ``fit``)."""
        law = self.law_form
        if self.solver not in ("lbfgsb", "vpnls"):
            raise ValueError(f"unknown solver {self.solver!r}; use 'lbfgsb' or 'vpnls'")
        if self.nan_policy not in ("raise", "drop"):
            raise ValueError(f"nan_policy must be 'raise' or 'drop', got {self.nan_policy!r}")
        if self.solver == "vpnls":
            if not hasattr(law, "linear_basis"):
                raise ValueError(f"form {law.name!r} has no linear part; VPNLS needs one")
            if self.objective is not None and self.objective != VPNLS_OBJECTIVE:
                raise ValueError(f"VPNLS minimises least squares in linear loss space, not "
                                 f"{self.objective}; leave objective unset or use the lbfgsb "
                                 "solver for another objective")
        unknown = set(self.bounds or {}) - set(law.param_names)
        if unknown:
            raise ValueError(f"bounds for unknown parameter(s) {sorted(unknown)} of form "
                             f"{law.name!r} ({', '.join(law.param_names)})")

    @property
    def law_form(self) -> LawForm:
        """The form object of ``form`` (a registered name or a ``LawForm``)."""
        cached = self.__dict__.get("_law_form")
        if cached is None or cached[0] is not self.form:
            cached = (self.form, get_form(self.form))
            self.__dict__["_law_form"] = cached
        return cached[1]

    @property
    def fit_objective(self) -> Objective:
        """The objective minimised: ``objective``, else the solver's own (log-Huber δ = 1e−3
        summed for L-BFGS-B; least squares in linear space for VPNLS)."""
        if self.objective is not None:
            return self.objective
        return VPNLS_OBJECTIVE if self.solver == "vpnls" else Objective()

    # ---- data ----------------------------------------------------------------------------------
    def _prepare(self, X, y, weights=None, groups=None, columns=None):
        """Arrays of the form's variables and the target, after the bad-input checks.

        A pandas target (or weights) is matched to a DataFrame ``X`` by index label, never by
        position: a shuffled Series is realigned, one with other labels is refused.
        """
        form = self.law_form
        columns = columns or {}
        labels = X.index.to_numpy() if isinstance(X, pd.DataFrame) else None
        missing = [v for v in form.variables if columns.get(v, v) not in X]
        if missing:
            raise FitDataError(
                f"missing column(s) {missing} for form {form.name!r} (it needs "
                f"{', '.join(form.variables)}; map other names with columns={{...}})"
            )
        arrays = {v: _numeric(X[columns.get(v, v)], columns.get(v, v), labels)
                  for v in form.variables}
        n = len(next(iter(arrays.values())))
        if labels is None:
            labels = np.arange(n)
        target_name = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "target"
        y = _numeric(_aligned(y, X, "target"), target_name, labels)
        if any(len(a) != len(y) for a in arrays.values()):
            raise FitDataError(f"the variables have {n} rows and the target {len(y)}: "
                               "they must have one value per point")
        finite = np.isfinite(y) & np.all([np.isfinite(a) for a in arrays.values()], axis=0)
        w = None
        if weights is not None:
            w = _numeric(_aligned(weights, X, "weights"), "weights", labels)
            if len(w) != len(y):
                raise FitDataError(f"{len(w)} weights for {len(y)} points: give one weight "
                                   "per point")
            bad = ~np.isfinite(w)
            if bad.any():
                raise FitDataError(f"NaN or infinite weight in row(s) {_rows(labels, bad)}")
            bad = w < 0
            if bad.any():
                raise FitDataError(f"negative weight in row(s) {_rows(labels, bad)}; weights "
                                   "must be ≥ 0")
        dropped = []
        if not finite.all():
            if self.nan_policy == "raise":
                raise FitDataError(
                    f"NaN or infinite values in row(s) {_rows(labels, ~finite)}; clean them or "
                    "pass nan_policy='drop' (dropped rows are counted in the result)"
                )
            dropped = [str(x) for x in labels[~finite]]
        keep = finite
        for v in form.positive():
            bad = keep & ~(arrays[v] > 0)
            if bad.any():
                named = "" if columns.get(v, v) == v else f" (column {columns[v]!r})"
                raise FitDataError(f"non-positive {v}{named} in row(s) {_rows(labels, bad)}")
        if self.fit_objective.space == "log":
            bad = keep & ~(y > 0)
            if bad.any():
                raise FitDataError(f"non-positive target in row(s) {_rows(labels, bad)} "
                                   "(a log-space objective needs a positive target)")
        if self.fit_objective.space == "loglog":
            bad = keep & ~((y > 0) & (y < 1))
            if bad.any():
                raise FitDataError(f"target outside (0, 1) in row(s) {_rows(labels, bad)} "
                                   "(the loglog space takes ln(−ln y) of probabilities)")
        if w is not None:
            keep = keep & (w > 0)  # a zero weight is a point left out
        n_kept, n_params = int(keep.sum()), len(form.params)
        if n_kept < n_params:
            raise FitDataError(
                f"{n_kept} usable points for {n_params} parameters of form "
                f"{form.name!r}: fewer points than parameters"
            )
        arrays = {v: a[keep] for v, a in arrays.items()}
        distinct = len(np.unique(np.column_stack([arrays[v] for v in form.variables]), axis=0))
        if distinct < min(n_params, 2):
            raise FitDataError(
                f"all {n_kept} usable points have the same {', '.join(form.variables)}: a law "
                "in them cannot be fitted"
            )
        if distinct < n_params:
            raise FitDataError(
                f"{n_kept} points at {distinct} distinct value(s) of "
                f"{', '.join(form.variables)} for {n_params} parameters of form {form.name!r}: "
                "the parameters are not determined (need more points than parameters, at "
                "distinct values)"
            )
        w = None if w is None else w[keep]
        g = None if groups is None else np.asarray(groups)[keep]
        return arrays, y[keep], w, g, dropped, distinct

    def _start_grid(self) -> np.ndarray:
        starts = self.starts
        if starts is None:
            starts = self.law_form.default_starts()
        elif isinstance(starts, dict):
            from scaling_atlas.laws.forms import grid

            missing = [p for p in self.law_form.param_names if p not in starts]
            if missing:
                raise ValueError(f"starts lack parameter(s) {missing}")
            starts = grid(**{p: np.atleast_1d(starts[p]) for p in self.law_form.param_names})
        starts = np.atleast_2d(np.asarray(starts, float))
        if starts.shape[1] != len(self.law_form.params):
            raise ValueError(f"starts have {starts.shape[1]} columns; form {self.law_form.name!r} "
                             f"has {len(self.law_form.params)} parameters")
        lower, upper = np.array(self.fit_bounds).T
        inside = np.all((starts >= lower) & (starts <= upper), axis=1)
        if not inside.any():
            raise ValueError(
                f"the bounds {dict(zip(self.law_form.param_names, self.fit_bounds))} exclude every "
                f"one of the {len(starts)} starts; widen the bounds or pass starts inside them"
            )
        return starts[inside]

    @property
    def fit_bounds(self) -> list[tuple[float, float]]:
        bounds = dict(zip(self.law_form.param_names, self.law_form.bounds))
        bounds.update(self.bounds or {})
        return [bounds[p] for p in self.law_form.param_names]

    # ---- objective -----------------------------------------------------------------------------
    def _jacobian(self, theta, X):
        jac = self.law_form.jacobian(theta, X)
        if jac is not None:
            return jac
        # central differences for all parameters in one vectorised call
        K, P = theta.shape
        step = 1e-6 * np.maximum(1.0, np.abs(theta))
        shifted = np.repeat(theta[:, None, :], 2 * P, axis=1)
        for p in range(P):
            shifted[:, 2 * p, p] += step[:, p]
            shifted[:, 2 * p + 1, p] -= step[:, p]
        pred = self.law_form.predict(shifted.reshape(K * 2 * P, P), X).reshape(K, 2 * P, -1)
        return np.stack([(pred[:, 2 * p] - pred[:, 2 * p + 1]) / (2 * step[:, p : p + 1])
                         for p in range(P)], axis=-1)

    def _objective_values(self, theta, X, y, w, delta=None):
        with np.errstate(all="ignore"):
            r = self.fit_objective.residuals(self.law_form.predict(theta, X), y)
            values = self.fit_objective.value(r, w, delta)
        return np.where(np.isfinite(values), values, np.inf)

    def _value_and_grad(self, theta_1d, X, y, w, delta=None, scale=1.0):
        theta = theta_1d[None, :]
        with np.errstate(all="ignore"):
            pred, jac = self.law_form.predict_and_jacobian(theta, X)
            if jac is None:
                jac = self._jacobian(theta, X)
            r = self.fit_objective.residuals(pred, y)
            value, slope = self.fit_objective.value_and_slope(r, w, delta)
            jac = jac[0] * self.fit_objective.transform_slope(pred[0])[:, None]
            grad = slope[0] @ jac
        if not np.isfinite(value[0]) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(theta_1d)
        return float(value[0]) * scale, grad * scale

    def _refine(self, start, X, y, w, options=None, scale=1.0):
        """One L-BFGS-B descent; for MAE, Huber/δ with δ annealed, then exact L1 polishing.

        ``scale`` multiplies the objective inside the optimiser only (results are unscaled).
        """
        deltas = [None]
        if self.fit_objective.loss == "mae":
            deltas = [self.fit_objective.delta * 10.0**-i for i in range(0, 3)]
        x, result = np.asarray(start, float), None
        unit = self._parameter_units(x, X) if self.scale_objective else np.ones_like(x)
        bounds = [(lo / u, hi / u) for (lo, hi), u in zip(self.fit_bounds, unit)]

        def in_units(z, *args):
            value, grad = self._value_and_grad(z * unit, *args)
            return value, grad * unit

        for delta in deltas:
            result = optimize.minimize(
                in_units, x / unit, args=(X, y, w, delta, scale), jac=True,
                method="L-BFGS-B", bounds=bounds, options=options or self.options or None,
            )
            result.x = result.x * unit
            x = result.x
            result.fun = result.fun / scale
        if self.fit_objective.loss == "mae":
            result = self._polish_l1(result, X, y, w)
        return result

    def _polish_l1(self, result, X, y, w, max_iter=200):
        """Exact least absolute deviations by sequential linear programming in a trust region.

        The L1 optimum sits on a kink (as many zero residuals as parameters), where gradient
        methods stall; linearising the residuals and solving Σ w|r + Jδ| → min as an LP
        (HiGHS) lands on it.
        """
        theta = result.x.copy()
        n, P = len(y), len(theta)
        weights = np.ones(n) if w is None else w
        lower, upper = np.array(self.fit_bounds, float).T
        radius = 0.1 * np.maximum(1.0, np.abs(theta))

        def l1(t):
            with np.errstate(all="ignore"):
                r = self.fit_objective.residuals(self.law_form.predict(t[None, :], X), y)[0]
            value = float(np.sum(weights * np.abs(r)))
            return (value if np.isfinite(value) else np.inf), r

        value, r = l1(theta)
        cost = np.concatenate([np.zeros(P), weights])
        for _ in range(max_iter):
            pred = self.law_form.predict(theta[None, :], X)[0]
            jac = self._jacobian(theta[None, :], X)[0] * self.fit_objective.transform_slope(pred)[:, None]
            # variables (δ, s): minimise Σ w·s  subject to  −s ≤ r + Jδ ≤ s
            eye = sparse.identity(n, format="csr")
            a_ub = sparse.bmat([[sparse.csr_matrix(jac), -eye], [sparse.csr_matrix(-jac), -eye]])
            b_ub = np.concatenate([-r, r])
            step_bounds = [(max(-rad, lo - t), min(rad, hi - t))
                           for rad, lo, hi, t in zip(radius, lower, upper, theta)]
            lp = optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=step_bounds + [(0, None)] * n,
                                  method="highs")
            if lp.status != 0:
                break
            step = lp.x[:P]
            predicted = value - lp.fun
            new_value, new_r = l1(theta + step)
            actual = value - new_value
            if predicted <= 1e-15 * max(value, 1e-300):
                break
            if actual > 0.25 * predicted:
                theta, value, r = theta + step, new_value, new_r
                if actual > 0.75 * predicted:
                    radius *= 2.0
            else:
                radius *= 0.25
            if np.all(radius < 1e-12 * np.maximum(1.0, np.abs(theta))):
                break
        scale = 1.0 / n if self.fit_objective.reduction == "mean" else 1.0
        return optimize.OptimizeResult(x=theta, fun=value * scale, success=True,
                                       message="L1 polished by sequential linear programming")

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, X, y, weights=None, groups=None, columns=None, excluded: str = "") -> "LawFit":
        """Fit to variables ``X`` (DataFrame or dict of arrays) and target ``y``.

        columns: map a form variable to a differently named column, e.g. ``{"N": "params"}``.
        groups: run/group labels for ``bootstrap(by="groups")``.
        excluded: which points were removed before the call and why (kept in the attributes).
        """
        Xa, ya, w, g, dropped, n_distinct = self._prepare(X, y, weights, groups, columns)
        self.X_, self.y_, self.weights_, self.groups_ = Xa, ya, w, g
        self.n_points_, self.n_dropped_nan_, self.dropped_rows_ = len(ya), len(dropped), dropped
        self.excluded_ = excluded
        self.degrees_of_freedom_ = self.n_points_ - len(self.law_form.params)
        self.fit_warnings_ = []
        if self.degrees_of_freedom_ == 0 or n_distinct == len(self.law_form.params):
            self.fit_warnings_.append(
                f"{self.n_points_} points at {n_distinct} distinct values of "
                f"{', '.join(self.law_form.variables)} for {len(self.law_form.params)} parameters: the law can "
                "pass through the distinct points exactly; nothing is left to test it, and its CIs "
                "mean little")
        for text in self.fit_warnings_:
            warnings.warn(text, FitWarning, stacklevel=2)
        if self.solver == "vpnls":
            self._fit_vpnls(Xa, ya, w)
        else:
            self._fit_multistart(Xa, ya, w)
        self._finish()
        return self

    def _screen(self, starts, X, y, w) -> np.ndarray:
        """The objective at every start, in blocks of at most ``_BLOCK`` start × point cells
        (memory linear in the points, whatever the number of starts)."""
        per_block = max(1, _BLOCK // max(len(y), 1))
        return np.concatenate([self._objective_values(starts[i : i + per_block], X, y, w)
                               for i in range(0, len(starts), per_block)])

    def _fit_multistart(self, X, y, w):
        starts = self._start_grid()
        n = len(y)
        sub = None
        if self.screen_points is not None and n > self.screen_points:
            sub = np.sort(np.random.default_rng(0).choice(n, self.screen_points, replace=False))
        Xs, ys, ws = (X, y, w) if sub is None else (
            {v: a[sub] for v, a in X.items()}, y[sub], None if w is None else w[sub])
        screened = self._screen(starts, Xs, ys, ws)
        order = np.argsort(screened, kind="stable")
        order = order[np.isfinite(screened[order])][: self.top_k]
        if len(order) == 0:
            raise FitDataError("the objective is not finite at any start; check the data's scale "
                               "and the form's bounds")
        results = [self._refine(starts[i], Xs, ys, ws, scale=self._start_scale(screened[i]))
                   for i in order]
        n_refined = len(results)
        if sub is not None:
            # the best distinct subsample optima, refined on every point
            ranked = sorted(results, key=lambda r: r.fun)
            chosen = []
            for r in ranked:
                if not any(np.allclose(r.x, c.x, rtol=1e-4, atol=1e-6) for c in chosen):
                    chosen.append(r)
                if len(chosen) == self.final_k:
                    break
            results = []
            for r in chosen:
                value = float(self._objective_values(r.x[None, :], X, y, w)[0])
                results.append(self._refine(r.x, X, y, w, scale=self._start_scale(value)))
        values = np.array([r.fun for r in results])
        best = int(np.argmin(values))
        self.n_starts_, self.n_refined_ = len(starts), n_refined
        self.refined_objectives_ = values
        self.refined_thetas_ = np.array([r.x for r in results])
        # reached = within reach_rtol of the best, or within 1e-12 absolute when the fit is exact
        self.n_reached_best_ = int(np.sum(values <= values[best] * (1 + self.reach_rtol) + 1e-12))
        self.theta_ = results[best].x
        self.converged_, self.message_ = bool(results[best].success), str(results[best].message)
        self.screen_points_ = n if sub is None else len(sub)
        self.initialisation_ = (
            f"{len(starts)} starts ({'form default grid' if self.starts is None else 'user grid'}) "
            f"evaluated; best {n_refined} refined with L-BFGS-B"
        )
        if sub is not None:
            self.initialisation_ += (
                f" on a seeded subsample of {len(sub)} of the {n} points; the {len(results)} best "
                "distinct optima then refined on every point"
            )

    def _parameter_units(self, theta, X) -> np.ndarray:
        """Per-parameter units 1/‖∂r/∂θ_j‖ at the start: L-BFGS-B then sees parameters whose
        gradients are comparable. Without them, e.g. an exponential rate ~1e-3 against times
        ~1e4 differs from the intercept by 10⁷ in gradient and the first line search fails."""
        with np.errstate(all="ignore"):
            pred = self.law_form.predict(theta[None, :], X)[0]
            jac = self._jacobian(theta[None, :], X)[0] * self.fit_objective.transform_slope(pred)[:, None]
            norms = np.linalg.norm(jac, axis=0)
        ok = np.isfinite(norms) & (norms > 0)
        unit = np.ones_like(theta)
        unit[ok] = 1.0 / norms[ok]
        return unit / np.exp(np.mean(np.log(unit)))  # keep the overall scale near 1

    def _start_scale(self, value_at_start: float) -> float:
        """L-BFGS-B's ftol test is relative to max(|f|, 1): on a summed log-Huber objective of
        ~1e-3 it is effectively absolute and stops early on flat valleys. Dividing the objective
        by its value at the start (f ≈ 1 there) makes scipy's default tolerances relative."""
        if not self.scale_objective or not value_at_start > 0:
            return 1.0
        return 1.0 / value_at_start

    def _fit_vpnls(self, X, y, w):
        """Variable projection: NNLS for the linear coefficients, search over the exponents."""
        form = self.law_form
        sqrt_w = np.ones_like(y) if w is None else np.sqrt(w)

        def profile(theta_nl):
            basis = form.linear_basis(np.atleast_1d(theta_nl), X)
            coefs, rnorm = optimize.nnls(basis * sqrt_w[:, None], y * sqrt_w)
            return 0.5 * rnorm**2, coefs

        nl_grid = form.nonlinear_grid()
        values = np.array([profile(t)[0] for t in nl_grid])
        best_start = nl_grid[int(np.argmin(values))]
        result = optimize.minimize(lambda t: profile(t)[0], best_start, method="Nelder-Mead",
                                   options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 20000})
        value, coefs = profile(result.x)
        self.theta_ = form.from_linear(np.atleast_1d(result.x), coefs)
        self.n_starts_, self.n_refined_, self.n_reached_best_ = len(nl_grid), 1, 1
        self.refined_objectives_ = np.array([value])
        self.refined_thetas_ = self.theta_[None, :].copy()
        self.converged_, self.message_ = bool(result.success), str(result.message)
        self.initialisation_ = (f"VPNLS: {len(nl_grid)}-point grid over the exponents, NNLS for "
                                "the linear coefficients, Nelder-Mead refinement")

    def _finish(self):
        theta = self.theta_[None, :]
        self.params_ = dict(zip(self.law_form.param_names, map(float, self.theta_)))
        self.natural_ = {k: float(v[0]) for k, v in self.law_form.natural(theta).items()}
        self.objective_value_ = float(self._objective_values(theta, self.X_, self.y_, self.weights_)[0])
        pred = self.law_form.predict(theta, self.X_)[0]
        self.residuals_ = self.fit_objective.residuals(pred[None, :], self.y_)[0]
        self.standard_errors_ = self._gauss_newton_se(pred)
        self.draws_ = None
        self.derived_fn_ = self.derived
        self._identifiability(pred)
        for text in self.identifiability_warnings_:
            warnings.warn(text, FitWarning, stacklevel=3)

    #: a scaled Jacobian whose condition number exceeds this is rank-deficient in practice:
    #: some direction of the parameters leaves every prediction unchanged
    NOT_IDENTIFIED_CONDITION = 1e8
    #: above this, ``summary()`` names the weakly determined directions
    WEAK_CONDITION = 1e4
    #: refined starts whose objective is within this factor of the best are "near-optimal"
    NEAR_OPTIMAL = 1.01

    def _identifiability(self, pred):
        """What the data determine: distinct values per variable, the condition number of the
        Jacobian (columns scaled to unit norm, so units do not matter) and its weakly
        determined directions, and the spread of the near-optimal refined starts."""
        names = self.law_form.param_names
        self.distinct_values_ = {v: int(len(np.unique(a))) for v, a in self.X_.items()}
        problems = []
        for var, need in self.law_form.min_distinct.items():
            have = self.distinct_values_.get(var)
            if have is not None and have < need:
                problems.append(f"{var} has {have} distinct value(s); form {self.law_form.name!r} needs "
                                f"{need} to determine the parameters acting through {var}")
        with np.errstate(all="ignore"):
            jac = self._jacobian(self.theta_[None, :], self.X_)[0]
            jac = jac * self.fit_objective.transform_slope(pred)[:, None]
            if self.weights_ is not None:
                jac = jac * np.sqrt(self.weights_)[:, None]
        norms = np.linalg.norm(jac, axis=0)
        self.weak_directions_ = []
        if not np.all(np.isfinite(jac)):
            self.condition_number_ = math.nan
            problems.append("the Jacobian is not finite at the optimum")
        elif np.any(norms == 0):
            self.condition_number_ = math.inf
            dead = [n for n, x in zip(names, norms) if x == 0]
            self.weak_directions_ = [f"{n} (no effect on any prediction)" for n in dead]
            problems.append(f"parameter(s) {', '.join(dead)} change no prediction")
        else:
            _, sing, vt = np.linalg.svd(jac / norms, full_matrices=False)
            self.condition_number_ = float(sing[0] / sing[-1]) if sing[-1] > 0 else math.inf
            for value, vector in zip(sing, vt):
                if value > 0 and sing[0] / value <= self.WEAK_CONDITION:
                    continue
                vector = vector / vector[np.argmax(np.abs(vector))]
                terms = " ".join(f"{'−' if c < 0 else '+'} {abs(c):.2f}·{n}"
                                 for c, n in zip(vector, names) if abs(c) >= 0.05)
                terms = terms[2:] if terms.startswith("+ ") else "−" + terms[2:]
                self.weak_directions_.append(
                    f"{terms} (singular value {value / sing[0]:.1e} of the largest)")
            if not self.condition_number_ <= self.NOT_IDENTIFIED_CONDITION:
                problems.append(
                    f"the scaled Jacobian's condition number is {self.condition_number_:.2g} "
                    f"(> {self.NOT_IDENTIFIED_CONDITION:.0e}): the data do not determine "
                    f"the direction {self.weak_directions_[-1]}")
        near = self.refined_objectives_ <= self.refined_objectives_.min() * self.NEAR_OPTIMAL + 1e-12
        near_thetas = self.refined_thetas_[near]
        natural = self.law_form.natural(near_thetas)
        self.n_near_optimal_ = int(near.sum())
        self.near_optimal_range_ = {k: (float(np.min(v)), float(np.max(v))) for k, v in natural.items()}
        self.identified_ = not problems
        self.identifiability_warnings_ = [] if not problems else [
            f"the fit is not identified: {'; '.join(problems)}. Its estimates are one point of a "
            f"flat valley (over the {self.n_near_optimal_} refined starts within 1 % of the best "
            "objective: " + ", ".join(f"{k} {lo:.4g}–{hi:.4g}"
                                      for k, (lo, hi) in self.near_optimal_range_.items())
            + "); derived quantities are left undefined"]

    def _gauss_newton_se(self, pred) -> dict[str, float]:
        """Asymptotic SEs for least-squares fits, s²(JᵀJ)⁻¹; NaN for other objectives."""
        names = self.law_form.param_names
        dof = self.n_points_ - len(names)
        if self.fit_objective.loss != "mse" or dof <= 0:
            return dict.fromkeys(names, math.nan)
        jac = self._jacobian(self.theta_[None, :], self.X_)[0]
        jac = jac * self.fit_objective.transform_slope(pred)[:, None]
        s2 = float(np.sum(self.residuals_**2)) / dof
        try:
            cov = np.linalg.inv(jac.T @ jac) * s2
        except np.linalg.LinAlgError:
            return dict.fromkeys(names, math.nan)
        return dict(zip(names, np.sqrt(np.clip(np.diag(cov), 0, None))))

    # ---- prediction ----------------------------------------------------------------------------
    def predict(self, X, columns=None) -> np.ndarray:
        columns = columns or {}
        arrays = {v: np.asarray(X[columns.get(v, v)], float) for v in self.law_form.variables}
        return self.law_form.predict(self.theta_[None, :], arrays)[0]

    def predict_interval(self, X=None, columns=None, *, C=None, level: float | None = None,
                         noise: bool = True, seed: int = 0) -> pd.DataFrame:
        """Predictions with an interval that combines the parameter bootstrap and the residual
        scatter (observation noise), after ``bootstrap``.

        For every bootstrap draw θ_b the prediction at each point is carried into the fit's
        space, a residual drawn from the fit's own (centred, inflated by √(n/(n−p))) is added,
        and the result carried back; the interval is the central ``level`` of those values
        (default: the bootstrap's level). ``param_low``/``param_high`` is the parameter part
        alone (``noise=False`` makes it the whole interval).

        ``C=`` instead of ``X`` predicts at compute-optimal allocations (forms with A, B, α, β,
        such as Chinchilla): N_opt and D_opt are found per draw, so the interval includes the
        allocation's uncertainty; the table then has ``N`` and ``D`` at the best fit.
        """
        if getattr(self, "draws_theta_", None) is None or self.draws_ is None:
            raise ValueError("predict_interval needs bootstrap draws: call fit(...).bootstrap(...) "
                             "first")
        level = self.ci_level_ if level is None else float(level)
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        draws = self.draws_theta_[np.all(np.isfinite(self.draws_theta_), axis=1)]
        if C is not None:
            natural = self.law_form.natural(np.vstack([self.theta_[None, :], draws]))
            if not self.law_form.has_allocation:
                raise ValueError(f"predicting at a compute budget needs a form with A, B, α, β "
                                 f"(like chinchilla); {self.law_form.name!r} has "
                                 f"{', '.join(natural)}")
            budgets = np.atleast_1d(np.asarray(C, float))
            beta = natural.get("beta", natural["alpha"])
            n_opt, d_opt, _ = optimal_allocation(natural["A"][:, None], natural["B"][:, None],
                                                 natural["alpha"][:, None], beta[:, None],
                                                 budgets[None, :])
            with np.errstate(all="ignore"):
                values = np.array([self.law_form.predict(t[None, :], {"N": n, "D": d})[0]
                                   for t, n, d in zip(np.vstack([self.theta_[None, :], draws]),
                                                      n_opt, d_opt)])
            best, values = values[0], values[1:]
            table = pd.DataFrame({"C": budgets, "N": n_opt[0], "D": d_opt[0]})
        else:
            columns = columns or {}
            arrays = {v: np.atleast_1d(np.asarray(X[columns.get(v, v)], float))
                      for v in self.law_form.variables}
            with np.errstate(all="ignore"):
                best = self.law_form.predict(self.theta_[None, :], arrays)[0]
                values = self.law_form.predict(draws, arrays)
            table = pd.DataFrame(arrays)
        tail = 100 * (1 - level) / 2
        with np.errstate(all="ignore"):
            param_low, param_high = np.nanpercentile(values, [tail, 100 - tail], axis=0)
            total = values
            if noise:
                rng = np.random.default_rng(seed)
                pool = self.residuals_ - np.mean(self.residuals_)
                pool = pool * math.sqrt(self.n_points_ / max(self.degrees_of_freedom_, 1))
                eps = rng.choice(pool, size=values.shape, replace=True)
                total = self.fit_objective.inverse_transform(self.fit_objective.transform(values) + eps)
            low, high = np.nanpercentile(total, [tail, 100 - tail], axis=0)
        table["prediction"] = best
        table["low"], table["high"] = low, high
        table["param_low"], table["param_high"] = param_low, param_high
        table.attrs.update(level=level, n_draws=len(draws), noise=(
            f"residuals of the fit in {self.fit_objective.space} space, resampled, centred and "
            "inflated by √(n/(n−p))" if noise else "none (parameter uncertainty only)"))
        return table

    # ---- uncertainty ---------------------------------------------------------------------------
    def bootstrap(self, n_resamples: int = 4000, by: str = "points", seed: int = 42,
                  n_jobs: int | None = None, ci: float = 0.95,
                  derived: Callable[[dict], dict] | None = None,
                  progress: bool = False) -> "LawFit":
        """Non-parametric bootstrap: resample points (or whole groups/runs), refit each resample
        from the best fit (one L-BFGS-B descent, as Epoch), percentile CIs.

        Index draws are made up front from one seeded generator, so the result does not depend
        on ``n_jobs`` (default: every available core). ``progress`` shows a progress bar on
        stderr.
        """
        if by not in ("points", "groups"):
            raise ValueError(f"bootstrap by must be 'points' or 'groups', got {by!r}")
        if by == "groups" and self.groups_ is None:
            raise ValueError("bootstrap(by='groups') needs fit(..., groups=...)")
        rng = np.random.default_rng(seed)
        n = self.n_points_
        if by == "points":
            samples = [rng.integers(0, n, n) for _ in range(n_resamples)]
        else:
            labels, inverse = np.unique(self.groups_, return_inverse=True)
            members = [np.nonzero(inverse == i)[0] for i in range(len(labels))]
            samples = [np.concatenate([members[j] for j in rng.integers(0, len(labels), len(labels))])
                       for _ in range(n_resamples)]
        n_jobs = n_jobs or _available_cpus()
        chunks = np.array_split(np.arange(n_resamples), max(1, min(n_jobs * 4, n_resamples)))
        tasks = [[samples[i] for i in chunk] for chunk in chunks]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_resamples, desc="bootstrap", unit="refit", file=sys.stderr)
        parts = []
        if n_jobs > 1 and n_resamples > 50:
            # workers get the fit without its derived-quantity function (a closure need not pickle)
            worker = copy.copy(self)
            worker.derived = worker.derived_fn_ = None
            with worker_pool(n_jobs) as pool:
                for part in pool.map(worker._refit_many, tasks):
                    parts.append(part)
                    if bar is not None:
                        bar.update(len(part))
        else:
            for task in tasks:
                parts.append(self._refit_many(task))
                if bar is not None:
                    bar.update(len(task))
        if bar is not None:
            bar.close()
        self.draws_theta_ = np.concatenate(parts)
        self.n_failed_draws_ = int(np.sum(~np.all(np.isfinite(self.draws_theta_), axis=1)))
        self.bootstrap_info_ = {"ci_method": f"percentile bootstrap over {by}",
                                "n_resamples": n_resamples, "seed": seed, "ci_level": ci,
                                "refit": "one L-BFGS-B descent from the full-data optimum, "
                                         + BOOTSTRAP_SCALING}
        self.derived_fn_ = derived or self.derived
        self.ci_level_ = ci
        self.draws_ = self.law_form.natural(self.draws_theta_)
        return self

    def _refit_many(self, samples):
        out = np.full((len(samples), len(self.theta_)), np.nan)
        for i, idx in enumerate(samples):
            X = {v: a[idx] for v, a in self.X_.items()}
            w = None if self.weights_ is None else self.weights_[idx]
            scale = 1.0 / max(self.objective_value_, 1e-300)
            result = self._refine(self.theta_, X, self.y_[idx], w, scale=scale)
            if np.isfinite(result.fun) and result.fun < 1e299:
                out[i] = result.x
        return out

    def derived_estimates(self, derived=None) -> dict[str, float]:
        """Derived quantities at the best fit. One that is undefined is NaN, and
        ``undefined_derived_`` says why (the fit not identified, a non-finite value)."""
        derived = derived or getattr(self, "derived_fn_", None)
        self.undefined_derived_ = {}
        if derived is None:
            return {}
        point = {k: np.array([v]) for k, v in self.natural_.items()}
        with np.errstate(all="ignore"):
            values = {k: float(np.asarray(v).ravel()[0]) for k, v in derived(point).items()}
        explain = getattr(derived, "explain", None)
        for name, value in values.items():
            if not getattr(self, "identified_", True):
                self.undefined_derived_[name] = "the fit is not identified (see fit_warnings)"
                values[name] = math.nan
            elif not math.isfinite(value):
                reason = explain(point, name) if explain else ""
                self.undefined_derived_[name] = reason or (
                    "not finite at the best fit (" + ", ".join(
                        f"{k} = {v:.4g}" for k, v in self.natural_.items()) + ")")
        return values

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Percentile CIs of every natural parameter and derived quantity (after ``bootstrap``)."""
        if self.draws_ is None:
            return {}
        tail = 100 * (1 - self.ci_level_) / 2
        draws = dict(self.draws_)
        if self.derived_fn_ is not None:
            draws.update(self.derived_fn_(self.draws_))
        return {k: tuple(np.nanpercentile(v, [tail, 100 - tail])) for k, v in draws.items()}

    def parameters_at_bound(self, rtol: float = 1e-6) -> list[str]:
        """Fitted parameters that ended on a finite bound (within ``rtol`` of it, relative to
        max(1, |bound|)): such an estimate is the bound's, not the data's."""
        out = []
        for name, value, (lo, hi) in zip(self.law_form.param_names, self.theta_, self.fit_bounds):
            for bound in (lo, hi):
                if math.isfinite(bound) and abs(value - bound) <= rtol * max(1.0, abs(bound)):
                    out.append(name)
                    break
        return out

    # ---- results -------------------------------------------------------------------------------
    def attributes(self) -> dict[str, str | int | float]:
        """What the (Mis)Fitting checklist asks a fit to report, as flat attributes."""
        obj = self.fit_objective
        attrs = {
            "form": self.law_form.name,
            "equation": self.law_form.equation,
            "variables": ", ".join(self.law_form.variables),
            "fitted_parameters": ", ".join(self.law_form.param_names),
            "objective": obj.loss,
            "objective_space": obj.space,
            "objective_delta": obj.delta if obj.loss in ("huber", "mae") else "n/a",
            "objective_reduction": obj.reduction,
            "objective_overestimate_weight": obj.overestimate_weight,
            "objective_value": self.objective_value_,
            "optimiser": ("scipy.optimize.minimize L-BFGS-B, analytic gradient"
                          if self.solver == "lbfgsb" else "VPNLS: scipy.optimize.nnls + Nelder-Mead"),
            "tolerances": (json.dumps(self.options) if self.options else "scipy defaults")
                          + ("; objective scaled to 1 at each start" if self.scale_objective else ""),
            "initialisation": self.initialisation_,
            "n_starts": self.n_starts_,
            "n_refined": self.n_refined_,
            "n_reached_best": self.n_reached_best_,
            "converged": int(self.converged_),
            "n_points": self.n_points_,
            "n_dropped_nan": self.n_dropped_nan_,
            "excluded_points": self.excluded_ or "none",
            "bounds": json.dumps({p: [str(lo), str(hi)] for p, (lo, hi)
                                  in zip(self.law_form.param_names, self.fit_bounds)}),
            "parameters_at_bound": ", ".join(self.parameters_at_bound()) or "none",
            "degrees_of_freedom": self.degrees_of_freedom_,
            "fit_warnings": "; ".join(self.fit_warnings_ + self.identifiability_warnings_) or "none",
            "n_reached_best_among": f"the {self.n_refined_} refined starts (the best of the grid), "
                                    "not the whole grid",
            "distinct_values": ", ".join(f"{k}: {v}" for k, v in self.distinct_values_.items()),
            "n_parameters": len(self.law_form.params),
            "condition_number": self.condition_number_,
            "weak_directions": "; ".join(self.weak_directions_) or "none",
            "identified": int(self.identified_),
            "n_near_optimal": self.n_near_optimal_,
            "near_optimal_range": json.dumps({k: [f"{lo:.6g}", f"{hi:.6g}"] for k, (lo, hi)
                                              in self.near_optimal_range_.items()}),
        }
        self.derived_estimates()
        attrs["undefined_derived"] = "; ".join(f"{k}: {v}" for k, v in
                                               self.undefined_derived_.items()) or "none"
        if self.draws_ is not None:
            attrs.update({k: str(v) for k, v in self.bootstrap_info_.items()})
            attrs["n_failed_draws"] = self.n_failed_draws_
        else:
            attrs["ci_method"] = "none"
        attrs.update({f"counting_{k}": str(v) for k, v in self.bookkeeping.items()})
        return attrs

    def to_dataset(self) -> xr.Dataset:
        """Estimates, CIs, bootstrap draws and derived quantities, with the checklist as attrs."""
        names = list(self.natural_)
        ds = xr.Dataset(coords={"parameter": names, "fit_parameter": self.law_form.param_names})
        ds["estimate"] = ("parameter", [self.natural_[k] for k in names])
        ds["theta"] = ("fit_parameter", self.theta_)
        derived = self.derived_estimates()
        if derived:
            ds = ds.assign_coords(quantity=list(derived))
            ds["derived"] = ("quantity", list(derived.values()))
        if self.draws_ is not None:
            ci = self.intervals()
            ds["ci_low"] = ("parameter", [ci[k][0] for k in names])
            ds["ci_high"] = ("parameter", [ci[k][1] for k in names])
            ds["draws"] = (("draw", "parameter"), np.column_stack([self.draws_[k] for k in names]))
            ds["draws_theta"] = (("draw", "fit_parameter"), self.draws_theta_)
            if derived:
                values = self.derived_fn_(self.draws_)
                ds["derived_ci_low"] = ("quantity", [ci[k][0] for k in derived])
                ds["derived_ci_high"] = ("quantity", [ci[k][1] for k in derived])
                ds["derived_draws"] = (("draw", "quantity"),
                                       np.column_stack([np.asarray(values[k]) for k in derived]))
        ds["refined_theta"] = (("refined_start", "fit_parameter"), self.refined_thetas_)
        ds["refined_objective"] = ("refined_start", self.refined_objectives_)
        ds["residual"] = ("point", self.residuals_)
        ds.attrs.update(self.attributes())
        for name in ds.variables:
            long_name, units = LAWFIT_VARIABLES[name]
            ds[name].attrs.update(long_name=long_name.format(**ds.attrs), units=units)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "LawFit":
        """A fitted ``LawFit`` back from ``to_dataset()`` (a ``fits.nc`` written by the command
        line or a study): enough to ``predict`` and ``predict_interval``; not refittable,
        since the data are not stored. Reads no code: the form is looked up by name."""
        attrs = ds.attrs
        missing = [k for k in ("form", "objective", "objective_space", "objective_reduction")
                   if k not in attrs] + [v for v in ("theta", "residual") if v not in ds]
        if missing:
            raise ValueError(f"not a LawFit dataset: it lacks {', '.join(missing)}")
        delta = attrs.get("objective_delta", "n/a")
        objective = Objective(str(attrs["objective"]), float(delta) if delta != "n/a" else 1e-3,
                              str(attrs["objective_space"]), str(attrs["objective_reduction"]),
                              float(attrs.get("objective_overestimate_weight", 1.0)))
        fit = cls(str(attrs["form"]), objective)
        fit.theta_ = np.asarray(ds["theta"].values, float)
        fit.params_ = dict(zip(fit.law_form.param_names, map(float, fit.theta_)))
        fit.natural_ = {k: float(v[0]) for k, v in fit.law_form.natural(fit.theta_[None, :]).items()}
        fit.residuals_ = np.asarray(ds["residual"].values, float)
        fit.n_points_ = int(attrs.get("n_points", len(fit.residuals_)))
        fit.degrees_of_freedom_ = int(attrs.get("degrees_of_freedom",
                                                fit.n_points_ - len(fit.law_form.params)))
        fit.identified_ = bool(int(attrs.get("identified", 1)))
        fit.draws_ = fit.draws_theta_ = None
        fit.derived_fn_ = None
        if "draws_theta" in ds:
            fit.draws_theta_ = np.asarray(ds["draws_theta"].values, float)
            fit.draws_ = fit.law_form.natural(fit.draws_theta_)
            fit.ci_level_ = float(attrs.get("ci_level", 0.95))
        return fit

    def summary(self) -> dict:
        """One flat row: estimates, CIs, derived quantities and the checklist."""
        row = dict(self.attributes())
        row.update({f"{k}": v for k, v in self.natural_.items()})
        row.update(self.derived_estimates())
        for k, (lo, hi) in self.intervals().items():
            row[f"{k}_ci_low"], row[f"{k}_ci_high"] = lo, hi
        return row
