"""Releases: a manifest anyone can check results against, and the check itself.

``build_release`` writes ``results/release/``: ``SHA256SUMS`` over every cube, fit, summary,
figure and claims table; ``MANIFEST.json`` with each file's checksum, kind and how it must
match (``exact``: bit for bit, except that a NetCDF file made on another machine may differ in
``host_platform`` alone; ``tolerance``: numerically within a relative tolerance, for
files computed on a GPU, whose kernels are not bitwise reproducible); the resolved config; the
exact Python environment (``pip freeze``, and ``conda list --explicit`` inside conda); the claims
scorecard. The workflow's ``release`` rule adds the Snakemake report (zip) and the rule graph.

``verify`` compares a results folder with a release: a missing or extra file, a config that is
not the release's, a file that must be identical but is not, or numbers outside tolerance are
each reported with the file name (and the variable, for NetCDF). Run from the command line::

    python -m scaling_atlas.release verify results/release --results results   # compare only
    python -m scaling_atlas.release rerun results/release --cores 2            # re-run, compare

**Trust.** Your own config is code, as a Snakefile is: Snakemake renders a config file that sets
``__use_yte__: true`` as a YTE template, which runs Python (even in a dry run). A received
release is not trusted: ``rerun`` reads its ``config.yaml`` with YAML's safe loader, refuses
templating keys and expressions, validates it against the schema, checks the manifest's date,
and hands Snakemake the config as plain JSON (which Snakemake never templates). Nothing in a
release is imported, unpickled or evaluated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from scaling_atlas.atomic import write_text
from scaling_atlas.datasets import sha256_of
from scaling_atlas.config import ConfigError
from scaling_atlas.hashing import stable_hash

#: per study, the files a release covers (relative to results/<study>/)
STUDY_PATTERNS = ("cube.nc", "fits.nc", "fits_summary.csv", "claims.csv", "claims.md",
                  "figures/*.png", "figures/*.pdf")
TOP_LEVEL = ("claims.csv", "claims.md", "claims_counts.csv")
#: folder of a release holding the copies of the files it covers
COPIES = "files"
#: relative tolerance for numbers computed on a GPU (non-deterministic reductions, TF32/bf16)
GPU_RTOL = 1e-2
#: provenance that names the machine a file was made on: another machine may differ here only
MACHINE_ATTRS = frozenset({"host_platform"})


def release_files(results: Path, studies: list[str]) -> list[Path]:
    """Every file a release covers, relative to ``results``, in a stable order."""
    files = [Path(name) for name in TOP_LEVEL if (results / name).exists()]
    for study in studies:
        for pattern in STUDY_PATTERNS:
            files += sorted(p.relative_to(results) for p in (results / study).glob(pattern))
    return files


def _root_attrs(path: Path) -> dict:
    """The global attributes of a NetCDF file (with or without groups)."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        return {key: nc.getncattr(key) for key in nc.ncattrs()}


def manifest_entry(results: Path, name: Path, devices: dict[str, str]) -> dict:
    """How one file must match: bit for bit, unless its study trained on a GPU."""
    study = name.parts[0] if len(name.parts) > 1 else ""
    gpu = "cuda" in devices.get(study, "")
    kind = {".nc": "netcdf", ".csv": "table", ".md": "text", ".png": "figure", ".pdf": "figure"}
    entry = {"sha256": sha256_of(results / name), "kind": kind.get(name.suffix, "file")}
    if gpu and name.suffix in (".nc", ".csv"):
        entry.update(match="tolerance", rtol=GPU_RTOL)
    else:
        entry.update(match="exact")
    return entry


def environment_lock() -> dict[str, str]:
    """The exact software: pip's view always, conda's when running inside a conda env."""
    out = {"pip-freeze.txt": subprocess.run([sys.executable, "-m", "pip", "freeze"],
                                            capture_output=True, text=True).stdout}
    conda = (subprocess.run(["conda", "list", "--explicit"], capture_output=True, text=True)
             if shutil.which("conda") else None)
    if conda is not None and conda.returncode == 0:
        out["conda-explicit.txt"] = conda.stdout
    return out


