"""AttentionInfluence on our transformer (Hua et al. 2025): retrieval scores of heads, masking
heads with uniform attention, and the relative loss increase of each document.

``forward_heads`` re-runs the model's own modules with explicit attention weights (the trained
model uses fused ``scaled_dot_product_attention``, which returns none), so that chosen heads can
be replaced by uniform causal attention 1/(t+1) and the weights can be read.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from scaling_atlas.models.transformer import Transformer, apply_rotary


def _attention(attn, x, masked_heads, keep_weights):
    B, T, C = x.shape
    H = attn.n_head
    q, k, v = attn.qkv(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
    if attn.rotary:
        q, k = apply_rotary(q, attn.cos, attn.sin), apply_rotary(k, attn.cos, attn.sin)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    if masked_heads:
        uniform = causal.float() / causal.sum(-1, keepdim=True)
        heads = torch.tensor(sorted(masked_heads), device=x.device)
        weights = weights.clone()
        weights[:, heads] = uniform
    y = (weights @ v).transpose(1, 2).reshape(B, T, C)
    return attn.proj(y), (weights if keep_weights else None)


@torch.no_grad()
def forward_heads(model: Transformer, idx: torch.Tensor, masked: set[tuple[int, int]] = frozenset(),
                  keep_weights: bool = False):
    """Logits (B, T, V) with the (layer, head) pairs in ``masked`` attending uniformly, and the
    attention weights per layer (B, H, T, T) when asked."""
    x = model.wte(idx)
    if model.wpe is not None:
        x = x + model.wpe(torch.arange(idx.shape[1], device=idx.device))
    weights = []
    for layer, block in enumerate(model.blocks):
        out, w = _attention(block.attn, block.ln1(x), {h for (l, h) in masked if l == layer},
                            keep_weights)
        x = x + out
        x = x + block.mlp(block.ln2(x))
        weights.append(w)
    return F.linear(model.ln_f(x), model.unembedding()), weights


def retrieval_scores(model: Transformer, docs: np.ndarray, recall: np.ndarray,
                     batch: int = 64) -> np.ndarray:
    """(L, H) retrieval score of every head on key–value probe documents (Wu et al. 2024 as used
    by AttentionInfluence): at each recall target the head *copies* when the model's top token
    is the gold value token and the head's most-attended position holds that token inside the
    context (not the query itself); the score is copies / recall targets."""
    device = next(model.parameters()).device
    L, H = len(model.blocks), model.blocks[0].attn.n_head
    copies, targets = np.zeros((L, H)), 0
    model.eval()
    for start in range(0, len(docs), batch):
        idx = torch.as_tensor(docs[start:start + batch], device=device)
        mask = torch.as_tensor(recall[start:start + batch], device=device)
        logits, weights = forward_heads(model, idx, keep_weights=True)
        # the prediction of token p is made at position p − 1
        pred_pos = mask[:, 1:].nonzero()  # (n, 2): doc, position p − 1
        b, p = pred_pos[:, 0], pred_pos[:, 1]
        gold = idx[b, p + 1]
        correct = logits[b, p].argmax(-1) == gold
        for layer, w in enumerate(weights):
            top = w[b, :, p].argmax(-1)  # (n, H) most-attended position of each head
            copied = (idx[b[:, None], top] == gold[:, None]) & (top < p[:, None] - 1)
            copies[layer] += (copied & correct[:, None]).sum(0).cpu().numpy()
        targets += len(b)
    return copies / max(targets, 1)


@torch.no_grad()
def document_losses(model: Transformer, docs: np.ndarray, masked=frozenset(),
                    batch: int = 256) -> np.ndarray:
    """Mean next-token cross-entropy of each document (nats/token), optionally with heads masked."""
    device = next(model.parameters()).device
    out = []
    model.eval()
    for start in range(0, len(docs), batch):
        idx = torch.as_tensor(docs[start:start + batch], device=device)
        logits, _ = forward_heads(model, idx, masked)
        loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), idx[:, 1:], reduction="none")
        out.append(loss.mean(1).cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def recall_per_document(model: Transformer, docs: np.ndarray, targets: np.ndarray, masked=frozenset(),
                        batch: int = 256) -> np.ndarray:
    """Teacher-forced top-1 accuracy of each document on its target positions (``targets``: the
    mask of tokens to predict, e.g. the queried values)."""
    device = next(model.parameters()).device
    out = []
    model.eval()
    for start in range(0, len(docs), batch):
        idx = torch.as_tensor(docs[start:start + batch], device=device)
        mask = torch.as_tensor(targets[start:start + batch], device=device)[:, 1:]
        logits, _ = forward_heads(model, idx, masked)
        hit = (logits[:, :-1].argmax(-1) == idx[:, 1:]) & mask
        out.append((hit.sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy())
    return np.concatenate(out).astype(float)


def recall_accuracy(model: Transformer, docs: np.ndarray, targets: np.ndarray, masked=frozenset()) -> float:
    """Teacher-forced top-1 accuracy over all target positions (documents with equally many
    targets weigh equally: the mean of the per-document accuracies)."""
    return float(recall_per_document(model, docs, targets, masked).mean())
