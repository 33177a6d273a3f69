"""Process pools with and without one BLAS thread per worker (``laws.parallel.worker_pool``).

    python benchmarks/bench_blas_threads.py [--fits 8] [--workers 2] [--n 240]

Runs the same Chinchilla fits (log-Huber δ = 1e-3, the full start grid, on points drawn from
Chinchilla's published law with 2 % noise) in a pool of ``--workers`` processes, twice: the
baseline is a plain ``ProcessPoolExecutor`` (each worker's OpenBLAS keeps as many threads as
the machine has cores, as Snakemake's ``OPENBLAS_NUM_THREADS = threads`` leaves it), then
``worker_pool`` (one BLAS thread per worker). Prints wall seconds and their ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd


def points(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), n))
    D = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n))
    loss = (1.69 + 406.4 / N**0.34 + 410.7 / D**0.28) * np.exp(rng.normal(0, 0.02, n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def fit_one(seed_n) -> float:
    from scaling_atlas.laws import FitWarning, LawFit

    warnings.simplefilter("ignore", FitWarning)
    seed, n = seed_n
    data = points(n, seed)
    start = time.perf_counter()
    LawFit("chinchilla").fit(data, data["loss"])
    return time.perf_counter() - start


def run(pool_factory, tasks) -> float:
    start = time.perf_counter()
    with pool_factory() as pool:
        list(pool.map(fit_one, tasks))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=240, help="points per fit")
    args = parser.parse_args()
    from scaling_atlas.laws.parallel import worker_pool

    tasks = [(seed, args.n) for seed in range(args.fits)]
    plain = run(lambda: ProcessPoolExecutor(args.workers), tasks)
    one = run(lambda: worker_pool(args.workers), tasks)
    print(f"{args.fits} Chinchilla fits ({args.n} points) in {args.workers} worker processes")
    print(f"  plain pool (BLAS threads = cores): {plain:7.2f} s   1.00")
    print(f"  worker_pool (one BLAS thread):     {one:7.2f} s   {one / plain:.2f}")


if __name__ == "__main__":
    main()
