"""Are two results folders the same science? For refactors that must not change a number.

    python tools/same_results.py RESULTS_BEFORE RESULTS_AFTER [--study NAME ...]

Per study found in both: ``claims.csv`` byte for byte, and every variable and coordinate of
``cube.nc`` and ``fits.nc`` (every group) bit for bit, with its attributes (units, long_name,
…) and each group's own attributes. Provenance attributes that name the commit, the time, the
host or the software (``source_commit``, ``created_utc``, ``run_id``, ``software_versions``,
``host_platform``, ``snakemake_*``) are not compared. Prints one line per difference and exits
1 if there is any (0 if none; 2 on bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

#: attributes that record how and when a file was made, not what it holds
MAKING = {"source_commit", "created_utc", "run_id", "software_versions", "host_platform",
          "snakemake_rule", "snakemake_wildcards", "project_version"}


def _same_array(a: xr.DataArray, b: xr.DataArray) -> bool:
    if a.dims != b.dims or a.shape != b.shape or a.dtype != b.dtype:
        return False
    x, y = np.asarray(a.values), np.asarray(b.values)
    if x.dtype.kind in "fc":
        return x.tobytes() == y.tobytes() or bool(np.array_equal(x, y, equal_nan=True))
    return bool(np.array_equal(x, y))


def compare_groups(before: xr.Dataset, after: xr.Dataset, where: str) -> list[str]:
    out = []
    for name in sorted(set(before.variables) | set(after.variables)):
        if name not in after.variables:
            out.append(f"{where}: variable {name} only before")
        elif name not in before.variables:
            out.append(f"{where}: variable {name} only after")
        else:
            a, b = before[name], after[name]
            if not _same_array(a, b):
                out.append(f"{where}: variable {name} differs ({a.dims} {a.dtype} vs "
                           f"{b.dims} {b.dtype})")
            if dict(a.attrs) != dict(b.attrs):
                keys = sorted(k for k in set(a.attrs) | set(b.attrs)
                              if a.attrs.get(k) != b.attrs.get(k))
                out.append(f"{where}: attributes of {name} differ: {', '.join(keys)}")
    keys = sorted(k for k in set(before.attrs) | set(after.attrs)
                  if k not in MAKING and str(before.attrs.get(k)) != str(after.attrs.get(k)))
    if keys:
        out.append(f"{where}: file attributes differ: {', '.join(keys)}")
    return out


def compare_netcdf(before: Path, after: Path) -> list[str]:
    a, b = xr.open_datatree(before), xr.open_datatree(after)
    out = []
    groups_a = {node.path: node for node in a.subtree}
    groups_b = {node.path: node for node in b.subtree}
    for path in sorted(set(groups_a) | set(groups_b)):
        where = f"{after}{'' if path == '/' else ':' + path}"
        if path not in groups_b or path not in groups_a:
            out.append(f"{where}: group only {'before' if path in groups_a else 'after'}")
            continue
        out += compare_groups(groups_a[path].to_dataset(inherit=False),
                              groups_b[path].to_dataset(inherit=False), where)
    return out


def compare(before: Path, after: Path, studies=None) -> list[str]:
    found = sorted(p.name for p in before.iterdir() if (p / "claims.csv").exists())
    studies = studies or found
    out = []
    for study in studies:
        missing = [side for side, folder in (("before", before), ("after", after))
                   if not (folder / study / "claims.csv").exists()]
        if missing:
            out.append(f"{study}: no claims.csv {' or '.join(missing)}")
            continue
        if (before / study / "claims.csv").read_bytes() != (after / study / "claims.csv").read_bytes():
            out.append(f"{study}/claims.csv differs")
        for name in ("cube.nc", "fits.nc"):
            a, b = before / study / name, after / study / name
            if a.exists() != b.exists():
                out.append(f"{study}/{name} exists only {'before' if a.exists() else 'after'}")
            elif a.exists():
                out += compare_netcdf(a, b)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--study", action="append", default=None)
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            print(f"same_results: {folder} is not a folder", file=sys.stderr)
            return 2
    differences = compare(args.before, args.after, args.study)
    for line in differences:
        print(line)
    studies = args.study or sorted(p.name for p in args.before.iterdir() if (p / "claims.csv").exists())
    print(f"{len(studies)} studies compared: "
          + ("the same" if not differences else f"{len(differences)} difference(s)"))
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
