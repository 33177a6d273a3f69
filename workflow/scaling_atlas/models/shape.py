"""The transformer family's shapes on paper (no PyTorch): the configuration, the depth rule,
and the exact parameter and FLOP counts of :mod:`scaling_atlas.models.transformer` (whose tests
check the counts against ``numel``). Planning a grid, validating a config and analysing results
need only this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
