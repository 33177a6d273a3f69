"""Matrix sensing by gradient descent on a factorisation (Xiong, Ding & Du, ICLR 2024).

Recover a rank-r PSD M* (n×n) from y_i = ⟨A_i, M*⟩ with plain GD on
    symmetric   L(X)    = (1/2m) Σ_i (⟨A_i, X Xᵀ⟩ − y_i)²,   X ∈ ℝ^{n×k}
    asymmetric  L(F, G) = (1/2m) Σ_i (⟨A_i, F Gᵀ⟩ − y_i)²,   F, G ∈ ℝ^{n×k}
or, in the population limit (A = identity, m → ∞), L = ½‖X Xᵀ − M*‖²_F (resp. F Gᵀ): plain
matrix factorisation, the same dynamics without measurement noise, and fast.

Everything is batched over a leading run axis R (one shard = one program) and in float64: the
errors of interest go down to 1e−30.
"""

from __future__ import annotations

import math

import torch


def ground_truth(n: int, r: int, generator: torch.Generator) -> torch.Tensor:
    """M* = U diag(σ) Uᵀ with σ evenly spaced from 1 down to 1/2 (the reference uses (1, 0.5))."""
    u, _ = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64))
    sigma = torch.linspace(1.0, 0.5, r, dtype=torch.float64) if r > 1 else torch.ones(1, dtype=torch.float64)
    return (u * sigma) @ u.T


def measurements(n: int, m: int, symmetric: bool, generator: torch.Generator) -> torch.Tensor:
    """m Gaussian sensing matrices, flattened to (m, n²).

    The symmetric model uses symmetric A = (G + Gᵀ)/2; the asymmetric model needs general A:
    symmetric A_i cannot see the antisymmetric part of F Gᵀ and leave a false error plateau.
    Both satisfy E[⟨A, E⟩ A] = E for the errors each model makes, so the population limit of
    either loss is ½‖E‖²_F.
    """
    a = torch.randn(m, n, n, generator=generator, dtype=torch.float64)
    if symmetric:
        a = 0.5 * (a + a.transpose(1, 2))
    return a.reshape(m, n * n)


def initial_factors(n: int, k: int, alpha: float, asymmetric: bool, generator: torch.Generator):
    """X₀ = α·N(0,1)/√n; asymmetric: F₀ = α·N/√n, G₀ = (α/3)·N/√n (the imbalanced start)."""
    scale = alpha / math.sqrt(n)
    first = scale * torch.randn(n, k, generator=generator, dtype=torch.float64)
    if not asymmetric:
        return first, None
    return first, (scale / 3.0) * torch.randn(n, k, generator=generator, dtype=torch.float64)


def sensing_gram(a: torch.Tensor) -> torch.Tensor:
    """H = AᵀA/m (n² × n²): the loss is ½·vec(E)ᵀ H vec(E) and its gradient in M is H vec(E).

    Precomputing H replaces two (m × n²) products per step by one (n² × n²) product: the step
    is memory-bound, and H is m/n² times smaller than A (3× at the reference m = 3n²).
    """
    return a.T @ a / a.shape[0]


def error_gradient(error: torch.Tensor, gram: torch.Tensor | None) -> torch.Tensor:
    """∂L/∂M at M = current product: E itself in the population limit, else (1/m) Σ res_i A_i
    = H vec(E) (the residuals are A·vec(E), since y = A·vec(M*)).

    error: (R, n, n) = product − M*; gram: (R, n², n²) or None.
    """
    if gram is None:
        return error
    R, n, _ = error.shape
    return torch.bmm(gram, error.reshape(R, n * n, 1)).reshape(R, n, n)


def loss(error: torch.Tensor, gram: torch.Tensor | None) -> torch.Tensor:
    """The training loss per run (for gradient checks): ½‖E‖² or (1/2m) Σ ⟨A_i, E⟩²."""
    if gram is None:
        return 0.5 * (error**2).sum(dim=(1, 2))
    R, n, _ = error.shape
    vec = error.reshape(R, n * n, 1)
    return 0.5 * (vec.transpose(1, 2) @ torch.bmm(gram, vec)).reshape(R)


def gradients(X, G, error, gram):
    """(∂L/∂X, None) for the symmetric model (G None), (∂L/∂F, ∂L/∂G) for the asymmetric one,
    given the current error E = product − M* (computed once per step by the caller)."""
    grad_m = error_gradient(error, gram)
    if G is None:
        return (grad_m + grad_m.transpose(1, 2)) @ X, None
    return grad_m @ G, grad_m.transpose(1, 2) @ X


def product(X, G):
    return X @ (X if G is None else G).transpose(1, 2)


def squared_error(error: torch.Tensor) -> torch.Tensor:
    """‖E‖²_F per run, E = X Xᵀ − M* (or F Gᵀ − M*)."""
    return (error**2).sum(dim=(1, 2))


def rebalance(F: torch.Tensor, G: torch.Tensor):
    """The one-step modification: F ← F B, G ← G B^(−ᵀ) with B = (FᵀF)^(−1/2).

    F Gᵀ is unchanged; afterwards FᵀF = I, so the imbalance FᵀF − GᵀG is O(1) instead of O(α²)
    and the redundant directions of G no longer decay at a rate ∝ α².
    """
    evals, evecs = torch.linalg.eigh(F.transpose(1, 2) @ F)
    evals = evals.clamp_min(torch.finfo(F.dtype).tiny)
    b = evecs @ torch.diag_embed(evals.rsqrt()) @ evecs.transpose(1, 2)
    b_inv_t = (evecs @ torch.diag_embed(evals.sqrt()) @ evecs.transpose(1, 2)).transpose(1, 2)
    return F @ b, G @ b_inv_t


def imbalance(F: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Δ = FᵀF − GᵀG, conserved by gradient flow on F Gᵀ."""
    return F.transpose(1, 2) @ F - G.transpose(1, 2) @ G
