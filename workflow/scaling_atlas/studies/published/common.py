"""What every paper module of the published study shares: the losses' unit, how a downloaded
table becomes a described dataset, and Chinchilla's compute budget."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.cubes import describe_variables

#: the published losses' unit, as the cube's groups record it
LOSS = "nats/token"
#: Chinchilla's training compute (FLOP): claims and figures read the fits at this budget
CHINCHILLA_C = 5.88e23
#: a paper module's way to a published file: its name in the mirror → a verified local path
Obtain = Callable[[str], Path]


def table(df: pd.DataFrame, dim: str, meta: dict[str, tuple[str, str]], **attrs) -> xr.Dataset:
    """The columns of ``df`` that ``meta`` describes, along ``dim`` (a row number), described."""
    ds = xr.Dataset({c: (dim, df[c].to_numpy()) for c in meta if c in df})
    ds = ds.assign_coords({dim: np.arange(len(df))})
    ds[dim].attrs.update(long_name=f"row of the {dim.replace('_', ' ')} table", units="1")
    ds.attrs.update(attrs)
    return describe_variables(ds, meta)


def in_group(group: str, variables: dict) -> dict:
    """A variables table keyed ``group/name``: the names mean this in that fit group."""
    return {f"{group}/{name}": entry for name, entry in variables.items()}


def by_row(table: pd.DataFrame, dim: str, names: list, dtype=None) -> xr.Dataset:
    """One row of ``table`` per ``names`` entry, along ``dim`` (named by them)."""
    ds = xr.Dataset({c: (dim, table[c].to_numpy(dtype)) for c in table})
    return ds.assign_coords({dim: (dim, list(names))})
