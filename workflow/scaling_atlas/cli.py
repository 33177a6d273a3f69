"""``scaling-atlas``: the law engine from the command line.

    scaling-atlas fit runs.csv --law chinchilla --x N=params,D=tokens --y loss --bootstrap 1000
    scaling-atlas predict runs_fit/fits.nc --at C=1e24
    scaling-atlas isoflop isoflops.csv --columns flops=C,n_params=N,loss=loss
    scaling-atlas forms
    scaling-atlas datasets list | verify | show NAME [--mirror DIR] [--source download|mirror]

Input files: CSV, TSV, parquet, JSON lines, and Weights & Biases exports (a chart's CSV export,
whose columns are ``<run> - <metric>``, or a run history dumped as JSON lines with ``_step``).
Bad input ends with one line naming the file, the row(s) and the column, and exit status 2;
rows are counted as the file's lines (the header is line 1) for CSV/TSV/JSONL, from 1 for
parquet.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_atlas.tables import FORMATS, InputError, read_table


def _mapping(text: str | None, keys, what: str) -> dict[str, str]:
    """``"N,D"`` or ``"N=params,D=tokens"`` as {key: column}."""
    if not text:
        return {}
    out = {}
    items = [t.strip() for t in text.split(",") if t.strip()]
    for i, item in enumerate(items):
        if "=" in item:
            key, column = (s.strip() for s in item.split("=", 1))
        elif keys is not None and i < len(keys):
            key, column = keys[i], item
        else:
            raise InputError(f"{what}: cannot read {item!r}; write KEY=COLUMN")
        if keys is not None and key not in keys:
            raise InputError(f"{what}: {key!r} is not one of {', '.join(keys)}")
        out[key] = column
    return out


def _for_the_command_line(error) -> str:
    """The engine's message with its keyword arguments spelled as this command's flags."""
    return (str(error).replace("pass nan_policy='drop'", "pass --nan-policy drop")
            .replace("map other names with columns={...}", "map other names with --x N=COLUMN,…")
            .replace("Map them with columns={'flops': ..., 'n_params': ..., 'loss': ...}",
                     "Map them with --columns flops=COL,n_params=COL,loss=COL"))


def _check_columns(table, columns, path):
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: no column(s) {', '.join(map(repr, missing))}; the file has "
                         f"{', '.join(map(repr, map(str, table.columns)))}")


# ---- commands --------------------------------------------------------------------------------
def cmd_forms(args) -> int:
    from scaling_atlas.laws import REGISTRY

    for name in sorted(REGISTRY):
        form = REGISTRY[name]()
        params = ", ".join(f"{p.name}" + (f" ({p.meaning})" if p.meaning else "")
                           for p in form.params)
        print(f"{name}\n    {form.equation or '(see its docstring)'}\n"
              f"    variables: {', '.join(form.variables)}\n    parameters: {params}")
    return 0


def _objective(args):
    from scaling_atlas.laws import Objective

    try:
        return Objective(args.objective, args.delta, args.space, "sum")
    except ValueError as error:
        raise InputError(f"--objective/--space/--delta: {error}") from None


def cmd_fit(args) -> int:
    from scaling_atlas.laws import FitDataError, LawFit, chinchilla_derived, get_form

    path = Path(args.file)
    try:
        form = get_form(args.law)
    except (KeyError, ValueError) as error:
        raise InputError(f"--law: {error}") from None
    table = read_table(path, args.format)
    columns = _mapping(args.x, list(form.variables), "--x")
    columns = {v: columns.get(v, v) for v in form.variables}
    needed = list(columns.values()) + [args.y] + ([args.groups] if args.groups else [])
    _check_columns(table, needed, path)
    derived = None
    if form.has_allocation:
        derived = chinchilla_derived(args.budgets)
    fit = LawFit(form, _objective(args), nan_policy=args.nan_policy, derived=derived,
                 bookkeeping={"source": str(path), **{f"column_{k}": v for k, v in columns.items()},
                              "column_target": args.y})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit.fit(table, table[args.y], columns=columns,
                    groups=table[args.groups].to_numpy() if args.groups else None)
        except FitDataError as error:
            raise InputError(f"{path}: {_for_the_command_line(error)}") from None
        if args.bootstrap:
            fit.bootstrap(args.bootstrap, by="groups" if args.groups else "points",
                          seed=args.seed, n_jobs=args.jobs or None, progress=not args.quiet)
    for warning in caught:
        if "FitWarning" in type(warning.message).__name__:
            print(f"warning: {warning.message}", file=sys.stderr)
    from scaling_atlas.atomic import write_text

    out = Path(args.out) if args.out else path.with_name(path.stem + "_fit")
    out.mkdir(parents=True, exist_ok=True)
    ds = fit.to_dataset()
    ds.attrs.update(source_file=str(path), command=" ".join(sys.argv))
    from scaling_atlas.cubes import write_netcdf

    write_netcdf(ds, out / "fits.nc")
    summary = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in fit.summary().items()}
    summary = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
               for k, v in summary.items()}
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text(out / "summary.csv", pd.DataFrame([summary]).to_csv(index=False))
    _fit_figure(fit, table, columns, args.y, out / "fit.png")
    print(_describe(fit))
    print(f"wrote {out / 'fits.nc'}, {out / 'summary.json'}, {out / 'summary.csv'}, "
          f"{out / 'fit.png'}")
    return 0


def _describe(fit) -> str:
    ci = fit.intervals()
    lines = [f"{fit.law_form.name}: {fit.law_form.equation}",
             f"  {fit.n_points_} points, objective {fit.fit_objective.loss} in {fit.fit_objective.space} "
             f"space = {fit.objective_value_:.6g}; best reached by {fit.n_reached_best_} of "
             f"{fit.n_refined_} refined starts ({fit.n_starts_} screened)"]
    for name, value in fit.natural_.items():
        interval = f"  [{ci[name][0]:.5g}, {ci[name][1]:.5g}]" if name in ci else ""
        lines.append(f"  {name:>10} = {value:.6g}{interval}")
    for name, value in fit.derived_estimates().items():
        interval = f"  [{ci[name][0]:.5g}, {ci[name][1]:.5g}]" if name in ci else ""
        reason = f"  ({fit.undefined_derived_[name]})" if name in fit.undefined_derived_ else ""
        lines.append(f"  {name:>10} = {value:.6g}{interval}{reason}")
    lines.append(f"  identified: {'yes' if fit.identified_ else 'NO'}; condition number "
                 f"{fit.condition_number_:.3g}; distinct values "
                 + ", ".join(f"{k} {v}" for k, v in fit.distinct_values_.items()))
    return "\n".join(lines)


def _fit_figure(fit, table, columns, target, path):
    import matplotlib.pyplot as plt

    from scaling_atlas.atomic import atomic_path
    from scaling_atlas.figures.laws import fit_figure
    from scaling_atlas.figures.style import REPRODUCIBLE_METADATA

    first = fit.law_form.variables[0]
    fig = fit_figure(fit.y_, fit.law_form.predict(fit.theta_[None, :], fit.X_)[0], fit.residuals_,
                     fit.X_[first], x_label=f"{first} (column {columns[first]!r})", target=target,
                     title=f"{fit.law_form.name}: {fit.law_form.equation}", space=fit.fit_objective.space)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, metadata=REPRODUCIBLE_METADATA["png"], dpi=120)
    plt.close(fig)


def _read_fit(path):
    import xarray as xr

    from scaling_atlas.laws import LawFit

    path = Path(path)
    if path.is_dir():
        path = path / "fits.nc"
    if not path.exists():
        raise InputError(f"{path}: no such file (give the fits.nc that `scaling-atlas fit` wrote)")
    try:
        with xr.open_dataset(path) as ds:
            ds.load()
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a NetCDF file ({error})") from None
    try:
        return LawFit.from_dataset(ds), path
    except (ValueError, KeyError) as error:
        raise InputError(f"{path}: {error}") from None


def _at(text: str) -> dict[str, np.ndarray]:
    out = {}
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        if "=" not in item:
            raise InputError(f"--at: cannot read {item!r}; write C=1e24 or N=7e10,D=1.4e12")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            values = np.array([float(v) for v in value.split(":")])
        except ValueError:
            raise InputError(f"--at: {key}={value!r} is not a number") from None
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InputError(f"--at: {key}={value} must be positive and finite")
        out[key] = values
    return out


def cmd_predict(args) -> int:
    fit, path = _read_fit(args.fits)
    at = _at(args.at)
    if set(at) == {"C"}:
        compute = at["C"]
        X = None
    else:
        missing = [v for v in fit.law_form.variables if v not in at]
        extra = [k for k in at if k not in fit.law_form.variables]
        if missing or extra:
            raise InputError(f"--at: form {fit.law_form.name!r} takes {', '.join(fit.law_form.variables)}"
                             + ("" if fit.law_form.name not in ("chinchilla", "chinchilla_tied")
                                else " (or C alone)") + f"; got {', '.join(at)}")
        lengths = {len(v) for v in at.values()}
        if len(lengths) > 1 and 1 not in lengths:
            raise InputError("--at: give each variable one value or the same number of values")
        size = max(lengths)
        X = {k: np.broadcast_to(v, size) for k, v in at.items()}
        compute = None
    if fit.draws_theta_ is None:
        value = (fit.predict(X) if X is not None else None)
        if value is None:
            raise InputError(f"{path}: predicting at C needs bootstrap draws; refit with "
                             "--bootstrap N")
        for i, v in enumerate(value):
            point = ", ".join(f"{k}={X[k][i]:.4g}" for k in X)
            print(f"{point}: {v:.6g}  (no interval: the fit has no bootstrap; refit with "
                  "--bootstrap N)")
        return 0
    try:
        table = fit.predict_interval(X, C=compute, level=args.level, seed=args.seed)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None
    level = int(round(100 * table.attrs["level"]))
    for _, row in table.iterrows():
        point = ", ".join(f"{k}={row[k]:.4g}" for k in (["C", "N", "D"] if compute is not None
                                                       else fit.law_form.variables))
        print(f"{point}: {row['prediction']:.6g}  {level} % interval [{row['low']:.6g}, "
              f"{row['high']:.6g}]  (parameters alone [{row['param_low']:.6g}, "
              f"{row['param_high']:.6g}])")
    if not fit.identified_:
        print("warning: the fit is not identified; its predictions mean little", file=sys.stderr)
    return 0


def cmd_isoflop(args) -> int:
    from scaling_atlas.laws import FitDataError, fit_isoflop, isoflop_optima

    path = Path(args.file)
    table = read_table(path, args.format)
    columns = _mapping(args.columns, ["flops", "n_params", "loss"], "--columns")
    try:
        optima = isoflop_optima(table, method=args.method, space=args.space, columns=columns,
                                nan_policy=args.nan_policy)
    except FitDataError as error:
        raise InputError(f"{path}: {_for_the_command_line(error)}") from None
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(optima.drop(columns=["n_star_std_log"]).to_string(index=False))
    try:
        result = fit_isoflop(optima, weighted=False, n_boot=args.bootstrap, seed=args.seed)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None
    ci = ("" if not args.bootstrap else
          f"  [{result.exponent_ci[0]:.4f}, {result.exponent_ci[1]:.4f}]")
    print(f"N*(C) ∝ C^a: a = {result.exponent:.4f}{ci}, b = {result.d_exponent:.4f}, "
          f"R² = {result.r2:.4f} over {int(optima['used'].sum())} budgets "
          f"({optima.attrs['curve']})")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        optima.to_csv(out, index=False)
        print(f"wrote {out}")
    return 0


def _registry_error(call):
    from scaling_atlas.datasets import DataSourceError
    from scaling_atlas.datasets.registry import RegistryError

    try:
        return call()
    except (RegistryError, DataSourceError) as error:
        raise InputError(str(error)) from None


def cmd_datasets(args) -> int:
    """The scaling-data registry: list its datasets, verify the mirror, show one dataset."""
    from scaling_atlas.datasets.registry import QC_FLAGS, REGISTRY, get, load, qc_summary, verify

    mirror = Path(args.mirror)
    if args.action in ("verify", "list") or args.source == "mirror":
        if not mirror.is_dir():
            raise InputError(f"--mirror {mirror}: no such folder (a copy of shared/data/published)")
    if args.action == "verify":
        names = [args.name] if args.name else None
        table = _registry_error(lambda: verify(mirror, names))
        bad = table[table["status"] != "ok"]
        for row in table.itertuples():
            print(f"{row.status:8s} {row.dataset:28s} {row.file}")
        print(f"{len(table) - len(bad)} of {len(table)} files match their sha256 pins in {mirror}")
        return 1 if len(bad) else 0
    loaded = {}

    def loaded_table(name):
        if name not in loaded:
            loaded[name] = _registry_error(lambda: load(
                name, mirror_dir=mirror, source=args.source, cache_dir=args.cache,
                log=(lambda m: None) if args.action == "list" else print))
        return loaded[name]

    if args.action == "list":
        rows = []
        for name, spec in REGISTRY.items():
            table = loaded_table(name)
            flagged = len(table) - qc_summary(table)["clean"]
            rows.append({"dataset": name, "rows": len(table), "groups": table["group"].nunique(),
                         "flagged": flagged, "N,D law": "yes" if spec.usable else "no",
                         "duplicate of": spec.duplicate_of or "", "license": spec.license_short,
                         "title": spec.title})
        with pd.option_context("display.width", 250, "display.max_colwidth", 70):
            print(pd.DataFrame(rows).to_string(index=False))
        return 0
    if not args.name:
        raise InputError("datasets show: name a dataset (see `scaling-atlas datasets list`)")
    spec = _registry_error(lambda: get(args.name))
    table = loaded_table(args.name)
    print(f"{spec.name}: {spec.title}")
    print(f"  paper:      {spec.paper}")
    print(f"  license:    {spec.license}")
    print(f"  loss:       {spec.loss_units}")
    print(f"  N counted:  {spec.n_counting}\n  D counted:  {spec.d_counting}\n"
          f"  C counted:  {spec.c_counting}")
    for column, why in spec.missing.items():
        print(f"  no {column}: {why}")
    if spec.duplicate_of:
        print(f"  repeats:    {spec.duplicate_of}")
    if spec.notes:
        print(f"  notes:      {spec.notes}")
    for row in spec.provenance():
        kind = "verbatim" if row["verbatim"] else "reshaped from"
        print(f"  file {row['file']}: {kind} {row['repository']}@{row['commit'][:7]}:"
              f"{row['path']} (sha256 {row['upstream_sha256'][:12]}…)")
    print(f"  {len(table)} rows, {table['group'].nunique()} group(s): "
          + ", ".join(map(str, table["group"].unique()[:6]))
          + (" …" if table["group"].nunique() > 6 else ""))
    for flag, count in qc_summary(table).items():
        print(f"  {flag:22s} {count:6d}  {QC_FLAGS.get(flag, 'rows with no flag')}")
    with pd.option_context("display.width", 200):
        print(table[["N", "D", "C", "loss", "group", "step"]].head(args.head).to_string())
    return 0


# ---- entry point -----------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scaling-atlas", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    def reading(p):
        p.add_argument("--format", choices=FORMATS, default="auto",
                       help="input format (default: from the suffix; a CSV with '<run> - "
                            "<metric>' columns is read as a W&B export)")
        p.add_argument("--nan-policy", choices=("raise", "drop"), default="raise",
                       help="rows with NaN: refuse them (naming them) or drop and count them")

    fit = sub.add_parser("fit", help="fit a law to a table of runs")
    fit.add_argument("file")
    fit.add_argument("--law", default="chinchilla", help="a form (see `scaling-atlas forms`)")
    fit.add_argument("--x", help="the form's variables as columns: 'N,D' (in order) or "
                                 "'N=params,D=tokens' (default: columns named as the variables)")
    fit.add_argument("--y", default="loss", help="the target column (default: loss)")
    fit.add_argument("--groups", help="a column of run labels: bootstrap resamples whole runs")
    fit.add_argument("--objective", default="huber", choices=("huber", "mse", "mae"))
    fit.add_argument("--space", default="log", choices=("log", "linear", "loglog"))
    fit.add_argument("--delta", type=float, default=1e-3, help="Huber's δ (default 1e-3)")
    fit.add_argument("--bootstrap", type=int, default=0, metavar="N",
                     help="bootstrap resamples for CIs and prediction intervals (0: none)")
    fit.add_argument("--budgets", type=float, nargs="+", default=[5.88e23],
                     help="compute budgets of the derived allocation (Chinchilla forms)")
    fit.add_argument("--seed", type=int, default=42)
    fit.add_argument("--jobs", type=int, default=0, help="bootstrap workers (0: every core)")
    fit.add_argument("--out", help="output folder (default: FILE's name + _fit)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    reading(fit)
    fit.set_defaults(run=cmd_fit)

    predict = sub.add_parser("predict", help="predict with an interval from a fits.nc")
    predict.add_argument("fits", help="fits.nc written by `scaling-atlas fit` (or its folder)")
    predict.add_argument("--at", required=True,
                         help="C=1e24 (compute-optimal, Chinchilla forms) or N=7e10,D=1.4e12; "
                              "several points as N=1e9:1e10,D=2e10:2e11")
    predict.add_argument("--level", type=float, default=None,
                         help="interval level (default: the bootstrap's, 0.95)")
    predict.add_argument("--seed", type=int, default=0)
    predict.set_defaults(run=cmd_predict)

    iso = sub.add_parser("isoflop", help="Approach 2: the loss-minimising N per budget")
    iso.add_argument("file")
    iso.add_argument("--columns", help="flops=COL,n_params=COL,loss=COL (default: those names)")
    iso.add_argument("--method", choices=("akima", "parabola"), default="parabola")
    iso.add_argument("--space", choices=("loss", "log"), default="loss",
                     help="fit each profile to the raw loss (default) or to ln(loss)")
    iso.add_argument("--bootstrap", type=int, default=0, help="resamples of budgets for a's CI")
    iso.add_argument("--seed", type=int, default=0)
    iso.add_argument("--out", help="write the per-budget table to this CSV")
    reading(iso)
    iso.set_defaults(run=cmd_isoflop)

    forms = sub.add_parser("forms", help="list the law forms with their equations")
    forms.set_defaults(run=cmd_forms)

    data = sub.add_parser("datasets", help="the registry of published scaling data: list, "
                                           "verify (sha256), show NAME")
    data.add_argument("action", choices=("list", "verify", "show"))
    data.add_argument("name", nargs="?", help="a dataset (show; verify only this one)")
    data.add_argument("--mirror", default="../shared/data/published",
                      help="the verified mirror folder (default: ../shared/data/published)")
    data.add_argument("--source", choices=("download", "mirror"), default="mirror",
                      help="download each file at its pinned commit (falling back to the "
                           "mirror), or read the mirror (default); sha256 checked either way")
    data.add_argument("--cache", default=".scaling-atlas-cache",
                      help="where verified copies are kept (default: .scaling-atlas-cache)")
    data.add_argument("--head", type=int, default=5, help="rows to show (show)")
    data.set_defaults(run=cmd_datasets)
    conf = sub.add_parser("config", help="read and validate the workflow's config files, run "
                          "nothing (what make run does before Snakemake)")
    conf.add_argument("action", choices=["check", "docs"],
                      help="check: validate the files; docs: print every key of the schema "
                           "as Markdown (config/README.md)")
    conf.add_argument("--configfile", nargs="*", default=[], action="extend",
                      help="config files applied after config/config.yaml, as Snakemake does")
    conf.set_defaults(run=cmd_config)
    return top


def cmd_config(args) -> int:
    from scaling_atlas.config import ConfigError, read_files
    from scaling_atlas.studies import load_schema, validate_config

    if args.action == "docs":
        from scaling_atlas.config_docs import config_markdown

        sys.stdout.write(config_markdown(load_schema()))
        return 0
    try:
        config = validate_config(read_files(args.configfile))
    except ConfigError as error:
        sys.stderr.write(f"Scaling Atlas: {error}\nNo job was started; fix the config and rerun.\n")
        return 1
    print(f"config ok: preset {config['preset']}, studies {', '.join(config['studies'])}")
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as error:
        print(f"scaling-atlas {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
