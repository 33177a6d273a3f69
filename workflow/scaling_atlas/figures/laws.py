"""Figures of one law fit, shared by the command line and the `runs` study."""

from __future__ import annotations

import numpy as np

from scaling_atlas.figures.style import new_figure


#: points drawn at most
MAX_POINTS = 20_000


def fit_figure(observed, predicted, residuals, x, *, x_label: str, target: str, title: str,
               space: str = "log"):
    """Observed against predicted (with the 1:1 line) and the residuals against one variable."""
    observed, predicted = np.asarray(observed, float), np.asarray(predicted, float)
    residuals, x = np.asarray(residuals, float), np.asarray(x, float)
    shown = ""
    if len(observed) > MAX_POINTS:  # a seeded subsample: a million dots draw slowly and show no more
        keep = np.sort(np.random.default_rng(0).choice(len(observed), MAX_POINTS, replace=False))
        observed, predicted, residuals, x = observed[keep], predicted[keep], residuals[keep], x[keep]
        shown = f" ({MAX_POINTS:,} of the points, seeded sample)"
    fig, axes = new_figure(2, 1, width=4.4, height=3.6)
    ax = axes[0][0]
    ax.scatter(observed, predicted, s=10, alpha=0.7)
    lo = float(np.nanmin([observed.min(), predicted.min()]))
    hi = float(np.nanmax([observed.max(), predicted.max()]))
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", label="predicted = observed")
    log = space == "log" and lo > 0
    ax.set(xlabel=f"observed {target}", ylabel=f"predicted {target}", title=title,
           xscale="log" if log else "linear", yscale="log" if log else "linear")
    ax.legend(fontsize=7)
    ax = axes[0][1]
    ax.scatter(x, residuals, s=10, alpha=0.7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xscale="log" if np.all(x > 0) else "linear", xlabel=x_label,
           ylabel=f"residual ({space} space)", title="residuals" + shown)
    return fig
