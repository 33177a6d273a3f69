"""The ReLU-output toy model of Liu, Liu & Gore (2025), trained on sparse synthetic features.

Everything here works on a leading *model axis* R: ``W`` is ``[R, n, m]``, ``b`` is ``[R, n]``.
On a GPU a whole shard of runs advances as one batched program; on a CPU we pass R = 1 and loop
over runs, because the step is memory-bound there and batching only adds traffic.

Conventions follow ``shared/reference/superposition.md``:

* data: x_i = u_i v_i, u_i ~ Bernoulli(p_i), v_i ~ U(0, 2), a fresh batch every step;
* model: y = ReLU(W Wᵀ x + b), tied weights, W_ij ~ N(0, 1/m), b_i ~ N(0, 1);
* loss: the optimiser sees the authors' ``nn.MSELoss`` (mean over batch *and* features); we report
  the paper's unit, the sum over features (``paper = n × code``);
* optimiser: AdamW whose decay is applied first with the current LR; a negative decay pulls every
  row of W toward unit norm; the bias is never decayed.

Instead of drawing a dense Bernoulli matrix (B·n random numbers per step) we draw only the active
entries, about B·E of them, exactly (geometric skipping). Wᵀx then becomes a gather, and the
gradients are written out by hand, which avoids autograd's bookkeeping on a tiny graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MEAN_V, MEAN_V2 = 1.0, 4.0 / 3.0  # moments of v ~ U(0, 2)


# --------------------------------------------------------------------------------------------
# Feature frequencies
# --------------------------------------------------------------------------------------------
def feature_probabilities(
    n: int, dist: str, alpha: float = 1.0, density: float = 1.0, exp_scale: float = 400.0
) -> torch.Tensor:
    """Ranked activation probabilities p_1 ≥ … ≥ p_n (float64), with Σp = ``density``.

    ``power``: p_i ∝ i^(−α); ``exponential``: p_i ∝ exp(−(i−1)/exp_scale); ``linear``:
    p_i ∝ (n − i + 1)/n. Each is first normalised to Σp = 1. A density E > 1 uses the authors'
    mixing (``exp-15``): p ← p · (1 + s(1/p_1 − 1)), with s chosen so that Σp = E exactly;
    that needs E ≤ 1/p_1 (the most frequent feature cannot fire more than always).
    """
    i = torch.arange(1, n + 1, dtype=torch.float64)
    if dist == "power":
        weights = i ** (-float(alpha))
    elif dist == "exponential":
        weights = torch.exp(-(i - 1) / float(exp_scale))
    elif dist == "linear":
        weights = (n - i + 1) / n
    else:
        raise ValueError(f"unknown frequency distribution {dist!r}")
    p = weights / weights.sum()
    if density != 1.0:
        p = p * (1.0 + mixing_for_density(p, density) * (1.0 / p[0] - 1.0))
    return p.clamp_(max=1.0)


def mixing_for_density(p: torch.Tensor, density: float) -> float:
    """The authors' mixing s ∈ [0, 1] that turns Σp = 1 into Σp = E (``exp-15``)."""
    headroom = 1.0 / float(p[0]) - 1.0
    if density < 1.0 or density > 1.0 / float(p[0]) + 1e-9:
        raise ValueError(f"density {density} outside [1, 1/p_1 = {1.0 / float(p[0]):.4g}]")
    return 0.0 if headroom == 0 else (density - 1.0) / headroom


# --------------------------------------------------------------------------------------------
# Sparse data
# --------------------------------------------------------------------------------------------
@dataclass
class SparseBatch:
    """Active entries of a batch [B, n]: x[sample, feature] = value; every other entry is 0."""

    sample: torch.Tensor  # int64 [K]
    feature: torch.Tensor  # int64 [K]
    value: torch.Tensor  # float32 [K]
    batch_size: int
    n: int

    def to_dense(self) -> torch.Tensor:
        x = torch.zeros(self.batch_size, self.n, device=self.value.device, dtype=self.value.dtype)
        x[self.sample, self.feature] = self.value
        return x


