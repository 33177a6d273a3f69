"""Transformer training throughput: our trainer's step against a plain reference loop.

Both sides train the same model (weights copied) on the same token stream with the same
optimiser settings, in one process, measured in alternation so both see the same machine state.

* **ours** is the workflow's own loop: batches drawn by the trainer's ``WindowSampler`` (pinned
  memory on CUDA), then ``training_step`` (SDPA attention, fused AdamW, gradients set to None,
  no host sync per step; on CUDA bf16 autocast and ``torch.compile``).
* **reference** is the textbook loop: attention written out (q·kᵀ/√d, causal mask, softmax, ·v),
  per-tensor AdamW, gradients zeroed in place, float32, loss read every step, no compilation.

On CUDA the script first measures the device's dense bf16 matrix-product rate (8192³, random
data), then reports the model FLOP utilisation (MFU) of our step: model FLOPs per token
(6·N + 12·L·T·d, PaLM's convention; N counts the tied head once, as its matmul) × tokens/s,
against the datasheet bf16 peak and against the measured rate. Shapes are those of the
``paper`` preset (grammar vocabulary 512, T = 256, 64 sequences per step; family d/L = 64,
head dim 64), largest model last.

Run: ``python benchmarks/bench_lm.py`` (``--quick`` for a short check, ``--widths 768`` to pick
paper-preset widths on a GPU, ``--json FILE`` to keep the full numbers).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scaling_atlas.corpus.grammar import GrammarSpec, build_grammar, sample_documents
from scaling_atlas.models.shape import family_shape, parameter_counts
from scaling_atlas.models.transformer import (CausalSelfAttention, Transformer, TransformerConfig,
                                              apply_rotary)
from scaling_atlas.train.lm import (LMTrainSpec, WindowSampler, autocast_for, loss_function,
                                    make_optimizer, train_lm, training_step)

#: dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s)
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
VOCAB = 512  # the grammar corpus


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


def model_flops_per_token(cfg: TransformerConfig) -> float:
    """PaLM's MFU numerator: 6N for the weights plus 12·L·T·d for attention scores and values."""
    return 6.0 * parameter_counts(cfg)["total"] + 12.0 * cfg.n_layer * cfg.seq_len * cfg.d_model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_rate(run_steps, n_steps: int, tokens_per_step: int, repeats: int, device):
    """Median tokens/s over ``repeats`` blocks of ``n_steps`` steps (after a warm-up block), and
    the median host time per step: how long Python takes to enqueue a step. When that is as long
    as the step itself, the step is bound by kernel launches, not by the GPU."""
    run_steps(3)  # warm-up: compilation, allocator, autotuning, graph capture
    rates, host = [], []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        run_steps(n_steps)
        host.append((time.perf_counter() - t0) / n_steps)
        synchronize(device)
        rates.append(n_steps * tokens_per_step / (time.perf_counter() - t0))
    return statistics.median(rates), statistics.median(host)


def time_our_steps(model, tokens, batch: int, mode: str, steps: int, repeats: int, device):
    """(tokens/s, host s per step) of the trainer's loop: sampler batch + ``training_step``."""
    spec = LMTrainSpec(tokens=1, batch_size=batch, allow_repeat=True, compile=mode != "eager",
                       compile_mode=mode)
    sampler = WindowSampler(tokens, model.cfg.seq_len, seed=0, allow_repeat=True,
                            pin=device.type == "cuda")
    opt, loss_fn, autocast = (make_optimizer(model, spec, device), loss_function(model, spec),
                              autocast_for(device))
    done = [0]

    def our_steps(n):
        for _ in range(n):
            x_y = sampler.batch(done[0] * batch, batch)
            training_step(model, loss_fn, opt, [x_y], spec.lr, spec, device, autocast)
            done[0] += 1

    return timed_rate(our_steps, steps, batch * model.cfg.seq_len, repeats, device)


