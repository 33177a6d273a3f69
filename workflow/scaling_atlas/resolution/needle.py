"""A needle in a large canvas: which of C tiny glyphs hides somewhere in an R×R noisy image?

The glyphs have the same number of lit pixels, so their mean brightness is equal: a detector
that sees the canvas at low resolution can tell *where* the glyph is (a brighter spot) but not
*which* glyph it is, because downsampling by R/G averages the glyph's pixels together. Two
models, the toy analogue of PS3 (Shi et al. 2025):

* ``downsample``: average-pool the canvas to G×G, then a small CNN. Cost fixed in R; once R/G
  reaches the glyph size its pixels merge and accuracy falls to chance (1/C).
* ``select``: a low-resolution glimpse (G×G) → a saliency map over the P×P high-resolution
  patches, trained with box supervision (binary cross-entropy against the patches the glyph
  overlaps, as PS3's selection supervision) → the top-K patches at full resolution → a shared patch
  encoder, max-pooled over the K patches → classes. Cost grows with K, not with R.

Costs are exact multiply-add counts of the layers (×2 FLOPs), per image, forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from scaling_atlas.resolution.task import NeedleTask

GLYPH_SEED = 20250325  # the task's glyphs are part of its definition, not of a run's seed


def glyphs(task: NeedleTask) -> torch.Tensor:
    """C distinct binary glyphs (C, g, g), each with ``lit`` pixels on, fixed by the task."""
    gen = torch.Generator().manual_seed(GLYPH_SEED + 1000 * task.glyph + task.lit)
    found: list[torch.Tensor] = []
    while len(found) < task.classes:
        mask = torch.zeros(task.glyph * task.glyph)
        mask[torch.randperm(task.glyph * task.glyph, generator=gen)[: task.lit]] = 1.0
        if not any(torch.equal(mask, other) for other in found):
            found.append(mask)
    return torch.stack(found).view(task.classes, task.glyph, task.glyph)


def sample_batch(task: NeedleTask, n: int, gen: torch.Generator, device: torch.device):
    """``n`` canvases (n, 1, R, R), their labels (n,) and glyph corners (n, 2), drawn from
    ``gen`` (on the CPU, so a seed gives the same data on any device)."""
    R, g = task.canvas, task.glyph
    labels = torch.randint(task.classes, (n,), generator=gen)
    corners = torch.randint(R - g + 1, (n, 2), generator=gen)
    images = torch.randn(n, 1, R, R, generator=gen)
    shapes = glyphs(task)[labels] * task.amplitude
    rows = corners[:, 0, None] + torch.arange(g)  # (n, g)
    cols = corners[:, 1, None] + torch.arange(g)
    index = torch.arange(n)[:, None, None]
    images[index, 0, rows[:, :, None], cols[:, None, :]] += shapes
    return images.to(device), labels.to(device), corners.to(device)


def patch_targets(task: NeedleTask, corners: torch.Tensor) -> torch.Tensor:
    """(n, S, S) 1 where a patch overlaps the glyph's box (the selection's supervision)."""
    S, P, g = task.patches_per_side, task.patch, task.glyph
    first = torch.div(corners, P, rounding_mode="floor")
    last = torch.div(corners + g - 1, P, rounding_mode="floor")
    grid = torch.arange(S, device=corners.device)
    in_rows = (grid[None, :] >= first[:, 0, None]) & (grid[None, :] <= last[:, 0, None])
    in_cols = (grid[None, :] >= first[:, 1, None]) & (grid[None, :] <= last[:, 1, None])
    return (in_rows[:, :, None] & in_cols[:, None, :]).float()


# ---- models --------------------------------------------------------------------------------------
def _conv_flops(in_ch: int, out_ch: int, kernel: int, side_out: int) -> float:
    return 2.0 * in_ch * out_ch * kernel * kernel * side_out * side_out


class DownsampleEncoder(nn.Module):
    """Average-pool to G×G, three 3×3 convolutions (the last two stride 2), global max pool."""

    def __init__(self, task: NeedleTask, channels: int = 32):
        super().__init__()
        self.task = task
        self.convs = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.ReLU())
        self.head = nn.Linear(channels, task.classes)
        self.channels = channels

    def forward(self, images):
        low = F.adaptive_avg_pool2d(images, self.task.glimpse)
        return self.head(self.convs(low).amax(dim=(2, 3))), None

    def flops(self) -> float:
        G, c = self.task.glimpse, self.channels
        return (self.task.canvas ** 2  # the pooling adds each pixel once
                + _conv_flops(1, c, 3, G) + _conv_flops(c, c, 3, G // 2)
                + _conv_flops(c, c, 3, G // 4) + 2.0 * c * self.task.classes)


class SelectEncoder(nn.Module):
    """Glimpse → patch saliency → top-K high-resolution patches → shared encoder → classes."""

    def __init__(self, task: NeedleTask, k: int, channels: int = 32):
        super().__init__()
        if not 1 <= k <= task.patches_per_side ** 2:
            raise ValueError(f"k = {k} must be between 1 and the {task.patches_per_side ** 2} "
                             f"patches of a {task.canvas} px canvas")
        self.task, self.k, self.channels = task, k, channels
        self.saliency = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 1, 1))
        self.patch_encoder = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(channels, task.classes)

    def patch_logits(self, images):
        """(n, S, S) saliency of each high-resolution patch, from the low-resolution glimpse."""
        glimpse_logits = self.saliency(F.adaptive_avg_pool2d(images, self.task.glimpse))
        S = self.task.patches_per_side
        if S <= self.task.glimpse:  # several glimpse cells per patch: average them
            return F.adaptive_avg_pool2d(glimpse_logits, S)[:, 0]
        return F.interpolate(glimpse_logits, size=(S, S), mode="nearest")[:, 0]

    def forward(self, images):
        logits = self.patch_logits(images)
        n, S, P = images.shape[0], self.task.patches_per_side, self.task.patch
        chosen = logits.flatten(1).topk(self.k, dim=1).indices  # hard selection: no gradient
        patches = images.unfold(2, P, P).unfold(3, P, P)  # (n, 1, S, S, P, P)
        patches = patches.reshape(n, S * S, P, P)
        picked = patches[torch.arange(n, device=images.device)[:, None], chosen]  # (n, K, P, P)
        features = self.patch_encoder(picked.reshape(n * self.k, 1, P, P)).amax(dim=(2, 3))
        return self.head(features.view(n, self.k, -1).amax(dim=1)), logits

    def flops(self) -> float:
        G, P, c = self.task.glimpse, self.task.patch, self.channels
        glimpse = (self.task.canvas ** 2 + _conv_flops(1, 16, 3, G) + _conv_flops(16, 16, 3, G)
                   + _conv_flops(16, 1, 1, G))
        per_patch = _conv_flops(1, c, 3, P) + _conv_flops(c, c, 3, P)
        return glimpse + self.k * per_patch + 2.0 * c * self.task.classes


def build_model(kind: str, task: NeedleTask, k: int, seed: int) -> nn.Module:
    """A freshly initialised model; the initial weights are a function of ``seed``."""
    torch.manual_seed(seed)
    if kind == "downsample":
        return DownsampleEncoder(task)
    if kind == "select":
        return SelectEncoder(task, k)
    raise ValueError(f"unknown model {kind!r} (downsample | select)")


def selection_loss(patch_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Box supervision of the selection: cross-entropy of the softmax over patches against the
    patches the glyph overlaps (spread evenly). With one or a few positives among S² patches
    this learns where per-patch binary cross-entropy, swamped by negatives, stalls."""
    target = targets.flatten(1) / targets.flatten(1).sum(1, keepdim=True)
    return -(target * F.log_softmax(patch_logits.flatten(1), dim=1)).sum(1).mean()


