"""The scaling-data registry and the backtest's procedures, timed (issue #21).

    python benchmarks/bench_backtest.py [--mirror ../shared/data/published] [--family epoch_chinchilla]

Loads every registered dataset from the mirror (sha256 checks and QC included), then runs each
procedure's four splits (three held out, plus all points) on one family. The baseline, in the
same run, is the reference procedure (``chinchilla``: log-Huber δ = 1e-3, the full start grid);
each row gives its seconds and the ratio to it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from scaling_atlas.datasets.registry import REGISTRY, best_per_point, load
from scaling_atlas.laws import FitWarning
from scaling_atlas.laws.backtest import PROCEDURES, backtest_family


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", default=str(Path(__file__).resolve().parents[2] / "shared/data/published"))
    parser.add_argument("--family", default="epoch_chinchilla")
    parser.add_argument("--procedures", nargs="+", default=[p for p in PROCEDURES if p != "mae"])
    args = parser.parse_args()
    warnings.simplefilter("ignore", FitWarning)

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        rows = sum(len(load(name, args.mirror, cache_dir=cache)) for name in REGISTRY)
        print(f"registry: {len(REGISTRY)} datasets, {rows} rows loaded, verified and QC-flagged "
              f"in {time.perf_counter() - start:.2f} s")
        table = load(args.family, args.mirror, cache_dir=cache)
    clean = best_per_point(table[~table.filter(like="qc_").any(axis=1)])
    points = clean[["N", "D", "C", "loss"]].reset_index(drop=True)
    isoflop = REGISTRY[args.family].isoflop
    print(f"family {args.family}: {len(points)} points, IsoFLOP {isoflop}; 4 splits per procedure")
    print(f"{'procedure':24s} {'seconds':>8s} {'× chinchilla':>13s}")
    baseline = None
    for name in ["chinchilla"] + [p for p in args.procedures if p != "chinchilla"]:
        start = time.perf_counter()
        backtest_family(points, isoflop, [name])
        seconds = time.perf_counter() - start
        baseline = baseline or seconds
        print(f"{name:24s} {seconds:8.2f} {seconds / baseline:13.2f}")


if __name__ == "__main__":
    main()
