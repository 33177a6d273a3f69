"""The learning-rate schedules of Luo et al.'s Multi-Power-Law data, by the names its files use
(``cosine_24000``, ``wsdcon_9``, …): what a curve's name means, per step, for the laws of
:mod:`scaling_atlas.laws.schedules` (which take any per-step LR sequence)."""

from __future__ import annotations

import numpy as np


def lr_schedule(name: str, peak: float = 3e-4, final: float = 3e-5, warmup: int = 2160) -> np.ndarray:
    """Per-step LR η[τ] for τ = 0 … T (η[0] = 0) of Luo et al.'s named schedules.

    Names: ``constant_T``, ``cosine_T``, ``wsd_S_T`` (geometric decay from step S to T),
    ``wsdld_S_T`` (linear decay), ``wsdcon_k`` (η = peak to step 8000, then k·1e−5 to 16000).
    All start with a linear warmup 0 → peak over ``warmup`` steps.
    """
    kind, *numbers = name.split("_")
    numbers = [int(x) for x in numbers]
    if kind == "wsdcon":
        total, switch = 16000, 8000
    elif kind in ("constant", "cosine") and len(numbers) == 1:
        total = numbers[0]
    elif kind in ("wsd", "wsdld") and len(numbers) == 2:
        switch, total = numbers
    else:
        raise ValueError(f"unknown LR schedule {name!r}")
    step = np.arange(total + 1, dtype=float)
    eta = np.full(total + 1, peak)
    if kind == "cosine":
        progress = (step - warmup) / (total - warmup)
        eta = final + 0.5 * (peak - final) * (1 + np.cos(np.pi * progress))
    elif kind == "wsd":
        eta = np.where(step <= switch, peak, peak * (final / peak) ** ((step - switch) / (total - switch)))
    elif kind == "wsdld":
        eta = np.where(step <= switch, peak, peak + (final - peak) * (step - switch) / (total - switch))
    elif kind == "wsdcon":
        eta = np.where(step < switch, peak, numbers[0] * 1e-5)
    eta = np.where(step <= warmup, peak * step / warmup, eta)
    return eta
