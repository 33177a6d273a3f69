"""Throughput of the superposition trainer against a plain dense loop, same grid, same run.

Baseline ("plain dense"): how the authors' scripts train — one model at a time, a dense
Bernoulli×U(0,2) batch [B, n] every step, autograd through ReLU(x W Wᵀ + b) with nn.MSELoss, and
an AdamW with signed decay applied parameter by parameter.
Ours ("sparse, per model"): what the workflow uses on CPU — exact sparse sampling (≈ B·E active
entries), Wᵀx as a gather, hand-written gradients, one model at a time.
Also ("sparse, batched"): all widths' runs of a shard stacked on a model axis with bmm, which is
what the workflow uses on GPU; on CPU it shows why we do not batch there.

Prints model-steps/s per width and the ratios, plus achieved GFLOP/s of the dense matmul work
(6·B·n·m per step, the same count for every variant) against this machine's measured sgemm rate.
Usage: python benchmarks/bench_superposition.py [--steps 150] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from scaling_atlas.models import superposition_toy as toy


def plain_dense_steps(n, m, batch, steps, p, gamma=-1.0, lr=0.01) -> float:
    """Seconds per step of the authors'-style loop."""
    g = torch.Generator().manual_seed(0)
    W = torch.nn.Parameter(torch.randn(n, m, generator=g) / math.sqrt(m))
    b = torch.nn.Parameter(torch.randn(n, generator=g))
    state = {id(t): (torch.zeros_like(t), torch.zeros_like(t)) for t in (W, b)}
    criterion = torch.nn.MSELoss()
    p32 = p.float()

    def step(t):
        x = (torch.rand(batch, n, generator=g) < p32).float() * torch.rand(batch, n, generator=g) * 2
        W.grad = b.grad = None
        loss = criterion(torch.relu(x @ W @ W.T + b), x)
        loss.backward()
        with torch.no_grad():
            for param, decay in ((W, gamma), (b, 0.0)):
                if decay >= 0:
                    param.mul_(1 - decay * lr)
                else:
                    norms = param.norm(dim=1, keepdim=True).add_(1e-8)
                    param.add_(decay * param * (1 - 1 / norms), alpha=lr)
                avg, avg_sq = state[id(param)]
                avg.mul_(0.9).add_(param.grad, alpha=0.1)
                avg_sq.mul_(0.999).addcmul_(param.grad, param.grad, value=0.001)
                denom = (avg_sq.sqrt() / math.sqrt(1 - 0.999**t)).add_(1e-8)
                param.addcdiv_(avg, denom, value=-lr / (1 - 0.9**t))
        return loss

    return timed(step, steps)


def dense_bmm_steps(n, m, batch, steps, p, models_per_step, gamma=-1.0, lr=0.01) -> float:
    """Seconds per model-step of naive batching: the plain dense loop with a model axis (bmm)."""
    g = torch.Generator().manual_seed(0)
    R = models_per_step
    W = torch.nn.Parameter(torch.randn(R, n, m, generator=g) / math.sqrt(m))
    b = torch.nn.Parameter(torch.randn(R, 1, n, generator=g))
    opt = torch.optim.Adam([W, b], lr=lr)  # decay omitted: it only flatters this variant
    p32 = p.float()

    def step(t):
        x = (torch.rand(R, batch, n, generator=g) < p32).float() * torch.rand(R, batch, n, generator=g) * 2
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(torch.relu(torch.bmm(torch.bmm(x, W), W.transpose(1, 2)) + b), x)
        loss.backward()
        opt.step()
        return loss

    return timed(step, steps) / R


def sparse_steps(n, m, batch, steps, p, models_per_step=1, gamma=-1.0, lr=0.01) -> float:
    """Seconds per *model*-step of our trainer with R models stacked."""
    gens = [torch.Generator().manual_seed(r) for r in range(models_per_step)]
    models = toy.init_models(n, m, gens, "cpu")
    rate = torch.full((models_per_step,), lr)
    decay = torch.full((models_per_step,), gamma)
    p32 = p.float()

    def step(t):
        batches = [toy.sample_sparse_batch(p32, batch, gen) for gen in gens]
        loss, grad_W, grad_b = toy.loss_and_grads(models.W, models.b, batches)
        toy.optimizer_step(models, grad_W, grad_b, t, rate, rate, decay)
        return loss

    return timed(step, steps) / models_per_step


def timed(step, steps, warmup=20) -> float:
    for t in range(1, warmup + 1):
        step(t)
    start = time.perf_counter()
    for t in range(warmup + 1, warmup + steps + 1):
        step(t)
    return (time.perf_counter() - start) / steps


def sgemm_gflops(size=1024, repeats=5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--widths", type=int, nargs="+", default=[4, 6, 8, 11, 16, 22])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batched-models", type=int, default=9,
                        help="models per bmm in the batched variant (a quick-preset shard)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (workflow jobs use 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    p = toy.feature_probabilities(args.n, "power", args.alpha)
    peak = sgemm_gflops()
    print(f"grid: n={args.n} widths={args.widths} batch={args.batch} α={args.alpha} "
          f"threads={args.threads}; measured sgemm 1024³: {peak:.1f} GFLOP/s")
    header = (f"{'m':>4} {'plain dense':>12} {'dense bmm':>10} {'ours':>9} {'ours bmm':>9} "
              f"{'ours/plain':>10} {'bmm/plain':>9} {'GFLOP/s':>8} {'of sgemm':>8}")
    print(header + "\n" + "-" * len(header))
    totals = {"plain": 0.0, "dense_bmm": 0.0, "ours": 0.0, "bmm": 0.0}
    for m in args.widths:
        plain = plain_dense_steps(args.n, m, args.batch, args.steps, p)
        ours = sparse_steps(args.n, m, args.batch, args.steps, p)
        R = args.batched_models
        dense_bmm = dense_bmm_steps(args.n, m, args.batch, args.steps, p, models_per_step=R)
        bmm = sparse_steps(args.n, m, args.batch, args.steps, p, models_per_step=R)
        totals["plain"] += plain
        totals["dense_bmm"] += dense_bmm
        totals["ours"] += ours
        totals["bmm"] += bmm
        gflops = 6 * args.batch * args.n * m / ours / 1e9
        print(f"{m:>4} {1 / plain:>10.0f}/s {1 / dense_bmm:>8.0f}/s {1 / ours:>7.0f}/s "
              f"{1 / bmm:>7.0f}/s {plain / ours:>9.2f}x {plain / bmm:>8.2f}x "
              f"{gflops:>8.2f} {gflops / peak:>7.1%}")
    print("-" * len(header))
    # grid throughput: one model-step of every width, i.e. the time to advance the whole grid
    rate = {k: len(args.widths) / v for k, v in totals.items()}
    print(f"whole grid (model-steps/s): plain dense {rate['plain']:.0f}, dense bmm "
          f"{rate['dense_bmm']:.0f}, ours {rate['ours']:.0f}, ours bmm×{args.batched_models} {rate['bmm']:.0f}")
    print(f"ratio ours / plain dense = {rate['ours'] / rate['plain']:.2f}x (goal ≥ 1.5x); "
          f"dense bmm / plain dense = {rate['dense_bmm'] / rate['plain']:.2f}x; "
          f"ours bmm / ours per model = {rate['bmm'] / rate['ours']:.2f}x")


if __name__ == "__main__":
    main()