def bench(cfg: TransformerConfig, batch: int, steps: int, repeats: int, device,
          modes: list[str], reference: bool = True) -> dict:
    """tokens/s of our step under each compile mode (CUDA; "eager" = not compiled) and of the
    reference loop; ``host_ms_*``: Python's time to enqueue one step."""
    torch.manual_seed(0)
    tokens = np.random.default_rng(1).integers(0, cfg.vocab_size, size=(steps * 8 + 8) * batch
                                               * cfg.seq_len + 1).astype(np.uint16)
    template = Transformer(cfg).to(device)
    ref = reference_model(template) if reference else None
    tokens_per_step = batch * cfg.seq_len
    result = {}
    for mode in modes:
        rate, host = time_our_steps(copy.deepcopy(template), tokens, batch, mode, steps, repeats, device)
        result[mode], result[f"host_ms_{mode}"] = rate, host * 1e3
    result["ours"] = max(result[mode] for mode in modes)
    result["best_mode"] = max(modes, key=result.__getitem__)
    if ref is not None:
        spec = LMTrainSpec(tokens=1, batch_size=batch)
        position = {"ref": 0}
        ref_opt = torch.optim.AdamW(ref.parameters(), lr=spec.lr, betas=(spec.beta1, spec.beta2),
                                    weight_decay=spec.weight_decay)
        plain = WindowSampler(tokens, cfg.seq_len, seed=0, allow_repeat=True)

        def reference_steps(n):
            for _ in range(n):
                x, y = plain.batch(position["ref"] * batch, batch)
                x, y = x.to(device), y.to(device)
                logits = ref(x)
                loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(ref.parameters(), spec.grad_clip)
                ref_opt.step()
                ref_opt.zero_grad(set_to_none=False)
                float(loss.detach())  # the textbook loop reads its loss every step
                position["ref"] += 1

        result["reference"], host = timed_rate(reference_steps, steps, tokens_per_step, repeats,
                                               device)
        result["host_ms_reference"] = host * 1e3
    return result


