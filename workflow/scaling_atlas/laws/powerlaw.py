"""Power laws L(x) = A x^(−α) (+ C) for per-cell fits over one coordinate, on the engine.

>>> law = PowerLaw().fit(m, loss)          # the paper's way: OLS of log L on log m
>>> law.exponent_, law.exponent_se_, law.r2_
>>> PowerLaw(offset=True).fit(m, loss)     # with an additive constant C > 0

A thin adapter over :class:`scaling_atlas.laws.engine.LawFit` (least squares in log space; for
the pure power law that *is* OLS of log L on log x, and the Gauss-Newton standard error is the
OLS slope's), returning NaN attributes instead of raising when a cell has too few points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from scaling_atlas.laws.engine import LawFit
from scaling_atlas.laws.objectives import Objective

LOG_LEAST_SQUARES = Objective("mse", space="log")


@dataclass
class PowerLaw:
    """Fit L = A·x^(−α) (``offset=False``) or L = A·x^(−α) + C (``offset=True``).

    Attributes: ``exponent_`` (α), ``exponent_se_``, ``prefactor_`` (A), ``offset_`` (C),
    ``r2_`` (log space), ``n_points_``; NaN when there are fewer points than parameters
    (+1 for a standard error). Non-positive or non-finite points are skipped.
    """

    offset: bool = False

    def fit(self, x, y) -> "PowerLaw":
        x, y = np.asarray(x, float), np.asarray(y, float)
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        x, y = x[keep], y[keep]
        self.n_points_ = len(x)
        self.exponent_ = self.exponent_se_ = self.prefactor_ = self.r2_ = math.nan
        self.offset_ = 0.0 if not self.offset else math.nan
        if len(x) < (3 if self.offset else 2) or np.ptp(x) == 0:
            return self
        base = LawFit("power_law", LOG_LEAST_SQUARES, starts=_loglog_start(x, y), top_k=1)
        base.fit({"x": x}, y)
        law = base
        if self.offset:
            a, alpha = base.params_["a"], max(base.params_["alpha"], 0.05)
            starts = [[a, alpha, math.log(f * y.min())] for f in (1e-3, 0.5, 0.9)]
            law = LawFit("power_law_offset", LOG_LEAST_SQUARES, starts=np.array(starts), top_k=3,
                         bounds={"e": (-np.inf, math.log(y.min()))}).fit({"x": x}, y)
            self.offset_ = law.natural_["E"]
        self.law_ = law
        self.exponent_, self.prefactor_ = law.natural_["alpha"], law.natural_["A"]
        self.exponent_se_ = law.standard_errors_["alpha"]
        log_y = np.log(y)
        ss_tot = float(np.sum((log_y - log_y.mean()) ** 2))
        self.r2_ = 1.0 - float(np.sum(law.residuals_**2)) / ss_tot if ss_tot > 0 else math.nan
        return self

    def predict(self, x):
        return self.prefactor_ * np.asarray(x, float) ** (-self.exponent_) + (self.offset_ or 0.0)


def _loglog_start(x, y):
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return np.array([[intercept, -slope]])


FIT_FIELDS = {
    "alpha_m": ("exponent_", "fitted width exponent α_m (L ∝ m^−α_m)"),
    "alpha_m_se": ("exponent_se_", "standard error of α_m"),
    "prefactor": ("prefactor_", "fitted prefactor A"),
    "offset": ("offset_", "fitted additive constant C"),
    "r2": ("r2_", "coefficient of determination of the log-log fit"),
    "n_points": ("n_points_", "number of widths in the fit"),
}


def fit_power_law_over(da: xr.DataArray, dim: str, offset: bool = False, min_x: float = 0) -> xr.Dataset:
    """Fit ``da`` against its coordinate ``dim`` separately for every other index combination."""
    x = da[dim].to_numpy()
    use = x >= min_x
    stacked = da.transpose(..., dim)
    flat = stacked.to_numpy().reshape(-1, len(x))
    results = {name: np.full(flat.shape[0], np.nan) for name in FIT_FIELDS}
    for row, values in enumerate(flat):
        law = PowerLaw(offset=offset).fit(x[use], values[use])
        for name, (attr, _) in FIT_FIELDS.items():
            results[name][row] = getattr(law, attr)
    other_dims = [d for d in stacked.dims if d != dim]
    shape = [stacked.sizes[d] for d in other_dims]
    coords = {d: stacked[d] for d in other_dims}
    ds = xr.Dataset(
        {name: (other_dims, values.reshape(shape)) for name, values in results.items()}, coords=coords
    )
    for name, (_, long_name) in FIT_FIELDS.items():
        ds[name].attrs.update(long_name=long_name, units="1")
    ds["prefactor"].attrs["units"] = da.attrs.get("units", "1")
    ds["offset"].attrs["units"] = da.attrs.get("units", "1")
    return ds
