"""Cubes: xarray Datasets with named dims, CF-style attributes and provenance, written atomically.

A *cube* is one study's results on a regular grid of named dimensions; cells that were not run
are NaN. Every data variable and coordinate carries ``long_name`` and ``units`` (``1`` for
dimensionless), and every file carries the provenance attributes of
:func:`scaling_atlas.provenance.provenance`.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.atomic import atomic_path

REQUIRED_ATTRS = ("long_name", "units")
PROVENANCE_ATTRS = ("source_commit", "config_hash", "software_versions", "device", "seeds")


def _compression(ds: xr.Dataset) -> dict:
    return {name: {"zlib": True, "complevel": 4}
            for name, var in ds.data_vars.items() if var.dtype.kind in "fiu"}


def write_netcdf(ds: xr.Dataset | xr.DataTree, path: str | os.PathLike,
                 attrs: Mapping[str, str] = {}) -> None:
    """Write ``ds`` to ``path`` atomically (temp file + rename): a crash never leaves half a file.

    A DataTree becomes one NetCDF file with a group per node (provenance on the root).
    """
    ds = ds.copy()
    ds.attrs.update(attrs)
    with atomic_path(path) as tmp:
        if isinstance(ds, xr.DataTree):
            encoding = {node.path: _compression(node.dataset) for node in ds.subtree
                        if _compression(node.dataset)}
            ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        else:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=_compression(ds))


#: per-run measurements of the machine rather than the model: kept in shard files and logs
MACHINE_MEASUREMENTS = ("train_seconds", "tokens_per_second")


def drop_machine_measurements(cube: xr.Dataset | xr.DataTree) -> xr.Dataset | xr.DataTree:
    """The cube without timings and per-job accounting, which differ between any two runs."""
    if isinstance(cube, xr.DataTree):
        return cube
    cube = cube.drop_vars(MACHINE_MEASUREMENTS, errors="ignore")
    cube.attrs = {k: v for k, v in cube.attrs.items() if not k.startswith("job_")}
    return cube


def describe_variables(ds: xr.Dataset, meta: dict[str, tuple[str, str]]) -> xr.Dataset:
    """Set ``long_name`` and ``units`` of the variables named in ``meta`` (name → (long_name,
    units)) that ``ds`` has; returns ``ds``."""
    for name, (long_name, units) in meta.items():
        if name in ds.variables:
            ds[name].attrs.update(long_name=long_name, units=units)
    return ds


def without_diverged(cube: xr.Dataset, flag: str = "diverged") -> tuple[xr.Dataset, int]:
    """The cube with every value of diverged runs masked (NaN), and how many runs that was.

    Fits call this first, leave the masked runs out and record the count; variables that do not
    span the run grid are kept as they are."""
    diverged = cube[flag] == 1
    masked = cube.copy()
    for name in cube.data_vars:
        if set(diverged.dims) <= set(cube[name].dims):
            masked[name] = cube[name].where(~diverged)
    return masked, int(diverged.sum())


def _has_groups(path) -> bool:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        return bool(nc.groups)


def open_cube(path: str | os.PathLike) -> xr.Dataset | xr.DataTree:
    """Load a cube fully into memory and close the file (safe to overwrite afterwards).

    Files with groups open as a DataTree (``tree["group"].to_dataset()`` for one table).
    """
    if _has_groups(path):
        with xr.open_datatree(path, engine="netcdf4") as tree:
            return tree.load().copy()
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def missing_attributes(ds: xr.Dataset | xr.DataTree) -> list[str]:
    """Variables or coordinates lacking ``long_name``/``units``, and missing provenance keys."""
    nodes = ([(node.path.strip("/") + "/", node.dataset) for node in ds.subtree]
             if isinstance(ds, xr.DataTree) else [("", ds)])
    problems = [
        f"{prefix}{name}: no {attr}"
        for prefix, node in nodes
        for name, var in {**node.data_vars, **node.coords}.items()
        for attr in REQUIRED_ATTRS
        if attr not in var.attrs
    ]
    problems = [p.lstrip("/") for p in problems]
    problems += [f"file: no {attr}" for attr in PROVENANCE_ATTRS if attr not in ds.attrs]
    return problems


def grid_from_records(
    records: pd.DataFrame, dims: Iterable[str], scalars: Iterable[str],
    arrays: Mapping[str, tuple[str, np.ndarray]] = {},
) -> xr.Dataset:
    """Place one row per run onto the regular grid spanned by ``dims``; NaN where nothing ran.

    ``records`` holds a column per dim and per scalar variable, plus object columns holding
    1-d arrays for the names in ``arrays`` (mapped to their extra dim name and coordinate).
    Coordinate values may include NaN (e.g. α of a non-power profile); lookups use pandas'
    NaN-aware indexers, so such runs land in their own cell.
    """
    dims = list(dims)
    coords = {d: pd.Index(pd.unique(records[d])).sort_values() for d in dims}
    shape = [len(coords[d]) for d in dims]
    position = tuple(coords[d].get_indexer(records[d]) for d in dims)
    if any((p < 0).any() for p in position):
        raise ValueError("a run did not map onto the grid")
    flat = np.ravel_multi_index(position, shape)
    if len(np.unique(flat)) != len(flat):
        raise ValueError("two runs map onto the same grid cell: a sweep axis is missing from dims")
    data_vars = {}
    for name in scalars:
        values = np.full(int(np.prod(shape)), np.nan)
        values[flat] = records[name].to_numpy(dtype=float)
        data_vars[name] = (dims, values.reshape(shape))
    for name, (extra_dim, _) in arrays.items():
        stacked = np.stack(records[name].to_numpy())
        values = np.full((int(np.prod(shape)), stacked.shape[1]), np.nan)
        values[flat] = stacked
        data_vars[name] = (dims + [extra_dim], values.reshape(shape + [stacked.shape[1]]))
    extra_coords = {extra_dim: coord for extra_dim, coord in arrays.values()}
    return xr.Dataset(data_vars, coords={**{d: coords[d].to_numpy() for d in dims}, **extra_coords})


#: per-point or per-draw arrays that do not belong in a one-line-per-number summary
_SUMMARY_SKIP_DIMS = {"draw", "point", "frontier_flops", "budget", "step", "norm_bin"}


def flat_summary(fits: xr.Dataset | xr.DataTree) -> pd.DataFrame:
    """A long table of a study's fits: one row per number (with its CI where there is one) and
    one row per attribute of each fit group (the fitting checklist).

    Columns: fit, quantity, value, ci_low, ci_high, kind (``estimate`` or ``attribute``).
    """
    nodes = ([(node.path.strip("/") or "root", node.dataset) for node in fits.subtree]
             if isinstance(fits, xr.DataTree) else [("fits", fits)])
    rows = []
    for name, ds in nodes:
        for key, value in ds.attrs.items():
            rows.append({"fit": name, "quantity": key, "value": value, "kind": "attribute"})
        for var, da in ds.data_vars.items():
            if var.startswith(("ci_", "derived_ci_")) or set(da.dims) & _SUMMARY_SKIP_DIMS:
                continue
            low = ds.get("derived_ci_low" if var == "derived" else "ci_low")
            high = ds.get("derived_ci_high" if var == "derived" else "ci_high")
            with_ci = var in ("estimate", "derived") and low is not None
            flat = da.to_series() if da.dims else pd.Series([da.item()], index=[None])
            for index, value in flat.items():
                label = var if index is None else f"{var}[{_index_label(index)}]"
                if var in ("estimate", "derived"):
                    label = _index_label(index)
                row = {"fit": name, "quantity": label, "value": value, "kind": "estimate"}
                if with_ci:
                    row["ci_low"], row["ci_high"] = float(low.loc[index]), float(high.loc[index])
                rows.append(row)
    return pd.DataFrame(rows, columns=["fit", "quantity", "value", "ci_low", "ci_high", "kind"])


def _index_label(index) -> str:
    return ",".join(map(str, index)) if isinstance(index, tuple) else str(index)


# ---- shard checks before assembly (#19 item 4) ----------------------------------------------------
class ShardError(RuntimeError):
    """A shard result cannot be trusted; the message names the file and how to rebuild it."""


def _rebuild_hint(path) -> str:
    return (f"delete it (rm {path}) and rerun: Snakemake retrains that shard alone, the others "
            "are kept")


def read_shard(path: str | os.PathLike) -> xr.Dataset:
    """A shard result, or a ShardError naming the file when it is not a readable NetCDF file
    (a truncated copy, a disk fault): rerunning would fail the same way until it is deleted."""
    try:
        return open_cube(path)
    except Exception as error:  # netCDF4/HDF5 raise OSError, RuntimeError or ValueError
        raise ShardError(f"shard {path} is unreadable ({type(error).__name__}: "
                         f"{str(error)[:200]}); {_rebuild_hint(path)}") from None


def _plain(value):
    """A numpy scalar as the Python value it holds (for messages: -1.0, not np.float64(-1.0))."""
    return value.item() if isinstance(value, np.generic) else value


def _same(a, b) -> bool:
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        try:
            x, y = float(a), float(b)
        except (TypeError, ValueError):
            return False
        return x == y or (np.isnan(x) and np.isnan(y))
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return int(a) == int(b)
    return str(a) == str(b)


def shard_problems(ds: xr.Dataset, planned: pd.DataFrame, finite: Iterable[str] = (),
                   flag: str = "diverged", measured: Iterable[str] = ()) -> list[str]:
    """How a shard result disagrees with its rows of ``manifest.tsv``: other run ids, a planned
    parameter stored along ``run`` that is not exactly the planned value (except ``measured``
    ones, which the run itself sets, such as the tokens actually seen), a diverged flag that is not 0 or 1, a
    result that should be finite and is not, or a run whose every number is NaN, unless the
    run is marked diverged."""
    problems = []
    if "run" not in ds.dims:
        return ["has no run dimension"]
    runs = [str(r) for r in ds["run"].values]
    planned_ids = [str(r) for r in planned["run_id"]]
    extra, absent = sorted(set(runs) - set(planned_ids)), sorted(set(planned_ids) - set(runs))
    if extra or absent or len(runs) != len(set(runs)):
        return [f"holds runs {extra[:4]} the manifest does not plan for it and lacks "
                f"{absent[:4]} ({len(runs)} runs, {len(planned_ids)} planned)"]
    rows = planned.set_index("run_id").loc[runs]
    for column in rows.columns:  # the planned values a run is placed by in the cube
        if column not in ds.variables or column in ("run", *measured) or ds[column].dims != ("run",):
            continue
        for run, found, expected in zip(runs, ds[column].values, rows[column].to_numpy()):
            if pd.isna(expected) and not isinstance(found, (float, np.floating)):
                continue  # not planned for this run (e.g. the width of a data scorer)
            if not _same(found, expected):
                problems.append(f"run {run}: {column} is {_plain(found)!r}, the manifest plans "
                                f"{_plain(expected)!r}")
    diverged = np.zeros(len(runs), bool)
    if flag in ds.variables:
        values = ds[flag].values.astype(float)
        bad = ~np.isin(values, (0.0, 1.0))
        problems += [f"run {run}: {flag} is {_plain(v)!r}, not 0 or 1" for run, v in
                     zip(np.asarray(runs)[bad], values[bad])]
        diverged = values == 1.0
    numbers = [name for name, var in ds.data_vars.items()
               if var.dims[:1] == ("run",) and var.dtype.kind == "f" and name != flag]
    for i, run in enumerate(runs):
        if diverged[i]:
            continue
        for name in finite:
            if name in ds.data_vars and not np.all(np.isfinite(ds[name].isel(run=i).values)):
                problems.append(f"run {run}: {name} is not finite, and the run is not marked "
                                f"{flag}")
        if numbers and not any(np.isfinite(ds[name].isel(run=i).values).any() for name in numbers):
            problems.append(f"run {run}: every result is NaN, and the run is not marked {flag}")
    return problems


def check_shards(paths: Iterable[str | os.PathLike], manifest: pd.DataFrame,
                 finite: Iterable[str] = (), measured: Iterable[str] = ()) -> list[xr.Dataset]:
    """Read every shard result and check it against ``manifest`` (as read from manifest.tsv);
    raise a ShardError naming each bad shard and how to rebuild it."""
    shards, problems = [], []
    finite, measured = tuple(finite), tuple(measured)
    for path in paths:
        ds = read_shard(path)
        name = os.path.splitext(os.path.basename(path))[0]
        found = shard_problems(ds, manifest[manifest["shard"] == name], finite,
                               measured=measured)
        if found:
            shown = "; ".join(found[:5]) + (f"; … ({len(found)} problems)" if len(found) > 5 else "")
            problems.append(f"shard {path}: {shown}. {_rebuild_hint(path)}")
        shards.append(ds)
    if problems:
        raise ShardError("shard results do not match the manifest:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    return shards


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """manifest.tsv (pandas reads floats back exactly as it wrote them: shortest round-trip
    text; tested by the shard checks, which compare coordinates exactly)."""
    return pd.read_csv(path, sep="\t")
