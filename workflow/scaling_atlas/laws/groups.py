"""Laws across groups (data mixes, architectures, tokenizers): one fit in which some parameters
are shared (e.g. the irreducible loss E) and the others are fitted per group, and the
comparisons people draw from it: the effective-compute (data, parameter) multiplier of one group
over another, with a bootstrap CI, and the compute at which two groups' frontiers cross.

    fit = fit_shared(df, df["loss"], group="mix", shared=("e",))      # one E, per-mix A, B, α, β
    fit.natural_["E"], fit.natural_["A[web]"], fit.natural_["A[code]"]
    fit.bootstrap(1000, by="groups")                                   # or by points
    effective_multiplier(fit, "web", "code", C=1e21)                  # {"estimate", "ci_low", ...}
    crossover_compute(fit, "web", "code")
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize

from scaling_atlas.laws.compute_optimal import optimal_allocation
from scaling_atlas.laws.forms import LawForm, Param, get_form


class GroupedForm(LawForm):
    """``base`` fitted to several groups at once, ``shared`` parameters common to all groups.

    The variables are the base form's plus ``group`` (integer codes 0..G−1, one per label);
    parameters are the shared ones, then the others per group, named ``name[label]``.
    """

    def __init__(self, base, labels, shared=()):
        base = get_form(base)
        labels = [str(label) for label in labels]
        unknown = set(shared) - set(base.param_names)
        if unknown:
            raise ValueError(f"shared parameter(s) {sorted(unknown)} are not parameters of "
                             f"{base.name!r} ({', '.join(base.param_names)})")
        if len(labels) < 2:
            raise ValueError(f"a grouped fit needs at least 2 groups, got {labels}")
        self.base, self.labels, self.shared = base, labels, tuple(shared)
        self.name = f"{base.name}_grouped"
        self.variables = (*base.variables, "group")
        self.positive_variables = base.positive()
        self.equation = (f"{base.equation} per group; shared: {', '.join(shared) or 'none'}")
        params, index = [], np.zeros((len(labels), len(base.params)), int)
        for j, p in enumerate(base.params):
            if p.name in shared:
                index[:, j] = len(params)
                params.append(p)
        for g, label in enumerate(labels):
            for j, p in enumerate(base.params):
                if p.name not in shared:
                    index[g, j] = len(params)
                    params.append(Param(f"{p.name}[{label}]", p.lower, p.upper,
                                        f"{p.meaning} ({label})"))
        self.params, self._index = tuple(params), index
        # natural quantities that depend on shared parameters only: found once, by moving every
        # per-group parameter differently and seeing which quantities stay equal across groups
        probe = np.random.default_rng(0).uniform(0.2, 0.8, (1, len(params)))
        per_group = [base.natural(probe[:, index[g]]) for g in range(len(labels))]
        self._shared_natural = {name for name in per_group[0]
                                if all(np.array_equal(per_group[0][name], other[name])
                                       for other in per_group[1:])}

    def _split(self, X):
        codes = np.asarray(X["group"]).astype(int)
        rest = {v: X[v] for v in self.base.variables}
        return codes, rest

    def predict(self, theta, X):
        return self.predict_and_jacobian(theta, X, need_jacobian=False)[0]

    def jacobian(self, theta, X):
        return self.predict_and_jacobian(theta, X)[1]

    def predict_and_jacobian(self, theta, X, need_jacobian=True):
        codes, rest = self._split(X)
        K, n = theta.shape[0], len(codes)
        pred = np.full((K, n), np.nan)
        jac = np.zeros((K, n, len(self.params))) if need_jacobian else None
        for g in range(len(self.labels)):
            rows = np.nonzero(codes == g)[0]
            if not len(rows):
                continue
            sub = {v: np.asarray(a)[rows] for v, a in rest.items()}
            theta_g = theta[:, self._index[g]]
            if need_jacobian:
                p, j = self.base.predict_and_jacobian(theta_g, sub)
                if j is None:
                    j = _finite_differences(self.base, theta_g, sub)
                jac[:, rows[:, None], self._index[g][None, :]] = j
            else:
                p = self.base.predict(theta_g, sub)
            pred[:, rows] = p
        return pred, jac

    def default_starts(self):
        """The base form's grid with every group starting from the same values."""
        base = self.base.default_starts()
        starts = np.zeros((len(base), len(self.params)))
        for g in range(len(self.labels)):
            starts[:, self._index[g]] = base
        return starts

    def natural(self, theta):
        """The base form's quantities per group (``A[web]``), those of shared parameters once
        (``E``)."""
        out = {}
        for g, label in enumerate(self.labels):
            for name, values in self.base.natural(theta[:, self._index[g]]).items():
                if name in self._shared_natural:
                    out.setdefault(name, values)
                else:
                    out[f"{name}[{label}]"] = values
        return out

    def group_natural(self, theta, label) -> dict[str, np.ndarray]:
        """The base form's natural parameters of one group (shared ones included)."""
        g = self.labels.index(str(label))
        return self.base.natural(theta[:, self._index[g]])


