"""PassUntil statistics: estimators, intervals, the censored likelihood, the task law, curvature,
and the Mirage and Elusive analyses (``shared/reference/emergence.md``).

Sampling until r passes, with a cap of k_max samples, stops at one of two kinds of points:
r passes after K ≤ k_max samples, or s < r passes after k_max samples (censored). The unbiased
estimator for that stopping rule (Girshick, Mosteller & Savage 1946: paths from a first success
to the stopping point over all paths to it) is

    p̂ = (r − 1)/(K − 1)     when r passes were reached (the MVUE of inverse sampling),
    p̂ = s / k_max           when censored,

never the plug-in r/K, which overstates small p (6.9× at p = 1e−3 with r = 1). Both stops have
the likelihood p^S (1 − p)^F with S passes and F failures, so censored instances enter a fit's
likelihood exactly, without special cases.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats


def unbiased_estimate(samples, passes, r: int, k_max: int) -> np.ndarray:
    """p̂ per instance: (r−1)/(K−1) when r passes were reached, s/k_max when censored."""
    samples, passes = np.asarray(samples, float), np.asarray(passes, float)
    reached = passes >= r
    with np.errstate(divide="ignore", invalid="ignore"):
        mvue = (r - 1) / (samples - 1)
    return np.where(reached, np.where(samples > 1, mvue, 1.0), passes / k_max)


def plugin_estimate(samples, passes) -> np.ndarray:
    """The biased r/K (for comparison only)."""
    return np.asarray(passes, float) / np.asarray(samples, float)


def interval(samples, passes, r: int, k_max: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson-type) interval of p for either stop.

    Reached r at K: P(K ≤ k) = P(Bin(k, p) ≥ r) gives Beta(r, K − r + 1) and Beta(r, K − r)
    quantiles; censored with s of k_max: the binomial Clopper–Pearson interval.
    """
    samples, passes = np.asarray(samples, float), np.asarray(passes, float)
    tail = (1 - level) / 2
    reached = passes >= r
    failures = samples - passes
    # lower end, both stops: Beta(S, F + 1) (S passes, F failures); 0 without a pass
    low = np.where(passes > 0, stats.beta.ppf(tail, np.maximum(passes, 1), failures + 1), 0.0)
    high_reached = np.where(failures > 0, stats.beta.ppf(1 - tail, r, np.maximum(failures, 1)), 1.0)
    high_censored = stats.beta.ppf(1 - tail, passes + 1, np.maximum(k_max - passes, 1))
    return low, np.where(reached, high_reached, high_censored)