def train_needle(model: nn.Module, task: NeedleTask, steps: int, batch: int, lr: float, seed: int,
                 device: torch.device, log=print, label: str = "") -> dict:
    """Adam with a cosine schedule on fresh canvases every step; the selection model adds the
    box-supervised saliency loss. Deterministic on CPU for a given seed."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    running = torch.zeros((), device=device)
    for step in range(steps):
        images, labels, corners = sample_batch(task, batch, gen, device)
        logits, saliency = model(images)
        loss = F.cross_entropy(logits, labels)
        if saliency is not None:
            loss = loss + selection_loss(saliency, patch_targets(task, corners))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running += loss.detach()
        if (step + 1) % max(1, steps // 4) == 0:
            log(f"{label}: step {step + 1}/{steps}, loss {float(running) / max(1, steps // 4):.3f}")
            running.zero_()
    return {"final_train_loss": float(loss.detach())}


@torch.no_grad()
def evaluate_needle(model: nn.Module, task: NeedleTask, images: int, seed: int,
                    device: torch.device, batch: int = 250) -> dict:
    """Accuracy, and for the selection model how often the chosen patches contain the glyph,
    on ``images`` held-out canvases (fixed by ``seed``, the same for every model)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    correct, found, seen = 0, 0, 0
    for start in range(0, images, batch):
        n = min(batch, images - start)
        x, labels, corners = sample_batch(task, n, gen, device)
        logits, saliency = model(x)
        correct += int((logits.argmax(1) == labels).sum())
        if saliency is not None:
            chosen = saliency.flatten(1).topk(model.k, dim=1).indices
            hit = patch_targets(task, corners).flatten(1).gather(1, chosen).amax(1)
            found += int(hit.sum())
        seen += n
    return {"accuracy": correct / seen,
            "glyph_found": found / seen if isinstance(model, SelectEncoder) else math.nan}