def _finite_differences(form, theta, X):
    K, P = theta.shape
    step = 1e-6 * np.maximum(1.0, np.abs(theta))
    cols = []
    for p in range(P):
        up, down = theta.copy(), theta.copy()
        up[:, p] += step[:, p]
        down[:, p] -= step[:, p]
        cols.append((form.predict(up, X) - form.predict(down, X)) / (2 * step[:, p : p + 1]))
    return np.stack(cols, axis=-1)


def fit_shared(X: pd.DataFrame, y, group: str, form="chinchilla", shared=("e",), columns=None,
               **law_fit_kwargs):
    """Fit ``form`` to every group of ``X[group]`` at once with ``shared`` parameters common
    (by the base form's parameter names, e.g. ``e`` for ln E). Returns the fitted ``LawFit``;
    its ``groups_`` are the group labels, so ``bootstrap(by="groups")`` resamples whole groups
    (use ``by="points"`` with few groups)."""
    from scaling_atlas.laws.engine import FitDataError, LawFit

    if group not in X:
        raise FitDataError(f"no group column {group!r}; the table has {', '.join(map(str, X.columns))}")
    labels = pd.Series(X[group]).astype(str)
    if labels.isna().any():
        raise FitDataError(f"empty group label in row(s) {', '.join(map(str, X.index[labels.isna()][:8]))}")
    order = list(dict.fromkeys(labels))
    grouped = GroupedForm(form, order, shared)
    data = pd.DataFrame({v: X[(columns or {}).get(v, v)] for v in grouped.base.variables
                         if (columns or {}).get(v, v) in X}, index=X.index)
    data["group"] = labels.map({label: i for i, label in enumerate(order)}).to_numpy(float)
    fit = LawFit(grouped, **law_fit_kwargs)
    return fit.fit(data, y, groups=labels.to_numpy())


# ---- comparisons -------------------------------------------------------------------------------
def _frontier_loss(p, compute):
    """Compute-optimal loss of a Chinchilla-form group at compute C (arrays broadcast)."""
    beta = p.get("beta", p["alpha"])
    n_opt, d_opt, _ = optimal_allocation(p["A"], p["B"], p["alpha"], beta, compute)
    with np.errstate(all="ignore"):
        return p["E"] + p["A"] / n_opt ** p["alpha"] + p["B"] / d_opt ** beta


def _compute_for_loss(p, loss, lo=1e10, hi=1e35):
    """The compute at which a group's frontier reaches ``loss`` (NaN if never, in range)."""
    f = lambda log_c: _frontier_loss(p, math.exp(log_c)) - loss
    a, b = math.log(lo), math.log(hi)
    fa, fb = f(a), f(b)
    if not (np.isfinite(fa) and np.isfinite(fb)) or fa * fb > 0:
        return math.nan
    return math.exp(optimize.brentq(f, a, b, xtol=1e-12))


def _group_draws(fit, label):
    form = fit.law_form
    if not isinstance(form, GroupedForm):
        raise ValueError("comparisons between groups need a fit from fit_shared")
    best = {k: float(v[0]) for k, v in form.group_natural(fit.theta_[None, :], label).items()}
    draws = None
    if getattr(fit, "draws_theta_", None) is not None:
        ok = np.all(np.isfinite(fit.draws_theta_), axis=1)
        draws = form.group_natural(fit.draws_theta_[ok], label)
    return best, draws


