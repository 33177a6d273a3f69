"""Bad input to the engine: a clear error naming the problem and the rows, before any fitting."""

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import FitDataError, FitWarning, LawFit, Objective


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


# ---- #19 item 6: the engine matches, checks and refuses its input ------------------------------

def grid_points():
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e9, 1e11, 4))
    n, d = n.ravel(), d.ravel()
    return pd.DataFrame({"N": n, "D": d, "loss": 1.8 + 400 / n**0.34 + 1500 / d**0.37},
                        index=[f"run{i}" for i in range(16)])


def test_a_shuffled_target_series_is_matched_by_index_not_position():
    df = grid_points()
    truth = LawFit("chinchilla").fit(df, df["loss"]).natural_
    shuffled = df["loss"].sample(frac=1.0, random_state=3)
    assert not shuffled.index.equals(df.index)
    fit = LawFit("chinchilla").fit(df, shuffled)
    assert fit.natural_ == pytest.approx(truth, rel=1e-9)
    assert fit.natural_["alpha"] == pytest.approx(0.34, abs=0.01)
    # by position the same values describe another, far worse fitting law
    positional = LawFit("chinchilla").fit(df, shuffled.to_numpy())
    assert positional.objective_value_ > 100 * fit.objective_value_


def test_a_target_with_other_labels_is_refused_naming_them():
    df = points()
    other = df["loss"].rename(index={"run3": "run99"})
    with pytest.raises(FitDataError, match=r"missing from the target: run3; rows not in X: run99"):
        LawFit("chinchilla").fit(df, other)


def test_weights_are_checked():
    df = points()
    with pytest.raises(FitDataError, match=r"negative weight in row\(s\) run1"):
        LawFit("chinchilla").fit(df, df["loss"], weights=[1, -1, 1, 1, 1, 1, 1, 1])
    with pytest.raises(FitDataError, match="7 weights for 8 points"):
        LawFit("chinchilla").fit(df, df["loss"], weights=np.ones(7))
    with pytest.raises(FitDataError, match=r"NaN or infinite weight in row\(s\) run6"):
        LawFit("chinchilla").fit(df, df["loss"], weights=[1, 1, 1, 1, 1, 1, np.nan, 1])
    # weights given as a Series follow the index too
    w = pd.Series(1.0, index=df.index[::-1])
    fit = LawFit("chinchilla").fit(df, df["loss"], weights=w)
    assert fit.natural_ == pytest.approx(LawFit("chinchilla").fit(df, df["loss"]).natural_)
    # a zero weight leaves the point out, and leaving too many out is caught
    with pytest.raises(FitDataError, match="4 usable points for 5 parameters"):
        LawFit("chinchilla").fit(df, df["loss"], weights=[1, 1, 1, 1, 0, 0, 0, 0])


def test_text_values_name_the_row_and_column():
    df = points().astype({"D": object})
    df.loc["run4", "D"] = "1e10 tokens"
    with pytest.raises(FitDataError, match=r"non-numeric value\(s\) in column 'D', row\(s\) run4 "
                                           r"\(e.g. '1e10 tokens'\)"):
        LawFit("chinchilla").fit(df, df["loss"])
    target = points()["loss"].astype(object)
    target.iloc[2] = "n/a"
    with pytest.raises(FitDataError, match=r"column 'loss', row\(s\) run2"):
        LawFit("chinchilla").fit(points(), target)


def test_dates_and_complex_numbers_are_refused():
    df = points()
    df["N"] = pd.date_range("2020-01-01", periods=8)
    with pytest.raises(FitDataError, match="column 'N' holds dates or durations"):
        LawFit("chinchilla").fit(df, df["loss"])
    df = points()
    df["D"] = df["D"].astype(complex)
    with pytest.raises(FitDataError, match="column 'D' holds complex numbers"):
        LawFit("chinchilla").fit(df, df["loss"])


def test_as_many_points_as_parameters_warn_and_repeated_rows_are_refused():
    df = points().iloc[:5]
    with pytest.warns(FitWarning, match="5 points at 5 distinct values of N, D for 5 parameters"):
        fit = LawFit("chinchilla").fit(df, df["loss"])
    attrs = fit.attributes()
    assert attrs["degrees_of_freedom"] == 0 and "pass through the distinct points" in attrs["fit_warnings"]
    # points on one line in (ln N, ln D) leave the fit in a flat valley (B → ∞ with β): that warns
    # too, so the well-posed case is a crossed grid of sizes and token counts
    n, d = np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e9, 1e11, 4))
    grid = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    grid["loss"] = 1.8 + 400 / grid["N"] ** 0.34 + 1500 / grid["D"] ** 0.37
    assert LawFit("chinchilla").fit(grid, grid["loss"]).attributes()["fit_warnings"] == "none"
    with pytest.warns(FitWarning, match="not identified"):
        LawFit("chinchilla").fit(points(), points()["loss"])
    same = pd.concat([points().iloc[[0]]] * 8)
    with pytest.raises(FitDataError, match="all 8 usable points have the same N, D"):
        LawFit("chinchilla").fit(same, same["loss"])
    twice = pd.concat([points().iloc[:3]] * 3).reset_index(drop=True)
    with pytest.raises(FitDataError, match="9 points at 3 distinct value"):
        LawFit("chinchilla").fit(twice, twice["loss"])
