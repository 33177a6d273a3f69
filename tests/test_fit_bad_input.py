"""Bad input to the engine: a clear error naming the problem and the rows, before any fitting."""

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import FitDataError, LawFit, Objective


def points(changes=None):
    n = np.geomspace(1e7, 1e9, 8)
    d = np.geomspace(1e9, 1e11, 8)[::-1]
    df = pd.DataFrame({"N": n, "D": d, "loss": 1.8 + 400 / n**0.34 + 1500 / d**0.37},
                      index=[f"run{i}" for i in range(8)])
    for (row, col), value in (changes or {}).items():
        df.loc[row, col] = value
    return df


def test_non_positive_n_names_the_rows():
    df = points({("run2", "N"): 0.0, ("run5", "N"): -3.0})
    with pytest.raises(FitDataError, match=r"non-positive N in row\(s\) run2, run5"):
        LawFit("chinchilla").fit(df, df["loss"])


def test_non_positive_loss_in_log_space_names_the_rows():
    df = points({("run4", "loss"): 0.0})
    with pytest.raises(FitDataError, match=r"non-positive target in row\(s\) run4"):
        LawFit("chinchilla").fit(df, df["loss"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_rows_stop_the_fit_unless_dropping_is_asked_for(bad):
    df = points({("run3", "D"): bad})
    with pytest.raises(FitDataError, match=r"NaN or infinite values in row\(s\) run3.*nan_policy"):
        LawFit("chinchilla").fit(df, df["loss"])
    fit = LawFit("chinchilla", nan_policy="drop").fit(df, df["loss"])
    assert fit.n_points_ == 7 and fit.n_dropped_nan_ == 1 and fit.dropped_rows_ == ["run3"]
    assert fit.to_dataset().attrs["n_dropped_nan"] == 1


def test_fewer_points_than_parameters():
    df = points().iloc[:4]
    with pytest.raises(FitDataError, match="4 usable points for 5 parameters"):
        LawFit("chinchilla").fit(df, df["loss"])


def test_missing_columns_are_named_with_a_hint():
    df = points().drop(columns="D")
    with pytest.raises(FitDataError, match=r"missing column\(s\) \['D'\].*columns="):
        LawFit("chinchilla").fit(df, df["loss"])
    renamed = points().rename(columns={"N": "params"})
    fit = LawFit("chinchilla").fit(renamed, renamed["loss"], columns={"N": "params"})
    assert fit.n_points_ == 8


def test_unknown_form_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown law form 'chinchila'; known forms: .*chinchilla"):
        LawFit("chinchila")


def test_bounds_that_exclude_every_start():
    df = points()
    with pytest.raises(ValueError, match="exclude every one of the 4500 starts"):
        LawFit("chinchilla", bounds={"alpha": (3.0, 4.0)}).fit(df, df["loss"])
    with pytest.raises(ValueError, match=r"bounds for unknown parameter\(s\) \['gamma'\]"):
        LawFit("chinchilla", bounds={"gamma": (0, 1)})


def test_probabilities_outside_the_unit_interval_for_the_task_law():
    with pytest.raises(FitDataError, match=r"outside \(0, 1\) in row\(s\) 2"):
        LawFit("task_law", Objective("mse", space="loglog")).fit(
            {"N": np.array([1e6, 1e7, 1e8])}, np.array([0.1, 0.5, 1.0]))