def _with_ci(fit, function, level):
    """``function(i)`` at the best fit (i = None) and at every finite bootstrap draw i."""
    value = function(None)
    out = {"estimate": value, "ci_low": math.nan, "ci_high": math.nan, "n_draws": 0}
    if getattr(fit, "draws_theta_", None) is not None:
        values = np.array([function(i) for i in range(int(np.all(np.isfinite(
            fit.draws_theta_), axis=1).sum()))])
        finite = values[np.isfinite(values)]
        tail = 100 * (1 - level) / 2
        if len(finite):
            out.update(ci_low=float(np.percentile(finite, tail)),
                       ci_high=float(np.percentile(finite, 100 - tail)),
                       n_draws=int(len(finite)), n_undefined_draws=int(len(values) - len(finite)))
    return out


def effective_multiplier(fit, reference, other, C=None, N=None, D=None, level=0.95) -> dict:
    """How much more compute (``C=``) or data (``N=`` and ``D=``) the ``reference`` group needs
    to match ``other``.

    ``C=c``: the effective-compute multiplier m = C_ref(L_other*(c))/c, where L* is a group's
    compute-optimal loss; m > 1 means ``other`` is worth m× compute. ``N=n, D=d``: the data
    multiplier at fixed N, m = D_ref/d with L_ref(n, D_ref) = L_other(n, d). With a bootstrap
    on the fit, a percentile CI over the draws.
    """
    ref_best, ref_draws = _group_draws(fit, reference)
    oth_best, oth_draws = _group_draws(fit, other)

    def params(which, i):
        best, draws = which
        return best if i is None else {k: float(v[i]) for k, v in draws.items()}

    if C is not None:
        def function(i):
            target = _frontier_loss(params((oth_best, oth_draws), i), float(C))
            return _compute_for_loss(params((ref_best, ref_draws), i), float(target)) / float(C)
        return {"quantity": "compute", "at": f"C={C:g}", **_with_ci(fit, function, level)}
    if N is not None and D is not None:
        def function(i):
            ref, oth = params((ref_best, ref_draws), i), params((oth_best, oth_draws), i)
            beta_r, beta_o = ref.get("beta", ref["alpha"]), oth.get("beta", oth["alpha"])
            target = oth["E"] + oth["A"] / N ** oth["alpha"] + oth["B"] / D ** beta_o
            rest = target - ref["E"] - ref["A"] / N ** ref["alpha"]
            return (ref["B"] / rest) ** (1 / beta_r) / D if rest > 0 else math.nan
        return {"quantity": "data", "at": f"N={N:g}, D={D:g}", **_with_ci(fit, function, level)}
    raise ValueError("give C= (compute multiplier) or both N= and D= (data multiplier at fixed N)")


def crossover_compute(fit, first, second, lo=1e15, hi=1e30, level=0.95) -> dict:
    """The compute in [lo, hi] at which the two groups' compute-optimal losses are equal
    (NaN, with the reason, if their frontiers do not cross there)."""
    a_best, a_draws = _group_draws(fit, first)
    b_best, b_draws = _group_draws(fit, second)

    def function(i):
        a = a_best if i is None else {k: float(v[i]) for k, v in a_draws.items()}
        b = b_best if i is None else {k: float(v[i]) for k, v in b_draws.items()}
        f = lambda log_c: _frontier_loss(a, math.exp(log_c)) - _frontier_loss(b, math.exp(log_c))
        x0, x1 = math.log(lo), math.log(hi)
        if not f(x0) * f(x1) < 0:
            return math.nan
        return math.exp(optimize.brentq(f, x0, x1, xtol=1e-10))

    out = _with_ci(fit, function, level)
    if not math.isfinite(out["estimate"]):
        out["reason"] = (f"the frontiers of {first!r} and {second!r} do not cross between "
                         f"C = {lo:g} and {hi:g}")
    return out
