"""Benchmark: a 5-parameter Chinchilla fit with the full 4,500-start grid at 10^4–10^6 points.

Usage: python benchmarks/bench_fitting_scale.py [--sizes 10000 100000 1000000] [--baseline 100000]

Each fit runs in its own process; we report its wall time and its peak resident memory
(``ru_maxrss``) above the memory the process held once its data were made, so that the figure
is the fit's own. "ours" is the engine's default (screen the grid and refine the 32 best starts
on a seeded 20,000-point subsample, then refine the 4 best distinct optima on every point);
"all points" is the same engine with ``screen_points=None`` (every start screened and every
refinement run on all points), the baseline in the same run. Goal (#19): 10^6 points in ≤ 30 s
and ≤ 2 GB on 2 cores, memory linear in the points.

The data: N log-uniform in [1e6, 1e10], D log-uniform in [1e8, 1e12], L = 1.69 + 406.4/N^0.34
+ 410.7/D^0.28 times exp(0.01·ε), ε ~ N(0, 1), seeded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def make_points(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e12), n))
    loss = TRUTH["E"] + TRUTH["A"] / N ** TRUTH["alpha"] + TRUTH["B"] / D ** TRUTH["beta"]
    return {"N": N, "D": D}, loss * np.exp(0.01 * rng.standard_normal(n))


def child(n: int, all_points: bool) -> dict:
    from scaling_atlas.laws import LawFit

    X, y = make_points(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    fit = LawFit("chinchilla", screen_points=None if all_points else 20_000).fit(X, y)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "variant": "all points" if all_points else "ours", "seconds": seconds,
            "fit_mib": (peak - before) / 1024, "peak_mib": peak / 1024,
            "n_starts": fit.n_starts_, "n_reached_best": fit.n_reached_best_,
            **{k: fit.natural_[k] for k in TRUTH}}


def run(n: int, all_points: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(n)]
                         + (["--all-points"] if all_points else []),
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--baseline", type=int, nargs="*", default=[100_000],
                        help="sizes also fitted with every point in the screen (slow)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--all-points", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.all_points)))
        return
    rows = [run(n, False) for n in args.sizes] + [run(n, True) for n in args.baseline]
    print(f"{'points':>9} {'variant':>10} {'seconds':>8} {'fit MiB':>8} {'peak MiB':>9} "
          f"{'reached':>7}  {'E':>6} {'A':>7} {'B':>7} {'alpha':>6} {'beta':>6}")
    for r in rows:
        print(f"{r['n']:>9} {r['variant']:>10} {r['seconds']:8.1f} {r['fit_mib']:8.0f} "
              f"{r['peak_mib']:9.0f} {r['n_reached_best']:>7}  {r['E']:6.3f} {r['A']:7.1f} "
              f"{r['B']:7.1f} {r['alpha']:6.3f} {r['beta']:6.3f}")
    print(f"truth: E {TRUTH['E']}, A {TRUTH['A']}, B {TRUTH['B']}, alpha {TRUTH['alpha']}, "
          f"beta {TRUTH['beta']}")
    ours = {r["n"]: r for r in rows if r["variant"] == "ours"}
    for r in rows:
        if r["variant"] == "all points" and r["n"] in ours:
            o = ours[r["n"]]
            print(f"at {r['n']} points: ours {o['seconds']:.1f} s vs all points {r['seconds']:.1f} s"
                  f" = {r['seconds'] / o['seconds']:.1f}x faster; fit memory {o['fit_mib']:.0f} vs "
                  f"{r['fit_mib']:.0f} MiB")
    big = max(ours)
    b = ours[big]
    print(f"goal at {big} points: {b['seconds']:.1f} s (≤ 30) and {b['peak_mib']:.0f} MiB peak "
          f"(≤ 2048): {'met' if b['seconds'] <= 30 and b['peak_mib'] <= 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