def matmul_rate(device, dtype=torch.bfloat16, n: int = 8192, repeats: int = 10) -> float:
    """Measured dense matrix-product rate on random data (FLOP/s), median of ``repeats``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * n**3 / statistics.median(times)


def paper_config(width: int, seq_len: int = 256) -> TransformerConfig:
    n_layer, n_head = family_shape(width, aspect_ratio=64, head_dim=64, min_layers=1)
    return TransformerConfig(vocab_size=VOCAB, d_model=width, n_layer=n_layer, n_head=n_head,
                             seq_len=seq_len)


def grammar_tokens(n_tokens: int, stream: int) -> np.ndarray:
    """At least ``n_tokens`` tokens of the default grammar (the corpus of the paper preset)."""
    grammar, chunks, total = build_grammar(GrammarSpec()), [], 0
    while total < n_tokens:
        chunk = sample_documents(grammar, 100_000, np.random.default_rng([stream, len(chunks)]))
        chunks.append(chunk.tokens.astype(np.uint16))
        total += len(chunk.tokens)
    return np.concatenate(chunks)


def trainer_run(width: int, steps: int, batch: int, device, mode: str) -> dict:
    """The real ``train_lm`` (compile, eval points, checkpoints) on the grammar for ``steps``."""
    import tempfile

    cfg = paper_config(width)
    spec = LMTrainSpec(tokens=steps * batch * cfg.seq_len, batch_size=batch, lr=3e-3,
                       compile=mode != "eager", compile_mode=mode, eval_points=8,
                       eval_tokens=262144, checkpoint_every=max(1, steps // 2))
    train = grammar_tokens(spec.tokens + cfg.seq_len + 1, stream=0)
    val = grammar_tokens(spec.eval_tokens + cfg.seq_len + 1, stream=1)
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        _, result = train_lm(cfg, spec, train, val, device, Path(folder) / "run.pt",
                             log=lambda line: (lines.append(line), print("   ", line, flush=True)),
                             label=f"d={width} {mode}")
        wall = time.perf_counter() - t0
    peak_memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else math.nan
    return {"width": width, "mode": mode, "steps": steps, "wall_s": wall,
            "tokens_per_second_overall": result["tokens_per_second"],
            "val_loss": result["history"]["val_loss"].tolist(),
            "val_step": result["history"]["step"].tolist(), "peak_memory_bytes": peak_memory,
            "log": lines}


def profile_step(cfg: TransformerConfig, batch: int, device, mode: str, steps: int = 5) -> str:
    """Where a step's GPU time goes: the kernels under torch.profiler (compiled, no CUDA graphs,
    so each kernel is visible), largest total first."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    tokens = np.random.default_rng(1).integers(0, cfg.vocab_size, size=(steps + 8) * batch
                                               * cfg.seq_len + 1).astype(np.uint16)
    model = Transformer(cfg).to(device)
    spec = LMTrainSpec(tokens=1, batch_size=batch, allow_repeat=True, compile=True,
                       compile_mode=mode)
    sampler = WindowSampler(tokens, cfg.seq_len, seed=0, allow_repeat=True, pin=True)
    opt, loss_fn, autocast = (make_optimizer(model, spec, device), loss_function(model, spec),
                              autocast_for(device))
    for i in range(3):
        training_step(model, loss_fn, opt, [sampler.batch(i * batch, batch)], spec.lr, spec,
                      device, autocast)
    synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(steps):
            training_step(model, loss_fn, opt, [sampler.batch((i + 3) * batch, batch)], spec.lr,
                          spec, device, autocast)
        synchronize(device)
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--widths", type=int, nargs="*", default=[256, 768],
                        help="paper-preset widths to measure on a GPU")
    parser.add_argument("--batch", type=int, nargs="+", default=[64],
                        help="sequences per step on a GPU (the paper preset's is 64)")
    parser.add_argument("--sdpa", choices=["auto", "flash", "cudnn", "efficient"], default="auto",
                        help="GPU: force one scaled_dot_product_attention backend")
    parser.add_argument("--no-reference", action="store_true", help="GPU: skip the fp32 loop")
    parser.add_argument("--modes", nargs="+", default=["default", "reduce-overhead"],
                        help="GPU: torch.compile modes of our step to compare (or eager)")
    parser.add_argument("--profile", action="store_true",
                        help="GPU: print the kernels of the largest width's step (torch.profiler)")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument("--trainer-steps", type=int, default=0,
                        help="also run the real train_lm this many steps on the largest width")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps, repeats = (5, 2) if args.quick else (20, 3)
    report = {"device": str(device), "torch": torch.__version__, "rows": []}
    if device.type == "cpu":
        torch.set_num_threads(1)  # as in a training job (threads: 1)
        shapes = [(TransformerConfig(vocab_size=VOCAB, d_model=64, n_layer=2, n_head=8, seq_len=64), 32),
                  (TransformerConfig(vocab_size=VOCAB, d_model=128, n_layer=4, n_head=8, seq_len=128), 16)]
    else:
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK.items() if k in name), math.nan)
        measured = matmul_rate(device)
        report.update(gpu=name, datasheet_bf16_peak=peak, measured_bf16_matmul=measured)
        print(f"{name}: bf16 matmul 8192³ measured {measured / 1e12:.0f} TFLOP/s "
              f"(datasheet dense peak {peak / 1e12:.0f})")
        shapes = [(paper_config(width), batch) for width in args.widths for batch in args.batch]
        if args.sdpa != "auto":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                       "efficient": SDPBackend.EFFICIENT_ATTENTION}[args.sdpa]
            sdpa_kernel(backend).__enter__()  # for the whole process
            report["sdpa_backend"] = args.sdpa
    print(f"device: {device}; vocab {VOCAB}; {steps} steps × {repeats} repeats, median")
    header = f"{'model':>28} {'N':>11} {'reference tok/s':>16} {'ours tok/s':>12} {'ratio':>7}"
    if device.type == "cuda":
        header += f" {'MFU':>6} {'of measured':>11}"
    print(header)
    for cfg, batch in shapes:
        cuda = device.type == "cuda"
        rates = bench(cfg, batch, steps, repeats, device, args.modes if cuda else ["eager"],
                      reference=not (cuda and args.no_reference))
        n = parameter_counts(cfg)["total"]
        row = {"d_model": cfg.d_model, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
               "seq_len": cfg.seq_len, "batch": batch, "n_params": n, **rates,
               "flops_per_token": model_flops_per_token(cfg)}
        label = f"d={cfg.d_model} L={cfg.n_layer} T={cfg.seq_len} B={batch}"
        ref = rates.get("reference", math.nan)
        line = f"{label:>28} {n:11,} {ref:16,.0f} {rates['ours']:12,.0f} {rates['ours'] / ref:6.2f}×"
        if cuda:
            achieved = row["flops_per_token"] * rates["ours"]
            row.update(achieved_flops=achieved, mfu=achieved / report["datasheet_bf16_peak"],
                       fraction_of_measured=achieved / report["measured_bf16_matmul"])
            line += f" {row['mfu']:6.1%} {row['fraction_of_measured']:11.1%}"
        report["rows"].append(row)
        print(line, flush=True)
        if cuda:
            print(" " * 29 + ", ".join(
                f"{mode}: {rates[mode]:,.0f} tok/s, host {rates[f'host_ms_{mode}']:.1f} ms/step "
                f"of {batch * cfg.seq_len / rates[mode] * 1e3:.1f}" for mode in args.modes), flush=True)
    if args.profile and device.type == "cuda":
        table = profile_step(paper_config(max(args.widths)), args.batch[0], device, "default")
        report["profile"] = table
        print(table, flush=True)
    report["trainer_runs"] = []
    for mode in (args.modes if device.type == "cuda" else ["eager"]) if args.trainer_steps else []:
        width = max(args.widths) if device.type == "cuda" else 64
        run = trainer_run(width, args.trainer_steps, args.batch[0] if device.type == "cuda" else 8,
                          device, mode)
        report["trainer_runs"].append(run)
        print(f"train_lm d={width} {mode}: {run['steps']} steps in {run['wall_s']:.1f} s "
              f"(compilation, {len(run['val_loss'])} evaluations and checkpoints included), "
              f"{run['tokens_per_second_overall']:,.0f} tokens/s overall; val loss "
              + " → ".join(f"{v:.3f}" for v in run["val_loss"])
              + f"; peak memory {run['peak_memory_bytes'] / 2**30:.2f} GiB", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