def loglog(p) -> np.ndarray:
    """F = ln(−ln p), Hu et al.'s space in which the task law is linear in ln N (NaN at 0 and 1)."""
    p = np.asarray(p, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((p > 0) & (p < 1), np.log(-np.log(np.clip(p, 1e-300, 1 - 1e-16))), np.nan)


def task_law(c: float, k: float, n) -> np.ndarray:
    """PU(N) = exp(−exp(c + k ln N)) (eq. 4 with c = ln c, k = −α)."""
    return np.exp(-np.exp(c + k * np.log(np.asarray(n, float))))


def fit_line(x, y) -> dict:
    """Least squares y = c + k x on the finite points, with R²."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0:
        return {"c": math.nan, "k": math.nan, "r2": math.nan, "n_points": int(len(x))}
    k, c = np.polyfit(x, y, 1)
    resid = y - (c + k * x)
    total = ((y - y.mean()) ** 2).sum()
    return {"c": float(c), "k": float(k), "r2": float(1 - (resid**2).sum() / total) if total > 0 else math.nan,
            "n_points": int(len(x))}


def censored_task_law(n_params, successes, failures) -> dict:
    """Maximum-likelihood task law for one instance from sampled counts across models.

    Each model contributes S ln p + F ln(1 − p) with p = exp(−exp(c + k ln N)); censored models
    (S < r after k_max) enter exactly like the others. Returns c, k and whether it converged;
    an instance with no pass at any size has no finite optimum (reported, not fitted).
    """
    log_n = np.log(np.asarray(n_params, float))
    successes, failures = np.asarray(successes, float), np.asarray(failures, float)
    if successes.sum() == 0:
        return {"c": math.nan, "k": math.nan, "converged": False, "reason": "no pass at any size"}

    def negative(theta):
        inner = np.clip(theta[0] + theta[1] * log_n, -50, 50)
        log_p = -np.exp(inner)  # ln p
        log_q = np.log(-np.expm1(log_p))  # ln(1 − p), accurate for p near 1 too
        return -(successes * log_p + failures * log_q).sum()

    x0 = fit_line(log_n, loglog(np.clip(successes / np.maximum(successes + failures, 1), 1e-12, 1 - 1e-12)))
    start = [x0["c"] if math.isfinite(x0["c"]) else 0.0, x0["k"] if math.isfinite(x0["k"]) else -0.5]
    best = min((optimize.minimize(negative, s, method="Nelder-Mead",
                                  options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
                for s in (start, [start[0], 0.0], [10.0, -1.0])), key=lambda res: res.fun)
    return {"c": float(best.x[0]), "k": float(best.x[1]), "converged": bool(best.success),
            "reason": ""}


def quadratic_curvature(log_n, F) -> float:
    """The coefficient of (ln N)² in a quadratic fit of F (> 0 convex, < 0 concave)."""
    log_n, F = np.asarray(log_n, float), np.asarray(F, float)
    keep = np.isfinite(F)
    if keep.sum() < 4:
        return math.nan
    centred = log_n[keep] - log_n[keep].mean()
    return float(np.polyfit(centred, F[keep], 2)[0])


def classify_curvature(low: float, high: float) -> str:
    """Hu et al.'s classes from a CI of the quadratic coefficient of F(ln N)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undetermined"
    if low > 0:
        return "convex (sub-scaling)"
    if high < 0:
        return "concave (accelerated emergence)"
    return "linear (task scaling law)"


# ---- Mirage (Schaeffer et al. 2023) ------------------------------------------------------------
def mirage_exact_match(p, length) -> np.ndarray:
    """Acc ≈ p^L: exact match of an L-token answer with independent per-token accuracy p."""
    return p ** length


def mirage_edit_distance(p, length) -> np.ndarray:
    """ED ≈ L·(1 − p): expected token edit distance (substitutions) of an L-token answer."""
    return length * (1 - p)


# ---- Elusive (Schaeffer et al. 2024) -----------------------------------------------------------
CHAIN = ("log_p_vocab", "p_vocab", "p_choice", "accuracy", "neg_brier")


def choice_chain(choice_logp: np.ndarray, correct: np.ndarray) -> dict[str, np.ndarray]:
    """Schaeffer et al.'s chain for multiple choice, per sample (last axis: the choices).

    log p_vocab(correct) → p_vocab(correct) → p_choice(correct) = p_vocab(correct)/Σ_choices →
    accuracy = 1[argmax = correct] and Brier = Σ_j (p_choice(j) − 1[j = correct])², reported as
    −Brier so that every step is "higher is better"."""
    choice_logp = np.asarray(choice_logp, float)
    index = np.broadcast_to(np.asarray(correct), choice_logp.shape[:-1])[..., None]
    log_correct = np.take_along_axis(choice_logp, index, -1)[..., 0]
    shifted = choice_logp - choice_logp.max(axis=-1, keepdims=True)
    p_choice = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    onehot = (np.arange(choice_logp.shape[-1]) == index).astype(float)
    return {
        "log_p_vocab": log_correct,
        "p_vocab": np.exp(log_correct),
        "p_choice": np.take_along_axis(p_choice, index, -1)[..., 0],
        "accuracy": (choice_logp.argmax(axis=-1) == np.asarray(correct)).astype(float),
        "neg_brier": -((p_choice - onehot) ** 2).sum(axis=-1),
    }


def per_sample_correlations(scores: np.ndarray, log_compute: np.ndarray) -> np.ndarray:
    """Spearman correlation of each sample's score with log compute across models.

    ``scores`` (models, samples); returns (samples,), NaN where a sample's score is constant
    across models (e.g. accuracy 0 everywhere: no signal to correlate)."""
    out = np.full(scores.shape[1], np.nan)
    for j in range(scores.shape[1]):
        column = scores[:, j]
        if np.isfinite(column).all() and np.ptp(column) > 0:
            out[j] = stats.spearmanr(column, log_compute).statistic
    return out
