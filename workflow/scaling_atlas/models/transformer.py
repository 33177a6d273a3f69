"""A small decoder-only transformer (nanoGPT-style), with exact parameter and FLOP counts.

Pre-LayerNorm blocks, causal ``scaled_dot_product_attention``, rotary or learned positions, a
head tied to the token embedding or not. Linear layers have no bias (LayerNorms do), so the
parameter count is a short formula (:func:`parameter_counts`) that the tests check against
``numel``. FLOPs follow the conventions of ``shared/reference/fitting.md`` §1 and §5:
6·N per token, Kaplan's 6·N_non-embedding, Porian's ``attention`` (6N + 6·T·d·L) and Hoffmann's
exact count (App. F, forward × 3).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

INIT_STD = 0.02  # GPT-2 / nanoGPT


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    d_model: int
    n_layer: int
    n_head: int
    seq_len: int
    d_ff: int = 0  # 0 → 4·d_model
    positions: str = "rotary"  # rotary | learned
    tied_head: bool = True

    def __post_init__(self):
        problems = validate_shape(self.d_model, self.n_head, self.positions)
        if problems:
            raise ValueError("; ".join(problems))
        if self.d_ff == 0:
            object.__setattr__(self, "d_ff", 4 * self.d_model)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


def validate_shape(d_model: int, n_head: int, positions: str = "rotary") -> list[str]:
    """Shape rules as readable problems (used by config validation before any job runs)."""
    problems = []
    if n_head < 1 or d_model % n_head:
        problems.append(f"d_model = {d_model} is not divisible by n_head = {n_head}")
    elif positions == "rotary" and (d_model // n_head) % 2:
        problems.append(f"rotary positions need an even head dimension; d_model/n_head = "
                        f"{d_model // n_head}")
    if positions not in ("rotary", "learned"):
        problems.append(f"positions must be rotary or learned, not {positions!r}")
    return problems


def family_shape(d_model: int, aspect_ratio: float, head_dim: int, min_layers: int = 2) -> tuple[int, int]:
    """The width/depth family rule: n_layer = round(d_model / aspect_ratio), at least
    ``min_layers`` (2: a one-layer model has no depth to scale, and cannot form an induction
    circuit), and n_head = d_model / head_dim, as in Kaplan et al.'s fixed aspect ratio d/L."""
    return max(min_layers, round(d_model / aspect_ratio)), max(1, d_model // head_dim)


# ----------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------
def parameter_counts(cfg: TransformerConfig) -> dict[str, int]:
    """Exact parameter counts.

    ``total``: every trainable parameter (Hoffmann's N, embeddings included).
    ``non_embedding``: total minus token/position embeddings and an untied head (Kaplan's N).
    ``non_embedding_with_head``: non-embedding plus the V·d unembedding (Porian's "count the last
    layer"), whether or not it is tied.
    """
    d, V, L = cfg.d_model, cfg.vocab_size, cfg.n_layer
    per_layer = 3 * d * d + d * d + 2 * d * cfg.d_ff + 2 * 2 * d  # qkv, proj, mlp, 2 LayerNorms
    token = V * d
    position = cfg.seq_len * d if cfg.positions == "learned" else 0
    head = 0 if cfg.tied_head else V * d
    core = L * per_layer + 2 * d  # blocks + final LayerNorm
    return {
        "total": token + position + core + head,
        "non_embedding": core,
        "non_embedding_with_head": core + V * d,
        "embedding": token + position + head,
    }


def flops_per_token(cfg: TransformerConfig) -> dict[str, float]:
    """Training FLOPs per token under each convention (forward + backward)."""
    counts = parameter_counts(cfg)
    d, V, L, T, H = cfg.d_model, cfg.vocab_size, cfg.n_layer, cfg.seq_len, cfg.n_head
    # Hoffmann et al. App. F, per token of a length-T sequence (full attention matrix counted)
    attention = 2 * 3 * d * d + 2 * T * d + 3 * H * T + 2 * T * d + 2 * d * d
    dense = 2 * 2 * d * cfg.d_ff
    forward = 2 * V * d + L * (attention + dense) + 2 * d * V
    return {
        "6N": 6.0 * counts["total"],
        "kaplan": 6.0 * counts["non_embedding"],
        "attention": 6.0 * counts["total"] + 6.0 * T * d * L,
        "hoffmann": 3.0 * forward,
    }


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return torch.cos(angles), torch.sin(angles)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of a (B, H, T, hd) tensor by position-dependent angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    T = x.shape[-2]
    c, s = cos[:T].to(x.dtype), sin[:T].to(x.dtype)
    return torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.rotary = cfg.positions == "rotary"
        if self.rotary:
            cos, sin = rotary_tables(cfg.seq_len, cfg.head_dim)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if self.rotary:
            q, k = apply_rotary(q, self.cos, self.sin), apply_rotary(k, self.cos, self.sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.d_model) if cfg.positions == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = None if cfg.tied_head else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled by 1/√(2L) so the residual stream does not grow
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, 0.0, INIT_STD / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, INIT_STD)

    def unembedding(self) -> torch.Tensor:
        """The output matrix, one row per vocabulary token (the tied embedding when tied)."""
        return self.wte.weight if self.head is None else self.head.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids (B, T)."""
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.unembedding())

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy in nats."""
        logits = self(idx)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
