"""AttentionInfluence's arithmetic on numbers (no model): choosing heads, scoring and selecting
documents, and the AUROC of a score for a hidden label. The model-side pieces (masked forward,
retrieval scores, per-document losses) are :mod:`scaling_atlas.selection.heads`."""

from __future__ import annotations

import math

import numpy as np


def top_heads(scores: np.ndarray, fraction: float) -> list[tuple[int, int]]:
    """The ⌈fraction · heads⌉ heads with the highest retrieval scores (at least one)."""
    count = max(1, math.ceil(fraction * scores.size - 1e-9))
    order = np.argsort(-scores, axis=None, kind="stable")[:count]
    return [tuple(int(i) for i in np.unravel_index(o, scores.shape)) for o in order]


def control_head_sets(scores: np.ndarray, count: int, seed: int, draws: int = 8
                      ) -> list[list[tuple[int, int]]]:
    """Sets of ``count`` heads outside the top ``count``, for the paper's check that masking
    non-retrieval heads barely matters: every other head in turn when ``count`` is 1 (the
    expected effect of a random one, exactly), else ``draws`` random sets."""
    top = set(top_heads(scores, count / scores.size))
    others = [(layer, head) for layer in range(scores.shape[0]) for head in range(scores.shape[1])
              if (layer, head) not in top]
    if count == 1:
        return [[head] for head in others]
    rng = np.random.default_rng([seed, 31])
    return [sorted(others[i] for i in rng.choice(len(others), size=count, replace=False))
            for _ in range(draws)]


def attention_influence(base: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """(L_ref − L_base) / L_base per document (Hua et al., App. C)."""
    return (masked - base) / base


def select_within_domains(scores: np.ndarray, domains: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the top ``fraction`` of documents by score within each domain."""
    chosen = np.zeros(len(scores), dtype=bool)
    for domain in np.unique(domains):
        members = np.flatnonzero(domains == domain)
        count = int(round(fraction * len(members)))
        best = members[np.argsort(-scores[members], kind="stable")[:count]]
        chosen[best] = True
    return chosen


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    from scipy.stats import rankdata

    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
