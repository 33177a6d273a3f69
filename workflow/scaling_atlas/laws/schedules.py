"""Loss-curve laws that see the learning-rate schedule: Tissue et al.'s areas and Luo et al.'s MPL.

Both laws are functions of the whole per-step LR sequence η_1 … η_T, not of the step alone, so the
schedule is rebuilt per step from its definition (as the authors' code does) rather than read
from a CSV's sampled ``lr`` column. The schedules of a published dataset, by the names its files
use, are dataset knowledge: :mod:`scaling_atlas.datasets.schedules`.
"""

from __future__ import annotations

import numpy as np

from scaling_atlas.laws.forms import LawForm, Param, grid, register_form


def lr_areas(eta: np.ndarray, decay: float = 0.999, warmup: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tissue et al.'s forward area S₁ and annealing area S₂ at every step τ = 0 … T.

    m_i = λ·m_{i−1} + (η_{i−1} − η_i), S₂ = Σ m_i. During warmup the LR counts as its peak
    (the paper's convention), so warmup adds area to S₁ and no annealing momentum.
    """
    eta = np.asarray(eta, float).copy()
    if warmup:
        eta[: warmup + 1] = eta[warmup]
    s1 = np.concatenate([[0.0], np.cumsum(eta[1:])])
    # no annealing before the first step: η_0 counts as η_1
    drops = np.concatenate([[0.0, 0.0], eta[1:-1] - eta[2:]])
    momentum = np.zeros_like(eta)
    for i in range(1, len(eta)):
        momentum[i] = decay * momentum[i - 1] + drops[i]
    return s1, np.cumsum(momentum)


class MultiPowerLawForm(LawForm):
    """Luo et al.'s Multi-Power Law for the loss at step t of a run with LR schedule η.

    L(t) = L₀ + A·S₁(t)^(−α) − B·Σ_{k≤t} (η_{k−1} − η_k)·G(η_k^(−γ)·S_k(t)),
    G(x) = 1 − (C·x + 1)^(−β), S₁(t) = Σ_{τ≤t} η_τ (warmup included), S_k(t) = Σ_{k≤τ≤t} η_τ.

    Variables: ``curve`` (index into ``schedules``) and ``step``. Only steps where the LR changes
    contribute to the loss-drop sum, which keeps it affordable for long constant phases.
    """

    name = "multi_power"
    variables = ("curve", "step")
    positive_variables = ("step",)
    params = (
        Param("L0", 0.0, np.inf), Param("A", 0.0, np.inf), Param("alpha", 0.0, 5.0),
        Param("B", 0.0, np.inf), Param("C", 0.0, np.inf), Param("beta", 0.0, 5.0),
        Param("gamma", 0.0, 5.0),
    )
    equation = "L = L₀ + A·S₁^(−α) − B·Σ(η_{k−1}−η_k)·G(η_k^(−γ) S_k(t)),  G(x) = 1 − (Cx+1)^(−β)"
    chunk = 128

    def __init__(self, schedules=None):
        self.schedules = [np.asarray(s, float) for s in (schedules or [])]

    def default_starts(self):
        return grid(L0=[2.0, 3.0], A=[0.3, 1.0], alpha=[0.3, 0.6], B=[100.0, 500.0],
                    C=[2.0], beta=[0.5], gamma=[0.5])

    def _curve_terms(self, curve: int):
        eta = self.schedules[curve]
        s1 = np.cumsum(eta)  # s1[τ] = Σ_{1..τ} η (η[0] = 0)
        k = np.nonzero(eta[:-1] != eta[1:])[0] + 1  # steps whose LR differs from the previous
        return eta, s1, k, eta[k - 1] - eta[k], np.log(eta[k]), s1[k - 1]

    def _evaluate(self, theta, X, with_jacobian):
        curve, step = np.asarray(X["curve"]).astype(int), np.asarray(X["step"]).astype(int)
        K, n = theta.shape[0], len(step)
        pred = np.empty((K, n))
        jac = np.empty((K, n, 7)) if with_jacobian else None
        for c in np.unique(curve):
            rows = np.nonzero(curve == c)[0]
            eta, s1, k, drop, log_eta, s1_before = self._curve_terms(c)
            # rows sorted by step, so each chunk only needs the drops up to its largest step
            rows = rows[np.argsort(step[rows], kind="stable")]
            for r in range(K):
                L0, A, alpha, B, C, beta, gamma = theta[r]
                eta_gamma = np.exp(-gamma * log_eta)
                for start in range(0, len(rows), self.chunk):
                    idx = rows[start : start + self.chunk]
                    t = step[idx]
                    m = int(np.searchsorted(k, t.max(), side="right"))
                    s1_t = s1[t]
                    valid = k[None, :m] <= t[:, None]
                    x = eta_gamma[None, :m] * np.where(valid, s1_t[:, None] - s1_before[None, :m], 0.0)
                    log_u = np.log1p(C * x)
                    u_beta = np.exp(-beta * log_u)
                    weight = np.where(valid, drop[None, :m], 0.0)
                    g_sum = (weight * (1.0 - u_beta)).sum(axis=1)
                    power = s1_t ** (-alpha)
                    pred[r, idx] = L0 + A * power - B * g_sum
                    if with_jacobian:
                        wdx = weight * beta * u_beta * x / (1.0 + C * x)  # w·dG/du·du/dC
                        jac[r, idx, 0] = 1.0
                        jac[r, idx, 1] = power
                        jac[r, idx, 2] = -A * power * np.log(s1_t)
                        jac[r, idx, 3] = -g_sum
                        jac[r, idx, 4] = -B * wdx.sum(axis=1)
                        jac[r, idx, 5] = -B * (weight * u_beta * log_u).sum(axis=1)
                        jac[r, idx, 6] = B * C * (wdx @ log_eta[:m])
        return pred, jac

    def predict(self, theta, X):
        return self._evaluate(theta, X, False)[0]

    def jacobian(self, theta, X):
        return self._evaluate(theta, X, True)[1]

    def predict_and_jacobian(self, theta, X):
        return self._evaluate(theta, X, True)


register_form(MultiPowerLawForm)