def sample_sparse_batch(
    p: torch.Tensor, batch_size: int, generator: torch.Generator
) -> SparseBatch:
    """Draw x_i = Bernoulli(p_i)·U(0, 2) for a batch, producing only the active entries.

    Exact, not approximate: along the batch axis the successes of feature i are a Bernoulli
    process, so the gaps between them are Geometric(p_i). We draw a generous number of gaps per
    feature at once, cumulate them per feature, keep positions < B, and draw more for the (rare)
    features whose gaps did not yet reach past the batch end.
    """
    device, n = p.device, p.numel()
    # log(1 − p): −inf where p = 1 (every gap is 1); a p that underflowed to 0 gets a gap past
    # the batch end instead of a division by zero
    log_q = torch.log1p(-p).clamp_(max=-1e-30)
    features = torch.arange(n, device=device)
    start = torch.full((n,), -1, dtype=torch.int64, device=device)  # last position per feature
    samples, feats = [], []
    pending = features
    while pending.numel():
        mean = batch_size * p[pending]
        draws = torch.ceil(mean + 6.0 * torch.sqrt(mean) + 8.0).to(torch.int64)
        draws = draws.clamp_(max=batch_size + 1)
        owner = torch.repeat_interleave(pending, draws)
        uniform = 1.0 - torch.rand(
            owner.numel(), dtype=torch.float64, device=device, generator=generator
        )  # in (0, 1], so log is finite
        gaps = torch.floor(torch.log(uniform) / log_q[owner]) + 1.0
        gaps = gaps.clamp_(max=batch_size + 1).to(torch.int64)
        # Per-feature cumulative sum of gaps: global cumsum minus the total of earlier features.
        total = torch.cumsum(gaps, 0)
        seg_end = torch.cumsum(draws, 0) - 1
        before = torch.zeros_like(draws)
        before[1:] = total[seg_end[:-1]]
        position = start[owner] + total - torch.repeat_interleave(before, draws)
        keep = position < batch_size
        samples.append(position[keep])
        feats.append(owner[keep])
        start[pending] = position[seg_end]
        pending = pending[start[pending] < batch_size]
    sample = torch.cat(samples)
    feature = torch.cat(feats)
    value = 2.0 * torch.rand(sample.numel(), device=device, generator=generator)
    return SparseBatch(sample, feature, value, batch_size, n)