def build_release(results: Path, release: Path, config: dict) -> list[Path]:
    """Write the manifest, config, environment and scorecard into ``release``."""
    results, release = Path(results), Path(release)
    release.mkdir(parents=True, exist_ok=True)
    studies = list(config["studies"])
    cubes = {s: _root_attrs(results / s / "cube.nc") for s in studies if (results / s / "cube.nc").exists()}
    devices = {s: str(attrs.get("device", "")) for s, attrs in cubes.items()}
    files = release_files(results, studies)
    entries = {str(name): manifest_entry(results, name, devices) for name in files}
    # paths as they lie in the release folder: `sha256sum -c SHA256SUMS` there checks the copies
    write_text(release / "SHA256SUMS",
               "".join(f"{e['sha256']}  {COPIES}/{name}\n" for name, e in entries.items()))
    for name in files:  # the numbers themselves, for checks within a tolerance
        target = release / COPIES / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results / name, target)
    manifest = {"config_hash": stable_hash(config), "preset": config.get("preset", ""),
                "studies": studies, "devices": devices, "files": entries,
                "study_config_hashes": {s: str(a.get("config_hash", "")) for s, a in cubes.items()},
                "source_commit": next((str(a["source_commit"]) for a in cubes.values()
                                       if "source_commit" in a), ""),
                "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH", "")}
    write_text(release / "MANIFEST.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    write_text(release / "config.yaml", yaml.safe_dump(config, sort_keys=False))  # study order kept
    for name, text in environment_lock().items():
        write_text(release / name, text)
    for name in TOP_LEVEL:  # the scorecard travels with the release
        if (results / name).exists():
            write_text(release / name, (results / name).read_text())
    return files


# ---- a received release: plain data only --------------------------------------------------------
class ReceivedReleaseError(ValueError):
    """A received release (its config or manifest) is unsafe or malformed; nothing was run."""


#: YTE (Snakemake's config templating) is switched on by ``__use_yte__`` and works through keys
#: such as ``?if``/``?for`` and values starting with ``?`` (Python expressions). A received
#: config may hold none of them, nor any other key starting with a double underscore.
def template_markers(data, where: str = "") -> list[str]:
    """Every templating key or expression in ``data``, by its key path."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and (key.startswith("__") or key.startswith("?")):
                found.append(f"{path}: templating key {key!r}")
            found += template_markers(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += template_markers(value, f"{where}[{i}]")
    elif isinstance(data, str) and data.lstrip().startswith("?"):
        found.append(f"{where}: templating expression {data[:40]!r}")
    return found


def load_received_config(path: str | os.PathLike) -> dict:
    """A received config (e.g. a release's ``config.yaml``) as validated plain data.

    Read with YAML's safe loader (no Python tags), refused if it holds a templating key or
    expression or anything JSON cannot hold, and validated against the schema (which refuses
    non-finite numbers too). Raises :class:`ReceivedReleaseError` naming the file and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReceivedReleaseError(f"{path}: no such file (a release holds its config.yaml)") from None
    except UnicodeDecodeError as error:
        raise ReceivedReleaseError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ReceivedReleaseError(f"{path}: not plain YAML data{line}: {problem}") from None
    if not isinstance(data, dict):
        raise ReceivedReleaseError(f"{path}: a config must be a mapping of keys, not {type(data).__name__}")
    problems = template_markers(data)
    if problems:
        raise ReceivedReleaseError(
            f"{path}: refused, it asks for templating, which would run code from the release:\n"
            + "\n".join(f"  - {p}" for p in problems))
    try:
        json.dumps(data)
    except TypeError as error:
        raise ReceivedReleaseError(f"{path}: invalid config: a value JSON cannot hold ({error})") from None
    try:  # the schema also refuses non-finite numbers
        from scaling_atlas.studies import validate_config

        validate_config(data)
    except ConfigError as error:
        raise ReceivedReleaseError(f"{path}: {error}") from None
    return data


def load_manifest(release: Path) -> dict:
    """A release's ``MANIFEST.json``, checked for the keys ``verify`` reads."""
    path = Path(release) / "MANIFEST.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReceivedReleaseError(f"{path}: no such file (is {release} a release folder?)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReceivedReleaseError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ReceivedReleaseError(f"{path}: no 'files' mapping: not a release manifest")
    epoch = manifest.get("source_date_epoch", "")
    if not (isinstance(epoch, str) and (epoch == "" or epoch.isdigit() and epoch.isascii())):
        raise ReceivedReleaseError(f"{path}: source_date_epoch {epoch!r} is not a whole number of seconds")
    problems = []
    for key in ("studies",):
        value = manifest.get(key, [])
        if not (isinstance(value, list) and all(isinstance(s, str) and s.isidentifier() for s in value)):
            problems.append(f"'{key}' is not a list of study names")
    for key in ("devices", "study_config_hashes"):
        value = manifest.get(key, {})
        if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            problems.append(f"'{key}' is not a mapping of study names to text")
    if not isinstance(manifest.get("config_hash", ""), str):
        problems.append("'config_hash' is not text")
    for name, entry in manifest["files"].items():
        problem = _entry_problem(name, entry)
        if problem:
            problems.append(f"files[{name!r}]: {problem}")
    if problems:
        raise ReceivedReleaseError(f"{path}: not a valid release manifest:\n"
                                   + "\n".join(f"  - {p}" for p in problems[:10]))
    return manifest


def _safe_relative(name: str) -> bool:
    """A path inside the folder it is relative to: no absolute path, no '..', no odd parts."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and all(
        part not in ("..", ".", "") for part in parts) and "\\" not in name and "\n" not in name


def _is_sha256(text) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _entry_problem(name, entry) -> str:
    if not isinstance(name, str) or not _safe_relative(name):
        return "not a relative path inside the results folder"
    if not isinstance(entry, dict):
        return "not a mapping"
    sha = entry.get("sha256")
    if not _is_sha256(sha):
        return "sha256 is not 64 lowercase hex digits"
    if entry.get("kind") not in ("netcdf", "table", "text", "figure", "file"):
        return f"kind {entry.get('kind')!r} is not one of netcdf, table, text, figure, file"
    if entry.get("match") not in ("exact", "tolerance"):
        return f"match {entry.get('match')!r} is not exact or tolerance"
    rtol = entry.get("rtol", 0.0)
    if not (isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and 0 <= rtol < 1):
        return f"rtol {rtol!r} is not a number in [0, 1)"
    return ""


def read_checksums(release: Path) -> tuple[dict[str, str], list[str]]:
    """``SHA256SUMS`` as {path in the release folder: sha256}, and its malformed lines (named
    by number). The format is coreutils' ``<64 hex>  <path>``."""
    path = Path(release) / "SHA256SUMS"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ["SHA256SUMS is missing"]
    except UnicodeDecodeError:
        return {}, ["SHA256SUMS is not UTF-8 text"]
    listed, problems = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sha, sep, name = line.partition("  ")
        if not (sep and _is_sha256(sha) and name):
            problems.append(f"SHA256SUMS line {number} is not '<sha256>  <path>': {line[:80]!r}")
        elif name in listed:
            problems.append(f"SHA256SUMS line {number}: {name} is listed twice")
        else:
            listed[name] = sha
    return listed, problems


def rerun(release: Path, cores: int = 2, snakemake_args: tuple[str, ...] = ()) -> int:
    """``make verify``: re-run the workflow here with a received release's config and date, then
    compare. The config reaches Snakemake as plain JSON, after :func:`load_received_config`."""
    release = Path(release)
    manifest = load_manifest(release)
    config = load_received_config(release / "config.yaml")
    env = dict(os.environ)
    if manifest.get("source_date_epoch"):
        env["SOURCE_DATE_EPOCH"] = manifest["source_date_epoch"]
    with tempfile.TemporaryDirectory(prefix="received-config-") as folder:
        plain = Path(folder) / "config.json"
        plain.write_text(json.dumps(config))
        command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", str(plain),
                   *snakemake_args]
        print("re-running the release's config:", " ".join(command[1:]), flush=True)
        if subprocess.run(command, env=env).returncode != 0:
            print("the workflow failed; nothing was compared", file=sys.stderr)
            return 1
    return _report(release, Path("results"), config)


# ---- verification ------------------------------------------------------------------------------
@dataclass
class Difference:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _compare_attrs(a: dict, b: dict, where: str) -> list[str]:
    """Global attributes that differ, apart from the name of the machine."""
    keys = sorted((set(a) | set(b)) - MACHINE_ATTRS)
    return [f"{where}attribute {key} differs" for key in keys if str(a.get(key)) != str(b.get(key))]


def _compare_arrays(a: xr.Dataset, b: xr.Dataset, rtol: float, where: str) -> list[str]:
    problems = _compare_attrs(a.attrs, b.attrs, where)
    for name in sorted(set(a.variables) | set(b.variables)):
        if name not in a.variables or name not in b.variables:
            problems.append(f"{where}{name}: only in {'the release' if name in a.variables else 'the results'}")
            continue
        x, y = a[name].values, b[name].values
        if x.shape != y.shape:
            problems.append(f"{where}{name}: shape {y.shape} instead of {x.shape}")
        elif x.dtype.kind in "fc" and y.dtype.kind in "fc":
            same_nan = np.isnan(x) == np.isnan(y)
            close = np.isclose(x, y, rtol=rtol, atol=0.0, equal_nan=True)
            if not (same_nan.all() and close.all()):
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.nanmax(np.abs(x - y) / np.maximum(np.abs(x), np.finfo(float).tiny))
                problems.append(f"{where}{name}: {int((~close).sum())} value(s) differ "
                                f"(largest relative difference {rel:.3g}, tolerance {rtol:g})")
        elif not np.array_equal(x, y):
            problems.append(f"{where}{name}: values differ")
    return problems


def _open(path: Path):
    from scaling_atlas.cubes import open_cube

    return open_cube(path)


def compare_netcdf(expected: Path, actual: Path, rtol: float) -> list[str]:
    a, b = _open(expected), _open(actual)
    if isinstance(a, xr.DataTree) != isinstance(b, xr.DataTree):
        return ["one file has groups, the other not"]
    if isinstance(a, xr.DataTree):
        problems = _compare_attrs(a.attrs, b.attrs, "")
        for group in sorted(set(a.children) | set(b.children)):
            if group not in a.children or group not in b.children:
                problems.append(f"group {group}: missing on one side")
                continue
            problems += _compare_arrays(a[group].to_dataset(), b[group].to_dataset(), rtol, f"{group}/")
        return problems
    return _compare_arrays(a, b, rtol, "")


def _cell_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _cells_agree(u: str, v: str, rtol: float) -> bool:
    """Two cells of a CSV: equal text, or both numbers within ``rtol`` (NaN equals NaN), so
    that a column mixing numbers and text is compared cell by cell, numbers as numbers."""
    if u == v:
        return True
    x, y = _cell_number(u), _cell_number(v)
    if x is None or y is None:
        return False
    if np.isnan(x) or np.isnan(y):
        return bool(np.isnan(x) and np.isnan(y))
    return bool(np.isclose(x, y, rtol=rtol, atol=0.0))


def compare_table(expected: Path, actual: Path, rtol: float) -> list[str]:
    """A CSV cell by cell (read as text, so nothing is converted on the way): rows are named
    by the first column whose values are unique and unchanged (e.g. a claim's id), or by number."""
    read = dict(dtype=str, keep_default_na=False)
    a, b = pd.read_csv(expected, **read), pd.read_csv(actual, **read)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return [f"table shape or columns differ ({len(b)} rows × {len(b.columns)} columns vs "
                f"{len(a)} × {len(a.columns)})"]
    key = next((c for c in a.columns if a[c].is_unique and (a[c] == b[c]).all()), None)
    label = (lambda i: f"{key} {a[key].iloc[i]}") if key is not None else (lambda i: f"row {i + 1}")
    problems = []
    for column in a.columns:
        rows = [i for i, (u, v) in enumerate(zip(a[column], b[column])) if not _cells_agree(u, v, rtol)]
        if rows:
            rule = f"beyond rtol {rtol:g}" if rtol else "exactly"
            more = f" … ({len(rows)} rows)" if len(rows) > 5 else ""
            problems.append(f"column {column}: {', '.join(label(i) for i in rows[:5])}{more} "
                            f"differ ({rule})")
    return problems


def verify(release: Path, results: Path, config: dict | None = None) -> list[Difference]:
    """Every way ``results`` differs from the ``release`` (empty: it reproduces the release),
    and every sign that the release itself was altered."""
    release, results = Path(release), Path(results)
    manifest = load_manifest(release)
    differences = []
    listed, malformed = read_checksums(release)
    differences += [Difference("release/SHA256SUMS", problem) for problem in malformed]
    for name, entry in manifest["files"].items():
        copy = release / COPIES / name
        sha = listed.get(f"{COPIES}/{name}")
        if sha is None:
            differences.append(Difference(f"release/SHA256SUMS: {COPIES}/{name}",
                                          "not listed (the release was edited)"))
        elif sha != entry["sha256"]:
            differences.append(Difference(f"release/SHA256SUMS: {COPIES}/{name}", "disagrees with "
                                          "MANIFEST.json (the release was edited)"))
        if not copy.is_file() or sha256_of(copy) != entry["sha256"]:
            differences.append(Difference(f"release/{COPIES}/{name}", "missing or altered: its sha256 "
                                                                      "is not the manifest's"))
    expected_lines = {f"{COPIES}/{name}" for name in manifest["files"]}
    for name in sorted(set(listed) - expected_lines):
        differences.append(Difference(f"release/SHA256SUMS: {name}", "listed but not in MANIFEST.json "
                                                                     "(the release was edited)"))
    copies = release / COPIES
    present = {str(p.relative_to(copies)) for p in copies.rglob("*") if not p.is_dir()} \
        if copies.is_dir() else set()
    for name in sorted(present - set(manifest["files"])):
        differences.append(Difference(f"release/{COPIES}/{name}", "not in MANIFEST.json (an extra "
                                                                  "file: the release was edited)"))
    if config is not None and stable_hash(config) != manifest["config_hash"]:
        differences.append(Difference("config", f"this config (hash {stable_hash(config)}) is not the "
                                                f"release's ({manifest['config_hash']}): a release from "
                                                "another config"))
    for study, expected in manifest.get("study_config_hashes", {}).items():
        cube = results / study / "cube.nc"
        found = str(_root_attrs(cube).get("config_hash", "")) if cube.exists() else ""
        if cube.exists() and found != expected:
            differences.append(Difference(f"{study}/cube.nc", f"made from another config (study config "
                                                               f"hash {found}, the release's {expected})"))
    for name, entry in manifest["files"].items():
        path = results / name
        if not path.exists():
            differences.append(Difference(name, "missing from the results"))
            continue
        if sha256_of(path) == entry["sha256"]:
            continue
        tolerant = entry["match"] == "tolerance"
        rtol = entry.get("rtol", 0.0) if tolerant else 0.0
        reference = release / COPIES / name
        problems = []
        if entry["kind"] in ("netcdf", "table") and reference.exists():
            compare = compare_netcdf if entry["kind"] == "netcdf" else compare_table
            problems = compare(reference, path, rtol)
            machine_only = entry["kind"] == "netcdf" and _root_attrs(reference).get("host_platform") \
                != _root_attrs(path).get("host_platform")
            if not problems and (tolerant or machine_only):
                continue  # within the declared tolerance, or the same file made on another machine
        rule = f"within rtol {rtol:g}" if tolerant else "bit for bit"
        detail = ("; ".join(problems[:5]) if problems else
                  "the numbers agree but the file's bytes differ (attributes or metadata)"
                  if entry["kind"] in ("netcdf", "table") else "the bytes differ")
        differences.append(Difference(name, f"does not match the release {rule}: {detail}"))
    present = {str(p) for p in release_files(results, list(manifest.get("studies", [])))}
    for extra in sorted(present - set(manifest["files"])):
        differences.append(Difference(extra, "not in the release"))
    return differences


def _report(release: Path, results: Path, config: dict | None) -> int:
    differences = verify(release, results, config)
    n = len(load_manifest(release)["files"])
    if differences:
        print(f"{len(differences)} difference(s) from the release ({n} files checked):")
        for difference in differences:
            print(f"  - {difference}")
        return 1
    print(f"all {n} files match the release")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling_atlas.release")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="compare a results folder with a release")
    check.add_argument("release", type=Path)
    check.add_argument("--results", type=Path, default=Path("results"))
    check.add_argument("--config", type=Path, help="the config to check against the release's "
                                                   "(read as untrusted plain data)")
    again = sub.add_parser("rerun", help="re-run the workflow with a received release's config "
                                         "(as plain data) and date, then compare")
    again.add_argument("release", type=Path)
    again.add_argument("--cores", type=int, default=2)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "rerun":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "rerun":
            return rerun(args.release, args.cores, tuple(extra))
        config = load_received_config(args.config) if args.config else None
        return _report(args.release, args.results, config)
    except ReceivedReleaseError as error:
        print(f"Scaling Atlas: {error}\nNothing was run.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
