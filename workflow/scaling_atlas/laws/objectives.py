"""Fitting objectives: a loss on residuals, in log or linear space, summed (or averaged).

The default is the literature's: Huber with δ = 1e−3 on log-residuals, **summed** over points.
Averaging shrinks the objective by 1/n and L-BFGS-B's default tolerances then stop almost at the
start (one of the two causes Epoch found behind Hoffmann et al.'s estimates), so ``mean`` is only
there to reproduce that mistake.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LOSSES = ("huber", "mse", "mae")
SPACES = ("log", "linear", "loglog")
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Objective:
    """``loss`` ∈ huber | mse | mae; ``space`` ∈ log | linear | loglog; ``reduction`` ∈ sum | mean.

    ``loglog`` fits F = ln(−ln y), the space in which Hu et al.'s task law is linear in ln N.

    ``mse`` is ½·r² per point (so Huber with a large δ equals it); ``mae`` is |r|, minimised as the
    limit of Huber/δ as δ → 0: the engine descends on Huber/δ with δ annealed, then polishes
    the exact L1 optimum by linear programming (see ``LawFit``).
    """

    loss: str = "huber"
    delta: float = 1e-3
    space: str = "log"
    reduction: str = "sum"
    #: weight of residuals where the law over-estimates (prediction above the target); > 1
    #: fits the lower envelope of the points (OLMo-core's asymmetric objective), 1 is symmetric.
    #: 10–100 works; at 1000 with Huber's δ = 1e-3 the wall at r = 0 is so steep that L-BFGS-B
    #: stalls (the fit then reports converged = 0 and, usually, not identified)
    overestimate_weight: float = 1.0

    def __post_init__(self):
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss {self.loss!r} is not one of {LOSSES}")
        if self.space not in SPACES:
            problems.append(f"space {self.space!r} is not one of {SPACES}")
        if self.reduction not in REDUCTIONS:
            problems.append(f"reduction {self.reduction!r} is not one of {REDUCTIONS}")
        if not self.delta > 0:
            problems.append(f"delta must be > 0, got {self.delta}")
        if not self.overestimate_weight > 0:
            problems.append(f"overestimate_weight must be > 0, got {self.overestimate_weight}")
        if self.loss == "mae" and self.overestimate_weight != 1.0:
            problems.append("an asymmetric MAE is a quantile regression, which the engine does not "
                            "solve; use huber or mse with overestimate_weight")
        if problems:
            raise ValueError("invalid objective: " + "; ".join(problems))

    def transform(self, values: np.ndarray) -> np.ndarray:
        if self.space == "loglog":  # F = ln(−ln p): Hu et al.'s space for PassUntil (0 < p < 1)
            return np.log(-np.log(values))
        return np.log(values) if self.space == "log" else values

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """The target from its value in the fit's space (the inverse of ``transform``)."""
        if self.space == "loglog":
            return np.exp(-np.exp(values))
        return np.exp(values) if self.space == "log" else values

    def transform_slope(self, values: np.ndarray) -> np.ndarray:
        """d transform / d value, to carry a prediction's Jacobian into the fit's space."""
        if self.space == "loglog":
            return 1.0 / (values * np.log(values))
        return 1.0 / values if self.space == "log" else np.ones_like(values)

    def residuals(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Residuals (K, n) of predictions (K, n) against the target (n,), in the fit's space."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.transform(prediction) - self.transform(target)

    def per_point(self, r: np.ndarray, delta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Loss per point and its derivative in r (over-estimates, r > 0, weighted by
        ``overestimate_weight``)."""
        if self.overestimate_weight != 1.0:
            value, slope = Objective(self.loss, self.delta, self.space,
                                     self.reduction).per_point(r, delta)
            weight = np.where(r > 0, self.overestimate_weight, 1.0)
            return value * weight, slope * weight
        if self.loss == "mse":
            return 0.5 * r**2, r
        if self.loss == "mae" and delta is None:
            return np.abs(r), np.sign(r)
        delta = self.delta if delta is None else delta
        small = np.abs(r) <= delta
        value = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
        slope = np.where(small, r, delta * np.sign(r))
        if self.loss == "mae":  # |r| is the δ → 0 limit of Huber/δ
            return value / delta + 0.5 * delta, slope / delta
        return value, slope

    def value(self, r: np.ndarray, weights=None, delta=None) -> np.ndarray:
        values, _ = self.per_point(r, delta)
        return self._reduce(values, weights)

    def value_and_slope(self, r, weights=None, delta=None):
        values, slopes = self.per_point(r, delta)
        scale = 1.0 / r.shape[-1] if self.reduction == "mean" else 1.0
        if weights is not None:
            slopes = slopes * weights
        return self._reduce(values, weights), slopes * scale

    def _reduce(self, values, weights):
        if weights is not None:
            values = values * weights
        total = np.nansum(np.where(np.isfinite(values), values, np.inf), axis=-1)
        return total / values.shape[-1] if self.reduction == "mean" else total

    def describe(self) -> dict:
        return asdict(self)