def stack_batches(batches: list[SparseBatch]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten R per-run batches into indices of the stacked [R·B] and [R·n] axes."""
    batch_size, n = batches[0].batch_size, batches[0].n
    sample = torch.cat([bt.sample + r * batch_size for r, bt in enumerate(batches)])
    feature = torch.cat([bt.feature + r * n for r, bt in enumerate(batches)])
    value = torch.cat([bt.value for bt in batches])
    return sample, feature, value


# --------------------------------------------------------------------------------------------
# Model: initialisation, forward, hand-written backward
# --------------------------------------------------------------------------------------------
@dataclass
class ToyModels:
    """R independent toy models and their Adam moments, stacked on a leading axis."""

    W: torch.Tensor  # [R, n, m]
    b: torch.Tensor  # [R, n]
    W_avg: torch.Tensor
    W_avg_sq: torch.Tensor
    b_avg: torch.Tensor
    b_avg_sq: torch.Tensor

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in ("W", "b", "W_avg", "W_avg_sq", "b_avg", "b_avg_sq")}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "ToyModels":
        return cls(**state)


def init_models(n: int, m: int, generators: list[torch.Generator], device) -> ToyModels:
    """W_ij ~ N(0, 1/m) (row norms ≈ 1) and b_i ~ N(0, 1), each run from its own generator."""
    W = torch.stack([torch.randn(n, m, generator=g, device=device) for g in generators])
    W /= math.sqrt(m)
    b = torch.stack([torch.randn(n, generator=g, device=device) for g in generators])
    zeros = torch.zeros_like
    return ToyModels(W, b, zeros(W), zeros(W), zeros(b), zeros(b))


def forward_residual(
    W: torch.Tensor, b: torch.Tensor, batches: list[SparseBatch]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward pass: per-run loss in paper units [R], the residual ReLU(z) − x, h = Wᵀx, and
    the flat positions of the active entries with a mask of where z > 0 there.

    The residual is flat [R·B·n] and reuses z's memory. Wᵀx is a gather (x is sparse).
    """
    R, n, m = W.shape
    batch_size = batches[0].batch_size
    sample, feature, value = stack_batches(batches)
    W_rows = W.reshape(R * n, m)
    h = torch.zeros(R * batch_size, m, device=W.device, dtype=W.dtype)
    h.index_add_(0, sample, value[:, None] * W_rows[feature])
    h = h.view(R, batch_size, m)
    z = torch.bmm(h, W.transpose(1, 2)).add_(b[:, None, :])  # [R, B, n]
    resid = z.clamp_(min=0.0).view(-1)  # ReLU(z), in z's memory; becomes ReLU(z) − x below
    active = sample * n + feature % n  # flat positions of the non-zero x entries
    z_positive = resid[active] > 0  # ReLU(z) > 0 ⇔ z > 0, needed only where x ≠ 0
    resid.index_add_(0, active, -value)
    loss_paper = torch.linalg.vector_norm(resid.view(R, -1), dim=1).square_() / batch_size
    return loss_paper, resid, h, (sample, feature, value, active, z_positive)


def loss_and_grads(
    W: torch.Tensor, b: torch.Tensor, batches: list[SparseBatch]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-run loss in paper units [R] and the gradients of the *code* loss (mean over B·n).

    z = W Wᵀ x + b,  r = ReLU(z) − x,  L_code = mean(r²),  G = ∂L_code/∂z = 2 r·1[z>0]/(B n)
    ∂L/∂b = Σ_batch G,   ∂L/∂W = Gᵀ h + x ⊗ (G W)   with h = Wᵀ x (a gather: x is sparse).
    """
    R, n, m = W.shape
    batch_size = batches[0].batch_size
    loss_paper, resid, h, (sample, feature, value, active, z_positive) = forward_residual(
        W, b, batches
    )
    # Where x = 0, ReLU(z) − x is already 0 wherever z ≤ 0, so the ReLU mask of the gradient
    # only has to be applied at the active entries: no dense mask pass. Integer indexing keeps
    # this free of host syncs on a GPU (a boolean index would not be).
    resid.index_put_((active,), resid[active] * z_positive)
    grad_z = resid.view(R, batch_size, n)  # ∂L_code/∂z up to the factor below
    scale = 2.0 / (batch_size * n)
    grad_b = grad_z.sum(dim=1).mul_(scale)
    grad_W = torch.bmm(grad_z.transpose(1, 2), h)
    back = torch.bmm(grad_z, W).view(R * batch_size, m)
    grad_W.view(R * n, m).index_add_(0, feature, value[:, None] * back[sample])
    grad_W.mul_(scale)
    return loss_paper, grad_W, grad_b


# --------------------------------------------------------------------------------------------
# Schedule and optimiser
# --------------------------------------------------------------------------------------------
def lr_factor(step: int, steps: int, warmup: int, final_fraction: float = 0.05) -> float:
    """Authors' schedule as a fraction of the peak: linear warmup, then cosine to final_fraction.

    ``step`` is 0-based as in the training loop; the authors evaluate at s = step + 1.
    """
    s = step + 1
    if warmup < steps:
        if s < warmup:
            return s / warmup
        progress = (s - warmup) / (steps - warmup)
    else:
        progress = s / steps
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_signed_decay(W: torch.Tensor, lr: torch.Tensor, gamma: torch.Tensor) -> None:
    """Decoupled weight decay with a sign: γ ≥ 0 shrinks W; γ < 0 pulls each row to unit norm.

    γ ≥ 0: W ← W (1 − η γ);  γ < 0: W_i ← W_i + η γ W_i (1 − 1/(‖W_i‖ + ε)).
    ``lr`` and ``gamma`` are per-run [R]. Both cases are one row-wise rescaling of W.
    """
    step = (lr * gamma)[:, None, None]
    norms = torch.linalg.vector_norm(W, dim=2, keepdim=True).add_(ADAM_EPS)
    shrink = 1.0 - step
    to_unit = 1.0 + step * (1.0 - 1.0 / norms)
    W.mul_(torch.where(gamma[:, None, None] >= 0, shrink, to_unit))


def adam_update(
    param: torch.Tensor, grad: torch.Tensor, avg: torch.Tensor, avg_sq: torch.Tensor,
    lr: torch.Tensor, t: int,
) -> None:
    """One bias-corrected Adam step, arithmetic as in ``torch.optim.AdamW``; ``lr`` is [R]."""
    beta1, beta2 = ADAM_BETAS
    avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (avg_sq.sqrt() / math.sqrt(1 - beta2**t)).add_(ADAM_EPS)
    step_size = (lr / (1 - beta1**t)).view(-1, *([1] * (param.dim() - 1)))
    param.sub_(step_size * avg / denom)


def optimizer_step(
    models: ToyModels, grad_W: torch.Tensor, grad_b: torch.Tensor, t: int,
    lr_W: torch.Tensor, lr_b: torch.Tensor, gamma: torch.Tensor,
) -> None:
    """Decay W first (with the current LR), then Adam on W and b; b is never decayed."""
    apply_signed_decay(models.W, lr_W, gamma)
    adam_update(models.W, grad_W, models.W_avg, models.W_avg_sq, lr_W, t)
    adam_update(models.b, grad_b, models.b_avg, models.b_avg_sq, lr_b, t)


# --------------------------------------------------------------------------------------------
# Metrics of a trained W
# --------------------------------------------------------------------------------------------
def weight_metrics(W: torch.Tensor, norm_bins: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """Representation metrics of one trained W [n, m] (float64 for the pair statistics).

    φ½, φ₁: fraction of rows with ‖W_i‖ > ½, > 1. Overlaps: (Ŵ_i·Ŵ_j)² over pairs i ≠ j of
    normalised rows, over all rows and over rows with ‖W_i‖ > 1 (the published code does not
    pin down which; we keep both), with their variance (the spread that ETF-like sets shrink).
    """
    W = W.detach().to(torch.float64)
    norms = torch.linalg.vector_norm(W, dim=1)
    unit = W / norms.clamp_min(1e-12)[:, None]
    overlaps = {
        "all": squared_overlap_moments(unit),
        "strong": squared_overlap_moments(unit[norms > 1]),
    }
    counts = torch.histogram(norms.cpu().clamp(max=float(norm_bins[-1]) - 1e-9), bins=norm_bins)
    return {
        "phi_half": float((norms > 0.5).double().mean()),
        "phi_one": float((norms > 1.0).double().mean()),
        "mean_sq_overlap": overlaps["all"][0],
        "sq_overlap_var": overlaps["all"][1],
        "mean_sq_overlap_strong": overlaps["strong"][0],
        "sq_overlap_var_strong": overlaps["strong"][1],
        "norm_hist": counts.hist / W.shape[0],
    }


def squared_overlap_moments(unit: torch.Tensor, block: int = 2048) -> tuple[float, float]:
    """Mean and variance of (u_i·u_j)² over ordered pairs i ≠ j of the rows of ``unit``.

    Accumulated over row blocks, so n = 10240 needs a [2048, n] block, not an n × n matrix.
    """
    k = unit.shape[0]
    if k < 2:
        return math.nan, math.nan
    total = total_sq = 0.0
    for start in range(0, k, block):
        sq = (unit[start : start + block] @ unit.T).square_()
        rows = torch.arange(sq.shape[0], device=unit.device)
        sq[rows, rows + start] = 0.0  # drop the i = j terms
        total += float(sq.sum())
        total_sq += float(sq.square_().sum())
    pairs = k * (k - 1)
    mean = total / pairs
    return mean, total_sq / pairs - mean**2


@torch.no_grad()
def evaluate_loss(
    W: torch.Tensor, b: torch.Tensor, p: torch.Tensor, samples: int,
    generator: torch.Generator, chunk: int = 8192,
) -> float:
    """Loss in paper units on ``samples`` fresh samples, drawn in chunks to bound memory."""
    total, done = 0.0, 0
    while done < samples:
        size = min(chunk, samples - done)
        batch = sample_sparse_batch(p, size, generator)
        loss = forward_residual(W[None], b[None], [batch])[0]
        total += float(loss[0]) * size
        done += size
    return total / samples
