"""Transformer training throughput: our trainer's step against a plain reference loop.

Same model (weights copied), same batches, same optimiser settings, one process, measured in
alternation so both see the same machine state. The reference is the textbook loop:
attention written out (q·kᵀ/√d, causal mask, softmax, ·v) instead of
``scaled_dot_product_attention``, and gradients zeroed in place. On CUDA the script also reports
the model FLOP utilisation (6N + attention FLOPs per token against the GPU's bf16 peak) of our
trainer for the largest paper-preset model.

Run: ``python benchmarks/bench_lm.py`` (add ``--quick`` for a short check).
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch
import torch.nn.functional as F

from scaling_atlas.models.transformer import (CausalSelfAttention, Transformer, TransformerConfig,
                                              apply_rotary, flops_per_token)
from scaling_atlas.train.lm import LMTrainSpec, make_optimizer

BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 FLOP/s


def reference_attention(self: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    B, T, C = x.shape
    q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
    if self.rotary:
        q, k = apply_rotary(q, self.cos, self.sin), apply_rotary(k, self.cos, self.sin)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
    att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
    return self.proj((att @ v).transpose(1, 2).reshape(B, T, C))


def reference_model(model: Transformer) -> Transformer:
    ref = copy.deepcopy(model)
    for block in ref.blocks:
        block.attn.forward = reference_attention.__get__(block.attn)
    return ref


def step_ours(model, opt, x, y, autocast):
    with autocast():
        loss = model.loss(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_reference(model, opt, x, y, autocast):
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=False)


def tokens_per_second(step, model, opt, batches, device, autocast, repeats):
    for x, y in batches[:3]:  # warm-up (and compilation)
        step(model, opt, x, y, autocast)
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for x, y in batches:
            step(model, opt, x, y, autocast)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(sum(y.numel() for _, y in batches) / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench(cfg: TransformerConfig, batch: int, steps: int, repeats: int, device, compile_: bool):
    from contextlib import nullcontext

    torch.manual_seed(0)
    ours = Transformer(cfg).to(device)
    ref = reference_model(ours)
    spec = LMTrainSpec(tokens=1)
    opt_ours, opt_ref = make_optimizer(ours, spec, device), torch.optim.AdamW(
        ref.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2), weight_decay=spec.weight_decay)
    cuda = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext
    model = torch.compile(ours) if compile_ else ours
    g = torch.Generator().manual_seed(1)
    batches = [(x.to(device), y.to(device)) for x, y in
               ((d[:, :-1], d[:, 1:]) for d in
                (torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len + 1), generator=g)
                 for _ in range(steps)))]
    ref_rate = tokens_per_second(step_reference, ref, opt_ref, batches, device, nullcontext, repeats)
    our_rate = tokens_per_second(step_ours, model, opt_ours, batches, device, autocast, repeats)
    return our_rate, ref_rate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)  # as in a training job (threads: 1)
        shapes = [(64, 2, 8, 64, 32), (128, 4, 8, 128, 16)]  # d, L, heads, T, batch
    else:
        shapes = [(256, 8, 4, 256, 64), (1024, 16, 16, 1024, 32)]  # the paper preset's range
    steps, repeats = (5, 2) if args.quick else (20, 3)
    print(f"device: {device}; vocab 512; {steps} steps × {repeats} repeats, median")
    print(f"{'model':>24} {'reference tok/s':>16} {'ours tok/s':>12} {'ratio':>7}")
    for d, L, H, T, batch in shapes:
        cfg = TransformerConfig(vocab_size=512, d_model=d, n_layer=L, n_head=H, seq_len=T)
        ours, ref = bench(cfg, batch, steps, repeats, device, compile_=device.type == "cuda")
        label = f"d={d} L={L} T={T} B={batch}"
        print(f"{label:>24} {ref:16,.0f} {ours:12,.0f} {ours / ref:6.2f}×")
        if device.type == "cuda":
            name = torch.cuda.get_device_name()
            peak = next((v for k, v in BF16_PEAK.items() if k in name), math.nan)
            mfu = flops_per_token(cfg)["attention"] * ours / peak
            print(f"{'':>24} MFU {mfu:.1%} of {name}'s bf16 peak ({peak:.3g} FLOP/s)")


if __name__ == "__main__":
    main()
