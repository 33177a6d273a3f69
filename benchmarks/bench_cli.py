"""Benchmark: `scaling-atlas fit` on 10^6 rows, per input format, against the engine alone.

Usage: python benchmarks/bench_cli.py [--rows 1000000] [--formats csv parquet jsonl]

Each command runs in its own process. We report wall time and peak resident memory of the
whole command (reading the file, the checks, the 4,500-start Chinchilla fit, fits.nc, the
summaries and the figure). The baseline, in the same run, is the engine's fit alone on the
same points in a fresh process (``LawFit("chinchilla").fit``), so the ratio is what the
command line adds. The data are those of ``bench_fitting_scale.py`` (seeded).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_fitting_scale import make_points


def write(rows: int, fmt: str, folder: Path) -> Path:
    import pandas as pd

    X, y = make_points(rows)
    table = pd.DataFrame({"params": X["N"], "tokens": X["D"], "loss": y})
    path = folder / f"runs.{fmt}"
    if fmt == "csv":
        table.to_csv(path, index=False)
    elif fmt == "parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_json(path, orient="records", lines=True)
    return path


def timed(command: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_mib": max(peak, before) / 1024}


ENGINE = ("import sys; sys.path.insert(0, {here!r}); from bench_fitting_scale import make_points; "
          "from scaling_atlas.laws import LawFit; X, y = make_points({rows}); "
          "LawFit('chinchilla').fit(X, y)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", nargs="+", default=["csv", "parquet", "jsonl"])
    args = parser.parse_args()
    here = str(Path(__file__).parent)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = timed([sys.executable, "-c", ENGINE.format(here=here, rows=args.rows)])
        results.append({"variant": "engine alone (baseline)", **base})
        for fmt in args.formats:
            path = write(args.rows, fmt, folder)
            size = path.stat().st_size / 2**20
            run = timed([str(Path(sys.executable).parent / "scaling-atlas"), "fit", str(path), "--x", "N=params,D=tokens", "--quiet",
                         "--out", str(folder / f"fit_{fmt}")])
            results.append({"variant": f"scaling-atlas fit, {fmt} ({size:.0f} MiB)", **run,
                            "ratio": run["seconds"] / base["seconds"]})
    print(f"{'variant':<40} {'seconds':>8} {'× engine':>9} {'peak MiB':>9}")
    for r in results:
        print(f"{r['variant']:<40} {r['seconds']:8.1f} {r.get('ratio', 1.0):9.2f} {r['peak_mib']:9.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
