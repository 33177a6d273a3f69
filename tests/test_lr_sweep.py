"""Per-size learning rates chosen by a sweep (issue #17, after Porian et al. 2024): every grid
point is trained at each peak LR of ``lr_sweep`` and keeps the best; the sweep stays in the cube."""

import copy

import numpy as np
import pytest
import xarray as xr

from scaling_atlas.config import ConfigError, validate_config
from scaling_atlas.studies import get_study
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

from conftest import load_config


def _sweep_cube():
    # (width, seed, lr) with a curve dim: width 16 is best at 0.01 (inside), width 32 at 0.03
    # (the edge), width 48 diverged at 0.03 and is best at 0.003 (the other edge)
    loss = np.array([[[4.0, 3.5, 3.9]], [[4.1, 3.9, 3.7]], [[3.6, 3.8, np.nan]]])
    curve = loss[..., None] + np.arange(3.0)[::-1]  # the curve's last point is the final loss
    return xr.Dataset(
        {"final_val_loss": (("width", "seed", "lr"), loss),
         "diverged": (("width", "seed", "lr"), np.isnan(loss).astype(float)),
         "curve_val_loss": (("width", "seed", "lr", "point"), curve)},
        coords={"width": [16, 32, 48], "seed": [0], "lr": [0.003, 0.01, 0.03], "point": [0, 1, 2]})


def test_the_best_lr_of_each_point_is_kept_with_the_sweep():
    tuned = TransformerFamilyStudy.choose_learning_rates(_sweep_cube())
    assert tuned["final_val_loss"].dims == ("width", "seed")
    np.testing.assert_allclose(tuned["final_val_loss"].values.ravel(), [3.5, 3.7, 3.6])
    np.testing.assert_allclose(tuned["lr"].values.ravel(), [0.01, 0.03, 0.003])
    np.testing.assert_allclose(tuned["lr_at_sweep_edge"].values.ravel(), [0, 1, 1])
    np.testing.assert_allclose(tuned["curve_val_loss"].sel(width=32, seed=0).values, [5.7, 4.7, 3.7])
    assert tuned["sweep_final_val_loss"].dims == ("width", "seed", "lr_sweep")
    assert list(tuned["lr_sweep"].values) == [0.003, 0.01, 0.03]
    assert float(tuned["sweep_diverged"].sel(width=48, seed=0, lr_sweep=0.03)) == 1.0


def test_the_lr_premise():
    tuned = TransformerFamilyStudy.choose_learning_rates(_sweep_cube())
    premise = TransformerFamilyStudy.lr_premise(tuned)
    assert not premise.holds and "2 of 3 runs chose an edge value" in premise.detail
    inside = tuned.copy()
    inside["lr_at_sweep_edge"] = inside["lr_at_sweep_edge"] * 0
    assert TransformerFamilyStudy.lr_premise(inside).holds
    untuned = TransformerFamilyStudy.lr_premise(xr.Dataset())
    assert not untuned.holds and "one peak LR for every size" in untuned.detail


def _with(**changes):
    config = copy.deepcopy(load_config())
    config["studies"]["superposition_lm"].update(changes)
    return config


def test_runs_cover_the_sweep():
    config = validate_config(_with(lr_sweep=[0.03, 0.003, 0.01]))
    study = get_study("superposition_lm", config)
    runs = study.runs()
    assert len(runs) == 3 * len(config["studies"]["superposition_lm"]["widths"])
    assert sorted({r["lr"] for r in runs}) == [0.003, 0.01, 0.03]
    assert len({r.run_id for r in runs}) == len(runs)


@pytest.mark.parametrize("sweep", [[0.01, 0.03], [0.01, 0.01, 0.03]])
def test_a_short_sweep_is_refused(sweep):
    with pytest.raises(ConfigError, match="lr_sweep: .* needs at least 3 distinct peak LRs"):
        validate_config(_with(lr_sweep=sweep))


def test_emergence_refuses_a_sweep():
    config = copy.deepcopy(load_config())
    config["studies"]["emergence"]["lr_sweep"] = [0.001, 0.003, 0.01]
    with pytest.raises(ConfigError, match="not supported by the emergence study"):
        validate_config(config)
