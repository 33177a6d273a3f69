"""Resampling for intervals: percentile bootstrap intervals, paired and two-level resampling.

Every study's 95 % intervals come from here, so that each says the same thing: the central 95 %
of the statistic over resamples (``percentile_interval``). What is resampled is the caller's
choice and is named in the interval's ``long_name``: points, instances, documents, or seeds and
then documents within each seed (``seed_and_document_bootstrap``).
"""

from __future__ import annotations

import numpy as np

#: the central 95 % of a bootstrap distribution (in percent: 2.5 and 97.5 exactly)
LEVEL = 95.0


def percentile_interval(draws, axis=None, level: float = LEVEL) -> tuple:
    """The (low, high) percentiles of ``draws`` enclosing the central ``level`` percent
    (NaN-aware): the 2.5th and 97.5th for 95."""
    tail = (100.0 - level) / 2
    return (np.nanpercentile(draws, tail, axis=axis), np.nanpercentile(draws, 100 - tail, axis=axis))


def paired_bootstrap(hits_a: np.ndarray, hits_b: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Draws of mean(b) − mean(a) over items resampled with replacement (the same items for
    both: a paired comparison). ``hits_*``: (..., items) → (..., resamples)."""
    rng = np.random.default_rng(seed)
    n = hits_a.shape[-1]
    idx = rng.integers(n, size=(resamples, n))
    return (hits_b[..., idx] - hits_a[..., idx]).mean(-1)


def resample_seeds(per_seed: np.ndarray, seed: int) -> np.ndarray:
    """Second level of a two-level bootstrap: ``per_seed`` holds each seed's own draws
    (..., seed, resamples); each resample picks the seeds with replacement and averages their
    draws of that resample → (..., resamples). One seed: its draws as they are."""
    n_seeds = per_seed.shape[-2]
    if n_seeds == 1:
        return per_seed[..., 0, :]
    rng = np.random.default_rng([seed, 1])
    chosen = rng.integers(n_seeds, size=(per_seed.shape[-1], n_seeds))
    index = np.broadcast_to(chosen.T, per_seed.shape[:-2] + chosen.T.shape)
    return np.take_along_axis(per_seed, index, axis=-2).mean(-2)


def seed_and_document_bootstrap(hits_a: np.ndarray, hits_b: np.ndarray, resamples: int,
                                seed: int) -> np.ndarray:
    """Draws of the seed-mean difference mean(b) − mean(a), resampling seeds and, within each,
    the items (a two-level bootstrap: the interval covers both the seed spread and the
    evaluation noise). ``hits_*``: (..., seed, items) → (..., resamples)."""
    return resample_seeds(paired_bootstrap(hits_a, hits_b, resamples, seed), seed)


def statistic_bootstrap(statistic, arrays, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of ``statistic(*arrays)`` with the items (the first axis, shared by every array)
    resampled with replacement: the plain percentile bootstrap of a statistic that is not a
    mean (an AUROC, a fitted slope)."""
    n = len(arrays[0])
    return np.array([statistic(*(a[idx] for a in arrays))
                     for idx in rng.integers(n, size=(resamples, n))])
