"""Benchmark: the Chinchilla-form fit on Epoch's data, ours vs one scipy.minimize per start.

Usage: python benchmarks/bench_fitting.py [--data DIR] [--resamples 4000] [--jobs 2]

Both sides minimise the same objective (summed log-Huber, δ = 1e−3) with the same analytic
gradient and L-BFGS-B defaults; the baseline refines every one of Hoffmann's 4,500 starts
(Epoch's notebook), ours screens all starts in one vectorised evaluation and refines the best 32.
Then the 4,000-resample bootstrap (each resample refitted from the optimum) on --jobs cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from scaling_atlas.laws import LawFit, chinchilla_derived

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "published"


def epoch_points(data_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(data_dir / "chinchilla_besiroglu2024_svg_extracted_data.csv")
    df = df.sort_values("loss", kind="stable").iloc[:-5]
    return pd.DataFrame({"N": df["Model Size"], "D": df["Training FLOP"] / (6 * df["Model Size"]),
                         "loss": df["loss"]})


def baseline(points: pd.DataFrame):
    """Epoch's procedure: L-BFGS-B from every grid start, keep the lowest objective."""
    engine = LawFit("chinchilla", scale_objective=False)
    X = {"N": points["N"].to_numpy(), "D": points["D"].to_numpy()}
    y = points["loss"].to_numpy()
    best = None
    for start in engine.law_form.default_starts():
        res = optimize.minimize(engine._value_and_grad, start, args=(X, y, None), jac=True,
                                method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--resamples", type=int, default=4000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of our grid fit")
    args = parser.parse_args()
    points = epoch_points(args.data)

    t0 = time.perf_counter()
    base = baseline(points)
    t_base = time.perf_counter() - t0

    ours_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit = LawFit("chinchilla").fit(points, points["loss"])
        ours_times.append(time.perf_counter() - t0)
    t_ours = float(np.median(ours_times))
    rel = abs(fit.objective_value_ - base.fun) / base.fun

    print(f"Epoch data: {len(points)} points, {fit.n_starts_} starts")
    print(f"baseline  (minimize per start): {t_base:8.2f} s   objective {base.fun:.10g}")
    print(f"ours (screen + refine {fit.n_refined_:2d}):    {t_ours:8.3f} s   objective "
          f"{fit.objective_value_:.10g}   ({fit.n_reached_best_} of {fit.n_refined_} reached it)")
    print(f"ratio baseline / ours = {t_base / t_ours:.0f}x (goal >= 50x); grid fit goal <= 1 s")
    print(f"objective relative difference = {rel:.2e} (must be <= 1e-6): "
          f"{'OK' if rel <= 1e-6 else 'MISMATCH'}")
    print("ours:", {k: round(v, 5) for k, v in fit.natural_.items()})

    t0 = time.perf_counter()
    fit.bootstrap(args.resamples, seed=42, n_jobs=args.jobs, derived=chinchilla_derived([5.88e23]))
    t_boot = time.perf_counter() - t0
    ci = fit.intervals()
    print(f"bootstrap: {args.resamples} resamples on {args.jobs} processes in {t_boot:.1f} s "
          f"(goal <= 60 s); failed refits {fit.n_failed_draws_}")
    for name in ("A", "B", "E", "alpha", "beta", "a", "D_over_N@5.88e23"):
        print(f"  95% CI {name:>18}: ({ci[name][0]:.4g}, {ci[name][1]:.4g})")


if __name__ == "__main__":
    main()
