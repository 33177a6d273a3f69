"""Scaling-law forms: parameters with bounds, a vectorised prediction and (mostly) its Jacobian.

Every form predicts for many parameter vectors at once: ``theta`` has shape (K, P) (K starts or
bootstrap draws, P parameters) and the variables are 1-D arrays of the n data points; the
prediction has shape (K, n). That is what makes a 4,500-start grid one numpy expression.

Adding a form takes a few lines::

    class Logistic(LawForm):
        name = "logistic"
        variables = ("x",)
        params = (Param("top", 0, 10), Param("rate", 0, 5), Param("mid", -10, 10))

        def predict(self, theta, X):
            top, rate, mid = self.unpack(theta)
            return top / (1 + np.exp(-rate * (X["x"] - mid)))

    register_form(Logistic)

``jacobian`` is optional: without it the engine uses central finite differences.
Scale parameters of positive terms are fitted as logs (``a = ln A``), as in Hoffmann et al.'s
log-sum-exp parametrisation; ``natural`` turns a fitted vector into the published quantities.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Param:
    """One fitted parameter: name, bounds, and a short meaning for attributes and tables."""

    name: str
    lower: float = -np.inf
    upper: float = np.inf
    meaning: str = ""


class LawForm:
    """Base class of a law form. Subclasses set ``name``, ``variables``, ``params``, ``predict``."""

    name: ClassVar[str] = ""
    #: input columns, in the order a user passes them
    variables: ClassVar[tuple[str, ...]] = ()
    #: variables that must be strictly positive (logs are taken of them)
    positive_variables: ClassVar[tuple[str, ...] | None] = None
    params: ClassVar[tuple[Param, ...]] = ()
    #: the target must be positive for log-space objectives (probabilities, losses)
    equation: ClassVar[str] = ""
    #: distinct values a variable needs for the parameters acting through it alone to be
    #: determined (e.g. Chinchilla's A/N^α beside E needs 3 model sizes); checked with every fit
    min_distinct: ClassVar[dict[str, int]] = {}

    # ---- helpers -----------------------------------------------------------------------------
    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [(p.lower, p.upper) for p in self.params]

    @property
    def has_allocation(self) -> bool:
        """True when the natural parameters include A, B and α (Chinchilla-like): the form then
        has a compute-optimal allocation (``optimal_allocation``)."""
        return {"A", "B", "alpha"} <= set(self.natural(np.zeros((1, len(self.params)))))

    def positive(self) -> tuple[str, ...]:
        return self.variables if self.positive_variables is None else self.positive_variables

    @staticmethod
    def unpack(theta: np.ndarray):
        """Columns of ``theta`` (K, P) as (K, 1) arrays, ready to broadcast against (n,)."""
        return [theta[:, i : i + 1] for i in range(theta.shape[1])]

    # ---- the model ---------------------------------------------------------------------------
    def predict(self, theta: np.ndarray, X: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def jacobian(self, theta: np.ndarray, X: dict[str, np.ndarray]) -> np.ndarray | None:
        """d prediction / d theta with shape (K, n, P), or None to use finite differences."""
        return None

    def predict_and_jacobian(self, theta, X):
        """Both at once; forms override it when they share work (the engine's hot path)."""
        return self.predict(theta, X), self.jacobian(theta, X)

    def default_starts(self) -> np.ndarray:
        """A start grid (S, P); the midpoint of finite bounds (or 0) unless a form knows better."""
        return np.array([[_midpoint(p) for p in self.params]])

    def natural(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Published quantities from fitted vectors (K, P); by default the parameters themselves."""
        return {name: theta[:, i] for i, name in enumerate(self.param_names)}

    def describe(self) -> str:
        return f"{self.name}: {self.equation}" if self.equation else self.name


def _midpoint(p: Param) -> float:
    if math.isfinite(p.lower) and math.isfinite(p.upper):
        return 0.5 * (p.lower + p.upper)
    if math.isfinite(p.lower):
        return p.lower + 1.0
    if math.isfinite(p.upper):
        return p.upper - 1.0
    return 0.0


def grid(**axes) -> np.ndarray:
    """Cartesian product of per-parameter start values, in the given order, as (S, P)."""
    return np.array(list(itertools.product(*axes.values())), dtype=float)


# ---- power laws ----------------------------------------------------------------------------------
class PowerLawForm(LawForm):
    name = "power_law"
    variables = ("x",)
    params = (Param("a", meaning="ln A"), Param("alpha", meaning="exponent α"))
    equation = "L = A·x^(−α)"

    def predict(self, theta, X):
        a, alpha = self.unpack(theta)
        return np.exp(a - alpha * np.log(X["x"]))

    def jacobian(self, theta, X):
        pred, log_x = self.predict(theta, X), np.log(X["x"])
        return np.stack([pred, -pred * log_x], axis=-1)

    def default_starts(self):
        return grid(a=[-2.0, 0.0, 2.0, 5.0], alpha=[0.1, 0.5, 1.0, 2.0])

    def natural(self, theta):
        return {"A": np.exp(theta[:, 0]), "alpha": theta[:, 1]}


class PowerLawOffsetForm(LawForm):
    name = "power_law_offset"
    variables = ("x",)
    params = (Param("a", meaning="ln A"), Param("alpha", meaning="exponent α"),
              Param("e", meaning="ln E (offset)"))
    equation = "L = A·x^(−α) + E"

    def predict(self, theta, X):
        a, alpha, e = self.unpack(theta)
        return np.exp(a - alpha * np.log(X["x"])) + np.exp(e)

    def jacobian(self, theta, X):
        a, alpha, e = self.unpack(theta)
        term, log_x = np.exp(a - alpha * np.log(X["x"])), np.log(X["x"])
        return np.stack([term, -term * log_x, np.broadcast_to(np.exp(e), term.shape)], axis=-1)

    def default_starts(self):
        return grid(a=[-2.0, 0.0, 2.0, 5.0], alpha=[0.1, 0.5, 1.0, 2.0], e=[-6.0, -2.0, 0.0, 1.0])

    def natural(self, theta):
        return {"A": np.exp(theta[:, 0]), "alpha": theta[:, 1], "E": np.exp(theta[:, 2])}

    # VPNLS: L = A·x^(−α) + E is linear in (A, E) for fixed α
    def nonlinear_grid(self):
        return np.linspace(0.0, 3.0, 61)[:, None]

    def linear_basis(self, nonlinear, X):
        return np.column_stack([X["x"] ** -nonlinear[0], np.ones_like(X["x"])])

    def from_linear(self, nonlinear, coefs):
        A, E = np.maximum(coefs, 1e-300)
        return np.array([np.log(A), nonlinear[0], np.log(E)])


class BrokenPowerLawForm(LawForm):
    """Smoothly broken power law with a floor (Caballero et al.'s BNSL with one break).

    L = E + A·x^(−α₁)·(1 + (x/x_b)^(1/s))^(−(α₂−α₁)·s): slope α₁ below the break x_b, α₂ above,
    smoothness s; E makes it saturate.
    """

    name = "broken_power_law"
    variables = ("x",)
    params = (
        Param("a", meaning="ln A"), Param("alpha1", meaning="exponent below the break"),
        Param("alpha2", meaning="exponent above the break"), Param("log_xb", meaning="ln x_b"),
        Param("s", 0.05, 5.0, meaning="smoothness of the break"), Param("e", meaning="ln E"),
    )
    equation = "L = E + A·x^(−α₁)·(1 + (x/x_b)^(1/s))^(−(α₂−α₁)s)"

    def predict(self, theta, X):
        a, alpha1, alpha2, log_xb, s, e = self.unpack(theta)
        log_x = np.log(X["x"])
        bend = np.logaddexp(0.0, (log_x - log_xb) / s)  # ln(1 + (x/x_b)^(1/s)), stable
        return np.exp(a - alpha1 * log_x - (alpha2 - alpha1) * s * bend) + np.exp(e)

    def natural(self, theta):
        out = super().natural(theta)
        out.update(A=np.exp(theta[:, 0]), x_b=np.exp(theta[:, 3]), E=np.exp(theta[:, 5]))
        return out


class ExponentialForm(LawForm):
    """Linear convergence: L(t) = L₀·exp(−r t); the rate r is what over-parameterization slows."""

    name = "exponential"
    variables = ("t",)
    positive_variables = ()
    params = (Param("c", meaning="ln L₀"), Param("rate", meaning="rate r per unit t"))
    equation = "L = L₀·exp(−r·t)"

    def predict(self, theta, X):
        c, rate = self.unpack(theta)
        return np.exp(c - rate * X["t"])

    def jacobian(self, theta, X):
        pred = self.predict(theta, X)
        return np.stack([pred, -pred * X["t"]], axis=-1)

    def default_starts(self):
        return grid(c=[-5.0, 0.0, 5.0], rate=[1e-4, 1e-3, 1e-2, 1e-1, 1.0])

    def natural(self, theta):
        return {"L0": np.exp(theta[:, 0]), "rate": theta[:, 1]}


class TaskLawForm(LawForm):
    """Hu et al.'s task scaling law: F(N) = ln(−ln PU) = c + k·ln N, i.e. PU = exp(−e^c·N^k).

    Fit it with ``Objective("mse", space="loglog")``: least squares on F, Hu et al.'s regression.
    """

    name = "task_law"
    variables = ("N",)
    params = (Param("c", meaning="intercept of ln(−ln PU)"), Param("k", meaning="slope in ln N"))
    equation = "ln(−ln PU) = c + k·ln N"

    def predict(self, theta, X):
        c, k = self.unpack(theta)
        return np.exp(-np.exp(c + k * np.log(X["N"])))

    def jacobian(self, theta, X):
        c, k = self.unpack(theta)
        log_n = np.log(X["N"])
        inner = np.exp(c + k * log_n)
        pred = np.exp(-inner)
        return np.stack([-pred * inner, -pred * inner * log_n], axis=-1)

    def default_starts(self):
        return grid(c=[-10.0, 0.0, 10.0], k=[-2.0, -0.5, 0.0, 0.5])


# ---- L(N, D) ---------------------------------------------------------------------------------------
class ChinchillaForm(LawForm):
    """Hoffmann et al.'s L(N, D) = E + A/N^α + B/D^β, fitted as log L = LSE(a − α ln N, b − β ln D, e)."""

    name = "chinchilla"
    variables = ("N", "D")
    params = (
        Param("a", meaning="ln A"), Param("b", meaning="ln B"), Param("e", meaning="ln E"),
        Param("alpha", meaning="exponent of N"), Param("beta", meaning="exponent of D"),
    )
    equation = "L = E + A/N^α + B/D^β"
    min_distinct = {"N": 3, "D": 3}  # (A, α) beside E from N alone; (B, β) from D alone

    def _terms(self, theta, X):
        a, b, e, alpha, beta = self.unpack(theta)
        log_n, log_d = np.log(X["N"]), np.log(X["D"])
        shape = np.broadcast_shapes(a.shape, log_n.shape)
        return (a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, shape)), log_n, log_d

    def predict(self, theta, X):
        (tn, td, te), _, _ = self._terms(theta, X)
        return np.exp(tn) + np.exp(td) + np.exp(te)

    def jacobian(self, theta, X):
        return self.predict_and_jacobian(theta, X)[1]

    def predict_and_jacobian(self, theta, X):
        (tn, td, te), log_n, log_d = self._terms(theta, X)
        n_term, d_term, e_term = np.exp(tn), np.exp(td), np.exp(te)
        jac = np.stack([n_term, d_term, e_term, -n_term * log_n, -d_term * log_d], axis=-1)
        return n_term + d_term + e_term, jac

    def default_starts(self):
        """Hoffmann et al.'s 5·5·5·6·6 = 4,500-point grid (as in Epoch's replication)."""
        return grid(
            a=np.arange(0, 30, 5.0), b=np.arange(0, 30, 5.0), e=np.arange(-1, 1.5, 0.5),
            alpha=np.arange(0, 2.5, 0.5), beta=np.arange(0, 2.5, 0.5),
        )

    def natural(self, theta):
        return {
            "A": np.exp(theta[:, 0]), "B": np.exp(theta[:, 1]), "E": np.exp(theta[:, 2]),
            "alpha": theta[:, 3], "beta": theta[:, 4],
        }

    # VPNLS: for fixed (α, β) the law is linear in (A, B, E), solved by NNLS
    def nonlinear_grid(self):
        return grid(alpha=np.linspace(0.05, 2.0, 40), beta=np.linspace(0.05, 2.0, 40))

    def linear_basis(self, nonlinear, X):
        alpha, beta = nonlinear[0], nonlinear[-1]
        return np.column_stack([X["N"] ** -alpha, X["D"] ** -beta, np.ones_like(X["N"])])

    def from_linear(self, nonlinear, coefs):
        A, B, E = np.maximum(coefs, 1e-300)
        return np.array([np.log(A), np.log(B), np.log(E), *nonlinear])


class ChinchillaTiedForm(ChinchillaForm):
    """Gadre et al.'s tied form: α = β (over-trained families are parallel lines in log-log)."""

    name = "chinchilla_tied"
    params = (
        Param("a", meaning="ln A"), Param("b", meaning="ln B"), Param("e", meaning="ln E"),
        Param("alpha", meaning="common exponent of N and D"),
    )
    equation = "L = E + A/N^α + B/D^α"
    min_distinct = {"N": 2, "D": 2}  # α is shared: A from N's spread, B from D's

    def _expand(self, theta):
        return np.concatenate([theta, theta[:, 3:4]], axis=1)

    def predict(self, theta, X):
        return super().predict(self._expand(theta), X)

    def predict_and_jacobian(self, theta, X):
        pred, full = super().predict_and_jacobian(self._expand(theta), X)
        return pred, np.concatenate([full[..., :3], full[..., 3:4] + full[..., 4:5]], axis=-1)

    def jacobian(self, theta, X):
        return self.predict_and_jacobian(theta, X)[1]

    def default_starts(self):
        return grid(
            a=np.arange(0, 30, 5.0), b=np.arange(0, 30, 5.0), e=np.arange(-1, 1.5, 0.5),
            alpha=np.arange(0, 2.5, 0.5),
        )

    def natural(self, theta):
        out = super().natural(self._expand(theta))
        out.pop("beta")
        return out

    def nonlinear_grid(self):
        return np.linspace(0.05, 2.0, 80)[:, None]


class KaplanForm(LawForm):
    """Kaplan et al.'s L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (finite-difference Jacobian)."""

    name = "kaplan"
    variables = ("N", "D")
    params = (
        Param("log_nc", meaning="ln N_c"), Param("log_dc", meaning="ln D_c"),
        Param("alpha_n", 1e-3, 5.0, meaning="α_N"), Param("alpha_d", 1e-3, 5.0, meaning="α_D"),
    )
    equation = "L = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D"

    def predict(self, theta, X):
        log_nc, log_dc, alpha_n, alpha_d = self.unpack(theta)
        inner = np.logaddexp((alpha_n / alpha_d) * (log_nc - np.log(X["N"])), log_dc - np.log(X["D"]))
        return np.exp(alpha_d * inner)

    def default_starts(self):
        return grid(log_nc=[20.0, 25.0, 30.0], log_dc=[20.0, 25.0, 30.0],
                    alpha_n=[0.05, 0.1, 0.3], alpha_d=[0.05, 0.1, 0.3])

    def natural(self, theta):
        return {"N_c": np.exp(theta[:, 0]), "D_c": np.exp(theta[:, 1]),
                "alpha_N": theta[:, 2], "alpha_D": theta[:, 3]}


# ---- loss curves under LR schedules ------------------------------------------------------------
class TissueForm(LawForm):
    """Tissue et al.'s LR-annealing law L(s) = L₀ + A·S₁^(−α) − C·S₂ (areas from ``lr_areas``)."""

    name = "lr_annealing"
    variables = ("S1", "S2")
    positive_variables = ("S1",)
    params = (
        Param("L0", 0.0, np.inf, meaning="loss floor"), Param("A", 0.0, np.inf),
        Param("alpha", 0.0, np.inf, meaning="exponent of the forward area"),
        Param("C", 0.0, np.inf, meaning="annealing coefficient"),
    )
    equation = "L = L₀ + A·S₁^(−α) − C·S₂"

    def predict(self, theta, X):
        l0, a, alpha, c = self.unpack(theta)
        return l0 + a * X["S1"] ** (-alpha) - c * X["S2"]

    def jacobian(self, theta, X):
        l0, a, alpha, c = self.unpack(theta)
        power = X["S1"] ** (-alpha)
        ones = np.ones_like(a * power)
        return np.stack([ones, power * ones, -a * power * np.log(X["S1"]), -X["S2"] * ones], axis=-1)

    def default_starts(self):
        """The 54 starts of the authors' reference script."""
        return grid(L0=np.linspace(0.1, 2.1, 2), A=np.linspace(1, 22, 3),
                    alpha=np.linspace(0, 0.8, 3), C=np.linspace(1, 22, 3))

    def nonlinear_grid(self):
        return np.linspace(0.0, 2.0, 81)[:, None]

    def linear_basis(self, nonlinear, X):
        return np.column_stack([np.ones_like(X["S1"]), X["S1"] ** -nonlinear[0], -X["S2"]])

    def from_linear(self, nonlinear, coefs):
        L0, A, C = coefs
        return np.array([L0, A, nonlinear[0], C])


REGISTRY: dict[str, type[LawForm]] = {}


def register_form(cls: type[LawForm]) -> type[LawForm]:
    """Make a form available by name to ``get_form`` and the workflow's configs."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty `name`")
    REGISTRY[cls.name] = cls
    return cls


for _cls in (PowerLawForm, PowerLawOffsetForm, BrokenPowerLawForm, ExponentialForm, TaskLawForm,
             ChinchillaForm, ChinchillaTiedForm, KaplanForm, TissueForm):
    register_form(_cls)


def get_form(form: str | LawForm, **kwargs) -> LawForm:
    """A form instance from its name (or the instance itself)."""
    if isinstance(form, LawForm):
        return form
    if form not in REGISTRY:
        raise ValueError(f"unknown law form {form!r}; known forms: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[form](**kwargs)


# ---- the compute-optimal allocation of the Chinchilla form --------------------------------------
def optimal_allocation(A, B, alpha, beta, C):
    """Hoffmann et al.'s eq. 4: N_opt, D_opt and D/N at compute C for L = E + A/N^α + B/D^β.

    G = (αA/(βB))^(1/(α+β)), N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)/N_opt. Broadcasts.
    """
    A, B, alpha, beta, C = (np.asarray(v, float) for v in (A, B, alpha, beta, C))
    with np.errstate(all="ignore"):
        a = beta / (alpha + beta)
        G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
        n_opt = G * (C / 6.0) ** a
        d_opt = (C / 6.0) / n_opt
    return n_opt, d_opt, d_opt / n_opt
