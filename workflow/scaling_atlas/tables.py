"""Tables of runs from files: CSV, TSV, parquet, JSON lines and Weights & Biases exports, with
each row's index set to where it is in its file (so errors can name the line)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl", "wandb")


class InputError(ValueError):
    """Bad input: the message names the file and, where it can, the row and column."""


# ---- reading ---------------------------------------------------------------------------------
def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    by_suffix = {".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".parquet": "parquet",
                 ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
    if suffix not in by_suffix:
        raise InputError(f"{path}: cannot tell the format from the suffix {suffix!r}; pass "
                         f"--format ({', '.join(FORMATS[1:])})")
    found = by_suffix[suffix]
    if found == "csv" and _looks_like_wandb(path):
        return "wandb"
    return found


WANDB_COLUMN = re.compile(r"^(?P<run>.+) - (?P<metric>[^ ].*?)$")


def _looks_like_wandb(path: Path) -> bool:
    try:
        header = pd.read_csv(path, nrows=0).columns
    except Exception:  # the real read reports it
        return False
    return any(WANDB_COLUMN.match(str(c)) for c in header) and any(
        str(c) in ("Step", "_step", "step", "trainer/global_step") for c in header)


def _wandb_long(wide: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A W&B chart export (one ``<run> - <metric>`` column per run, plus ``__MIN``/``__MAX``
    bands) as a long table: run, step, one column per metric."""
    step = next((c for c in wide.columns if c in ("Step", "_step", "step", "trainer/global_step")),
                None)
    if step is None:
        raise InputError(f"{path}: a W&B export needs a step column (Step or _step)")
    parts = []
    for column in wide.columns:
        match = WANDB_COLUMN.match(str(column))
        if not match or column.endswith(("__MIN", "__MAX")):
            continue
        part = wide[[step, column]].dropna(subset=[column])
        parts.append(pd.DataFrame({"run": match["run"], "step": part[step].to_numpy(),
                                   match["metric"]: part[column].to_numpy()},
                                  index=part.index))
    if not parts:
        raise InputError(f"{path}: no '<run> - <metric>' columns in this W&B export")
    long = pd.concat(parts)
    metrics = [c for c in long.columns if c not in ("run", "step")]
    return long.groupby(["run", "step"], sort=False, as_index=False)[metrics].first()


def read_table(path, fmt: str = "auto") -> pd.DataFrame:
    """The rows of ``path`` with the index set to where each row is in the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give one file")
    fmt = _format_of(path, fmt)
    try:
        if fmt in ("csv", "tsv", "wandb"):
            table = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")
            table.index = table.index + 2  # line numbers: the header is line 1
        elif fmt == "parquet":
            table = pd.read_parquet(path)
            table.index = np.arange(1, len(table) + 1)
        else:
            rows = []
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise InputError(f"{path}: line {number}: not JSON ({error.msg})") from None
                    if not isinstance(value, dict):
                        raise InputError(f"{path}: line {number}: expected one JSON object per "
                                         f"line, got {type(value).__name__}")
                    rows.append((number, value))
            table = pd.DataFrame([v for _, v in rows], index=[n for n, _ in rows])
            if "_step" in table and "step" not in table:  # a W&B run history
                table = table.rename(columns={"_step": "step"})
    except InputError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError,
            OSError, ImportError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: cannot read it as {fmt}: {first}") from None
    # a text cell makes pandas read its whole column as text: keep the numbers as numbers, so
    # that the error names only the cells that are not
    for column in table.columns:
        if pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column]):
            continue
        numbers = pd.to_numeric(table[column], errors="coerce")
        if numbers.notna().any():
            table[column] = numbers.astype(object).where(numbers.notna(),
                                                         table[column].astype(object))
    if fmt == "wandb":
        table = _wandb_long(table, path)
    if table.empty:
        raise InputError(f"{path}: no rows")
    return table


def read_runs(path, fmt: str = "auto") -> pd.DataFrame:
    """One file of runs, or a folder with one file per run (its name becomes the ``run``
    column). Rows are labelled by where they are: the line number, or ``file:line`` in a
    folder."""
    path = Path(path)
    if not path.is_dir():
        return read_table(path, fmt)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{path}: an empty folder")
    frames = []
    for file in files:
        table = read_table(file, fmt)
        if "run" not in table:
            table.insert(0, "run", file.stem)
        table.index = [f"{file.name}:{i}" for i in table.index]
        frames.append(table)
    return pd.concat(frames)
