"""Validation of fits: residual summaries and held-out (extrapolation) scores.

A law that fits its points is not yet a law that extrapolates: fit on the small end (below a
compute cut, or without the largest models) and score on the rest.
"""

from __future__ import annotations

import numpy as np


def residual_summary(y, prediction) -> dict[str, float]:
    """Residuals observed − predicted (mean, RMSE), log residuals ln pred − ln obs (mean, RMSE),
    mean/max relative error and R², all in one flat dict."""
    y, prediction = np.asarray(y, float), np.asarray(prediction, float)
    resid = y - prediction
    log_r = np.log(prediction) - np.log(y)
    rel = np.abs(prediction - y) / np.abs(y)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - prediction) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return {
        "n": int(len(y)),
        "mean_residual": float(np.mean(resid)),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "mean_log_residual": float(np.mean(log_r)),
        "rmse_log_residual": float(np.sqrt(np.mean(log_r**2))),
        "mean_relative_error": float(np.mean(rel)),
        "max_relative_error": float(np.max(rel)),
        "r2": r2,
    }


def residual_summary_variables(loss_units: str, prefix: str = "") -> dict[str, tuple[str, str]]:
    """Long names and units of :func:`residual_summary`'s fields (``prefix``: ``train_`` or
    ``test_`` of a held-out score), for a loss measured in ``loss_units``."""
    what = {"train_": " on the fitted points", "test_": " on the held-out points"}.get(prefix, "")
    return {f"{prefix}{name}": (long_name + what, units) for name, (long_name, units) in {
        "n": ("points scored", "1"),
        "mean_residual": ("mean residual, observed − predicted loss", loss_units),
        "rmse": ("root-mean-square residual of the loss", loss_units),
        "mean_log_residual": ("mean log residual, ln predicted − ln observed", "1"),
        "rmse_log_residual": ("root-mean-square log residual", "1"),
        "mean_relative_error": ("mean |predicted − observed| / observed", "1"),
        "max_relative_error": ("largest |predicted − observed| / observed", "1"),
        "r2": ("R² of the predicted loss", "1"),
    }.items()}


def _subset(X, mask):
    if hasattr(X, "iloc"):
        return X[mask]
    return {k: np.asarray(v)[mask] for k, v in X.items()}


def holdout_score(law_fit, X, y, train_mask, columns=None, **fit_kwargs) -> dict[str, float]:
    """Fit ``law_fit`` (an unfitted ``LawFit``) on ``train_mask`` rows, score the others.

    Returns the held-out residual summary, prefixed ``test_``, and the training one, ``train_``.
    """
    train_mask = np.asarray(train_mask, bool)
    if train_mask.all() or not train_mask.any():
        raise ValueError("holdout needs both training and held-out rows")
    y = np.asarray(y, float)
    law_fit.fit(_subset(X, train_mask), y[train_mask], columns=columns, **fit_kwargs)
    test = residual_summary(y[~train_mask], law_fit.predict(_subset(X, ~train_mask), columns))
    train = residual_summary(y[train_mask], law_fit.predict(_subset(X, train_mask), columns))
    return {**{f"test_{k}": v for k, v in test.items()}, **{f"train_{k}": v for k, v in train.items()}}


def compute_cut_score(law_fit, X, y, flops, cut, columns=None) -> dict[str, float]:
    """Fit on points with compute ≤ ``cut`` and score the larger ones (an extrapolation test)."""
    return holdout_score(law_fit, X, y, np.asarray(flops, float) <= cut, columns)


def leave_largest_out(law_fit, X, y, size, columns=None) -> dict[str, float]:
    """Fit without the largest value of ``size`` (e.g. the biggest model) and score on it."""
    size = np.asarray(size, float)
    return holdout_score(law_fit, X, y, size < size.max(), columns)


def interval_coverage(law_fit, X, y, train_mask, levels=(0.5, 0.8, 0.95), n_resamples: int = 200,
                      seed: int = 0, columns=None, n_jobs: int | None = None):
    """How often held-out points fall inside the prediction intervals (``predict_interval``).

    ``law_fit`` (an unfitted ``LawFit``) is fitted on the ``train_mask`` rows, bootstrapped
    ``n_resamples`` times, and each level's interval (parameters and residual scatter) is
    checked on the other rows. Returns one row per level: nominal, empirical coverage, the
    same for the parameter-only interval, the held-out count, and the median relative error.
    """
    import copy

    import pandas as pd

    train_mask = np.asarray(train_mask, bool)
    if train_mask.all() or not train_mask.any():
        raise ValueError("coverage needs both training and held-out rows")
    y = np.asarray(y, float)
    fit = copy.deepcopy(law_fit)
    fit.fit(_subset(X, train_mask), y[train_mask], columns=columns)
    fit.bootstrap(n_resamples, seed=seed, n_jobs=n_jobs)
    test_X, test_y = _subset(X, ~train_mask), y[~train_mask]
    rows = []
    for level in levels:
        table = fit.predict_interval(test_X, columns, level=level, seed=seed)
        inside = (table["low"].to_numpy() <= test_y) & (test_y <= table["high"].to_numpy())
        param = (table["param_low"].to_numpy() <= test_y) & (test_y <= table["param_high"].to_numpy())
        rel = np.abs(table["prediction"].to_numpy() - test_y) / np.abs(test_y)
        rows.append({"nominal": float(level), "coverage": float(inside.mean()),
                     "parameter_only_coverage": float(param.mean()), "n_test": int(len(test_y)),
                     "n_train": int(train_mask.sum()), "median_relative_error": float(np.median(rel)),
                     "identified": int(fit.identified_)})
    return pd.DataFrame(rows)
