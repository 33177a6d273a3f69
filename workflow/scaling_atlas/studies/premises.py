"""Premises of the transformer studies' claims: runs past the unigram plateau, no fitted
parameter on a bound, each size at its own tuned LR, and the regime's ladder of sizes."""

from __future__ import annotations

import math

import numpy as np

from scaling_atlas.claims import Premise

#: share of the fitted runs that must end below the bigram level
PAST_PLATEAU_SHARE = 0.8


def plateau_premise(cube, losses) -> Premise:
    """Scaling laws describe models that learn the data's structure: at least 80 % of the
    fitted runs must end below the bigram level (the validation loss of a bigram model), not
    on the unigram plateau that every run first sits on."""
    name = f"past the plateau (≥ {PAST_PLATEAU_SHARE:.0%} of runs below the bigram level)"
    level = cube.attrs.get("corpus_bigram_cross_entropy_nats")
    losses = np.asarray(losses, float)
    losses = losses[np.isfinite(losses)]
    if level is None or not len(losses):
        return Premise(name, False, "no bigram level recorded for this corpus" if level is None
                       else "no finished run")
    below = int((losses < float(level)).sum())
    return Premise(name, below >= PAST_PLATEAU_SHARE * len(losses),
                   f"{below} of {len(losses)} runs below {float(level):.2f} nats/token; "
                   f"unigram level {float(cube.attrs.get('corpus_unigram_entropy_nats', math.nan)):.2f}")


def bound_premise(attrs, what: str = "") -> Premise:
    """No fitted parameter on a bound: there the estimate is the bound's, not the data's."""
    at = str(attrs.get("parameters_at_bound", "none"))
    return Premise(f"no fitted parameter at a bound{what}", at == "none",
                   "" if at == "none" else f"at its bound: {at}")


def ladder_spacing(sizes) -> tuple[float, list[float], bool]:
    """Mean spacing, the single steps, and whether sorted ``sizes`` (N) form a regime ladder:
    ≥ 7 sizes spaced ×1.3–1.5 on average, each step within ×1.15–1.75 (widths are discrete
    and depth changes in steps)."""
    sizes = sorted(sizes)
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    spacing = (sizes[-1] / sizes[0]) ** (1 / (len(sizes) - 1)) if len(sizes) > 1 else 0.0
    ok = len(sizes) >= 7 and 1.3 <= spacing <= 1.5 and all(1.15 <= r <= 1.75 for r in ratios)
    return spacing, ratios, ok



def lr_premise(cube) -> Premise:
    """Scale-dependent hyperparameters must be tuned (Porian et al. 2024): a per-size peak LR
    from a sweep of ≥ 3 values, none of the chosen ones on the sweep's edge."""
    name = "per-size peak LR from a sweep (≥ 3 values, the best inside it)"
    if "lr_sweep" not in cube.coords:
        return Premise(name, False, "one peak LR for every size (lr_sweep is empty)")
    edge = cube["lr_at_sweep_edge"].values
    edge = edge[np.isfinite(edge)]
    rates = ", ".join(f"{v:g}" for v in cube["lr_sweep"].values)
    return Premise(name, cube.sizes["lr_sweep"] >= 3 and not edge.any(),
                   f"sweep {rates}: {int(edge.sum())} of {len(edge)} choices are an edge value")
