"""The LM trainer's settings and its schedule on paper (no PyTorch): what a run is asked to do,
the LR of every step and the validation points. :mod:`scaling_atlas.train.lm` trains by them;
planning, validating and fitting (e.g. the multi-power law's LR schedule) read them here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


#: spec fields a checkpoint may differ in and still be resumed (they do not change the run)
RESUME_FREE = ("checkpoint_every", "compile", "compile_mode")


class CorpusTooSmall(ValueError):
    """The corpus has fewer training windows than a run needs (and repetition is off)."""


@dataclass(frozen=True)
class LMTrainSpec:
    tokens: int  # training tokens D requested (rounded up to whole steps)
    batch_size: int = 32  # sequences per optimiser step (= micro-batch × grad_accum)
    lr: float = 3e-3
    schedule: str = "cosine"  # cosine | wsd | constant
    warmup_fraction: float = 0.05
    warmup_min_steps: int = 0  # warmup lasts at least this many steps (at most half the run)
    final_lr_fraction: float = 0.1
    decay_fraction: float = 0.2  # WSD: the last fraction of steps decays linearly
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    grad_accum: int = 1
    eval_points: int = 16
    eval_tokens: int = 32768
    seed: int = 0
    allow_repeat: bool = False
    compile: bool = False
    # CUDA graphs replay the compiled step in one launch per graph: without them a small model's
    # step is bound by Python launching hundreds of kernels (benchmarks/README.md)
    compile_mode: str = "reduce-overhead"
    checkpoint_every: int = 0  # steps; 0 = only at the end

    def steps(self, seq_len: int) -> int:
        return max(1, math.ceil(self.tokens / (self.batch_size * seq_len)))

    def to_dict(self) -> dict:
        return asdict(self)


def warmup_steps(total: int, fraction: float, minimum: int = 0) -> int:
    """Linear-warmup steps of a ``total``-step run: ``fraction`` of it, but at least ``minimum``
    steps (Porian et al.: short warmups of small runs distort scaling laws), never more than half
    the run."""
    if fraction <= 0 and minimum <= 0:
        return 0
    return max(1, round(fraction * total), min(minimum, total // 2))


def lr_at(step: int, total: int, spec: LMTrainSpec) -> float:
    """LR of optimiser step ``step`` (0-based) of ``total``: linear warmup, then the schedule."""
    warmup = warmup_steps(total, spec.warmup_fraction, spec.warmup_min_steps)
    peak, final = spec.lr, spec.lr * spec.final_lr_fraction
    if step < warmup:
        return peak * (step + 1) / warmup
    if spec.schedule == "constant":
        return peak
    if spec.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup - 1)
        return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * min(1.0, progress)))
    if spec.schedule == "wsd":
        decay_start = total - max(1, round(spec.decay_fraction * total))
        if step < decay_start:
            return peak
        return peak + (final - peak) * (step - decay_start + 1) / (total - decay_start)
    raise ValueError(f"unknown schedule {spec.schedule!r}")


def lr_sequence(total: int, spec: LMTrainSpec) -> np.ndarray:
    return np.array([lr_at(s, total, spec) for s in range(total)])


def eval_steps(total: int, points: int) -> np.ndarray:
    """Optimiser steps after which the validation loss is measured: log-spaced, ending at T."""
    return np.unique(np.round(np.geomspace(1, total, max(2, points))).astype(int))
