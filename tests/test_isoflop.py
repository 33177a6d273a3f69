"""Approach 2 (IsoFLOP minima): the raw-loss convention, column mapping, NaN policy, and a
reason for every budget left out."""

import math

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import FitDataError, fit_isoflop, isoflop_optima

N_STAR = {1e18: 2.0e7, 1e19: 6.0e7, 1e20: 1.9e8, 1e21: 6.0e8}  # N* ∝ C^0.5 (roughly)


def _parabolic_surface(curvature=0.02, per_budget=7):
    """Losses exactly quadratic in ln N around N* (raw loss), sampled off-centre (N*/4 to 16·N*):
    the raw-space parabola is exact; one in ln(loss) is not."""
    rows = []
    for c, n_star in N_STAR.items():
        floor = 3.0 - 0.1 * math.log10(c / 1e18)
        for n in np.geomspace(n_star / 4, n_star * 16, per_budget):
            rows.append({"C": c, "N": n, "val_loss": floor + curvature * math.log(n / n_star) ** 2})
    return pd.DataFrame(rows)


COLUMNS = {"flops": "C", "n_params": "N", "loss": "val_loss"}


def test_raw_loss_is_the_default_and_recovers_an_exact_parabola():
    points = _parabolic_surface()
    raw = isoflop_optima(points, method="parabola", columns=COLUMNS)
    assert raw.attrs["space"] == "loss"
    assert raw["n_opt"].to_numpy() == pytest.approx(list(N_STAR.values()), rel=1e-9)
    assert raw["used"].all() and (raw["reason"] == "").all()
    logged = isoflop_optima(points, method="parabola", columns=COLUMNS, space="log")
    assert logged.attrs["space"] == "log"
    # ln(loss) is not quadratic in ln N: its minimum moves off the true one (the 2-4 %)
    shift = np.abs(logged["n_opt"].to_numpy() / np.array(list(N_STAR.values())) - 1)
    assert shift.min() > 1e-4
    result = fit_isoflop(raw)
    assert result.settings["space"] == "loss"
    assert result.exponent == pytest.approx(
        np.polyfit(np.log(list(N_STAR)), np.log(list(N_STAR.values())), 1)[0], rel=1e-9)


def test_missing_columns_are_named_with_the_mapping_to_use():
    points = _parabolic_surface()
    with pytest.raises(FitDataError, match=r"lack column\(s\) 'flops' \(for flops\).*'C'.*columns="):
        isoflop_optima(points, columns={"n_params": "N", "loss": "val_loss"})
    with pytest.raises(FitDataError, match="unknown key"):
        isoflop_optima(points, columns={"compute": "C"})


def test_zero_parameters_are_refused_by_row():
    points = _parabolic_surface()
    points.loc[5, "N"] = 0.0
    with pytest.raises(FitDataError, match=r"non-positive n_params \(column 'N'\) in row\(s\) 5"):
        isoflop_optima(points, columns=COLUMNS)


def test_nan_policy_raises_by_row_or_drops_and_counts_per_budget():
    points = _parabolic_surface()
    points.loc[3, "val_loss"] = np.nan           # budget 1e18 keeps its other 6 points
    points.loc[10, "C"] = np.nan                 # a row without a budget
    with pytest.raises(FitDataError, match=r"row\(s\) 3, 10.*nan_policy='drop'"):
        isoflop_optima(points, columns=COLUMNS)
    optima = isoflop_optima(points, columns=COLUMNS, method="parabola", nan_policy="drop")
    assert list(optima["n_dropped_nan"]) == [1, 0, 0, 0]
    assert optima.attrs["n_dropped_nan"] == 2 and optima.attrs["n_dropped_nan_no_budget"] == 1
    assert optima["used"].all()  # one NaN loss no longer loses the whole budget
    assert list(optima["n_points"]) == [6, 6, 7, 7]


def test_every_dropped_budget_has_its_reason():
    points = _parabolic_surface()
    # budget 1e19: sampled only above N*; budget 1e20: 2 points; budget 1e21: a concave profile
    points = points[~((points["C"] == 1e19) & (points["N"] < 6.0e7 * 1.1))]
    keep_two = points.index[points["C"] == 1e20][:2]
    points = points[(points["C"] != 1e20) | points.index.isin(keep_two)].copy()
    top = points["C"] == 1e21
    points.loc[top, "val_loss"] = 5.0 - (points.loc[top, "val_loss"] - 2.7)
    optima = isoflop_optima(points, method="parabola", columns=COLUMNS).set_index("flops")
    assert optima.loc[1e18, "reason"] == "" and optima.loc[1e18, "used"]
    assert optima.loc[1e19, "reason"] == "minimum below the smallest sampled N"
    assert optima.loc[1e20, "reason"] == "2 distinct N (a parabola needs 3)"
    assert optima.loc[1e21, "reason"] == "the parabola opens downward (no minimum)"
    assert not optima.loc[[1e19, 1e20, 1e21], "used"].any()
    with pytest.raises(ValueError, match=r"C=1e\+19: minimum below the smallest sampled N"):
        fit_isoflop(optima.reset_index())
    akima = isoflop_optima(points, method="akima", columns=COLUMNS).set_index("flops")
    assert akima.loc[1e19, "reason"] == "minimum at the smallest sampled N"


@pytest.mark.parametrize("tilt", [1.0, -1.0])
def test_a_nearly_flat_profile_puts_its_vertex_out_of_range_without_overflow(tilt):
    """A tiny positive curvature with a slope puts the vertex ~1e3 e-folds away: exp(x) under-
    or overflows. The budget is left out with its reason (a noise replicate of compute_optimal's
    bootstrap once crashed here with ZeroDivisionError)."""
    points = _parabolic_surface()
    flat = points["C"] == 1e19
    log_n = np.log(points.loc[flat, "N"])
    points.loc[flat, "val_loss"] = 3.0 - tilt * 1e-2 * log_n + 1e-6 * log_n**2
    optima = isoflop_optima(points, method="parabola", columns=COLUMNS).set_index("flops")
    row = optima.loc[1e19]
    assert not row["used"] and math.isnan(row["n_opt"]) and math.isnan(row["d_opt"])
    assert row["reason"] == ("minimum above the largest sampled N" if tilt > 0 else
                             "minimum below the smallest sampled N")
    assert optima.loc[1e18, "used"]
