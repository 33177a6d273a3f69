"""The analytic cost of encoding an image at high resolution: global vs selective (PS3).

A ViT with patch size p turns a square image of side R into (R/p)² tokens. Its forward cost per
image is, to leading order, 2·N·T for the dense layers (N parameters, T tokens) plus 4·L·d·T² for
attention (scores QKᵀ and the weighted sum AV, L layers of width d): linear in the pixel count
through the first term, quadratic through the second. PS3 instead encodes a low-resolution
glimpse (the base resolution's tokens) plus a fixed budget of selected high-resolution patches
per "look", so its cost stops growing with R. Spec: shared/reference/data-selection-and-resolution.md §2.
"""

from __future__ import annotations

import math

#: published token counts (PS3 repository README, patch size 14)
PUBLISHED_TOKENS = {378: 729, 756: 2916, 1512: 11664, 3780: 72900}
PUBLISHED_ALL_SCALES = 88209
#: SigLIP-so400m/14: ≈ 4.0e8 parameters, width 1152, 27 layers (the encoder PS3 builds on)
SO400M = {"params": 4.0e8, "width": 1152, "layers": 27}


def tokens(resolution: int, patch: int) -> int:
    """Tokens of a global encoding: one per p×p patch of an R×R image (R a multiple of p)."""
    if resolution % patch:
        raise ValueError(f"resolution {resolution} is not a multiple of the patch size {patch}")
    return (resolution // patch) ** 2


def forward_flops(n_tokens: float, params: float, width: int, layers: int) -> float:
    """Forward FLOPs of one image: 2·N·T (dense) + 4·L·d·T² (attention scores and sum)."""
    return 2.0 * params * n_tokens + 4.0 * layers * width * n_tokens ** 2


def selective_tokens(resolution: int, patch: int, base_resolution: int, per_look: int,
                     looks: int = 1) -> int:
    """PS3's tokens: the low-resolution glimpse plus at most ``per_look`` high-resolution patches
    per look (never more patches than the image has; none at or below the glimpse's size)."""
    return tokens(base_resolution, patch) + _high_tokens(resolution, patch, base_resolution,
                                                         per_look * looks)


def _high_tokens(resolution: int, patch: int, base_resolution: int, budget: int) -> int:
    return min(budget, tokens(resolution, patch)) if resolution > base_resolution else 0


def selective_flops(resolution: int, patch: int, base_resolution: int, per_look: int,
                    params: float, width: int, layers: int, looks: int = 1) -> float:
    """Forward FLOPs of selective encoding: each look attends within its own tokens (the
    glimpse is encoded once), so attention is quadratic in the per-look count, not in R."""
    glimpse = tokens(base_resolution, patch)
    high = _high_tokens(resolution, patch, base_resolution, per_look * looks)
    per = [min(per_look, high - i * per_look) for i in range(max(1, math.ceil(high / per_look)))]
    return (forward_flops(glimpse, params, width, layers)
            + sum(forward_flops(t, params, width, layers) for t in per if t > 0))
