"""Power laws L(x) = A x^(−α) (+ C), fitted scikit-learn style.

>>> law = PowerLaw().fit(m, loss)          # the paper's way: OLS of log L on log m
>>> law.exponent_, law.exponent_se_, law.r2_
>>> PowerLaw(offset=True).fit(m, loss)     # with an additive constant C ≥ 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import optimize, stats


@dataclass
class PowerLaw:
    """Fit L = A·x^(−α) (``offset=False``) or L = A·x^(−α) + C (``offset=True``).

    Without offset: ordinary least squares of log L on log x (``scipy.stats.linregress``), as in
    the paper; ``exponent_se_`` is the slope's standard error and ``r2_`` the log-log R².
    With offset: least squares in log space, log L ≈ log(A x^(−α) + C), over (log A, α, C ≥ 0);
    standard errors from the Jacobian at the optimum, R² in log space.
    Attributes are NaN when fewer points than parameters (+1 for a standard error) are given.
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
        (self._fit_offset if self.offset else self._fit_loglog)(np.log(x), np.log(y), y)
        return self

    def _fit_loglog(self, log_x, log_y, _y) -> None:
        result = stats.linregress(log_x, log_y)
        self.exponent_ = -result.slope
        self.exponent_se_ = result.stderr if len(log_x) > 2 else math.nan
        self.prefactor_ = math.exp(result.intercept)
        self.r2_ = result.rvalue**2

    def _fit_offset(self, log_x, log_y, y) -> None:
        def residuals(theta):
            log_a, alpha, c = theta
            return np.log(np.exp(log_a - alpha * log_x) + c) - log_y

        start = PowerLaw().fit(np.exp(log_x), y)
        best = None
        for c0 in (0.0, 0.5 * y.min(), 0.9 * y.min()):
            guess = [math.log(start.prefactor_), max(start.exponent_, 0.05), c0]
            res = optimize.least_squares(
                residuals, guess, bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, y.min()]),
                method="trf",
            )
            if best is None or res.cost < best.cost:
                best = res
        log_a, alpha, c = best.x
        self.exponent_, self.prefactor_, self.offset_ = alpha, math.exp(log_a), c
        dof = len(log_x) - 3
        ss_res = float(np.sum(best.fun**2))
        self.r2_ = 1.0 - ss_res / float(np.sum((log_y - log_y.mean()) ** 2))
        if dof > 0:
            try:
                cov = np.linalg.inv(best.jac.T @ best.jac) * ss_res / dof
                self.exponent_se_ = float(math.sqrt(max(cov[1, 1], 0.0)))
            except np.linalg.LinAlgError:
                self.exponent_se_ = math.nan

    def predict(self, x):
        return self.prefactor_ * np.asarray(x, float) ** (-self.exponent_) + (self.offset_ or 0.0)


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
