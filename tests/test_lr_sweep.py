"""Per-size learning rates chosen by a sweep (issue #17, after Porian et al. 2024): every grid
point is trained at each peak LR of ``lr_sweep`` and keeps the best; the sweep stays in the cube."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from scaling_atlas.config import ConfigError
from scaling_atlas.studies import validate_config
from scaling_atlas.studies import get_study
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

from conftest import load_config, merged, snakemake, workflow_copy


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
    assert not premise.holds and "2 of 3 choices are an edge value" in premise.detail
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


def test_emergence_sweeps_per_size_only():
    config = copy.deepcopy(load_config())
    config["studies"]["emergence"]["lr_sweep"] = [0.001, 0.003, 0.01]
    with pytest.raises(ConfigError, match="the emergence study sweeps the LR per size"):
        validate_config(config)  # a per-point sweep would keep every LR's instance arrays
    config["studies"]["emergence"]["lr_sweep_scope"] = "size"
    validate_config(config)


# ---- lr_sweep_scope: size — each width swept once, its best LR reused (a two-stage sweep) ------
def _size_scope(name="superposition_lm", **changes):
    config = copy.deepcopy(load_config())
    config["studies"][name].update({"lr_sweep": [0.003, 0.01, 0.03], "lr_sweep_scope": "size",
                                    **changes})
    return get_study(name, validate_config(config))


def test_a_per_size_sweep_trains_each_width_once_per_lr_and_the_rest_at_the_choice():
    study = _size_scope(seeds=[0, 1], batch_size=4, tokens=2_000_000,
                        lr_sweep_tokens_per_parameter=5)
    runs = study.runs()
    widths = study.settings["widths"]
    sweep = [r for r in runs if r.params.get("lr_stage") == "sweep"]
    tuned = [r for r in runs if r.params.get("lr_stage") == "tuned"]
    assert len(sweep) == 3 * len(widths) and len(tuned) == 2 * len(widths)  # no grid point reused
    assert study.run_count() == len(runs) == len({r.run_id for r in runs})
    per_step = 4 * 64
    for run in sweep:  # the proxy horizon D = 5·N, at least 1000 steps, at most the grid's tokens
        n = study.model_size(run["width"])
        assert run["tokens"] == min(max(math.ceil(5 * n), 1000 * per_step), 2_000_000)
        assert run["seed"] == 0 and run["lr"] in (0.003, 0.01, 0.03)
    assert max(r["tokens"] for r in sweep) < 2_000_000  # every proxy is shorter here
    assert all(r["lr"] is None and r["tokens"] == 2_000_000 for r in tuned)
    # a tuned run's id holds its width's sweep: another sweep gives other runs
    other = _size_scope(seeds=[0, 1], batch_size=4, tokens=2_000_000, lr_sweep_tokens_per_parameter=5,
                        lr_sweep=[0.002, 0.01, 0.03])
    assert not {r.run_id for r in tuned} & {r.run_id for r in other.runs()}
    # the sweep's shards train first: only the others read the choice
    shards = study.shards()
    assert set(study.tuning_shards()) == {s for s in shards if s.startswith("sweep-")}
    assert all(all(r.params["lr_stage"] == "sweep" for r in shards[s]) for s in study.tuning_shards())
    for name in shards:
        expected = [] if name.startswith("sweep-") else ["results/superposition_lm/lr_choice.tsv"]
        assert study.shard_inputs(name) == expected


def test_a_per_size_sweep_at_the_shortest_point_reuses_its_best_run():
    study = _size_scope("compute_optimal", seeds=[0, 1])
    grid = study.grid()
    plan = study.sweep_plan()
    assert set(plan) == {p["width"] for p in grid}
    for width, (point, reused) in plan.items():
        own = [p for p in grid if p["width"] == width and p["seed"] == 0]
        assert reused and point == min(own, key=lambda p: p["tokens"])
    runs = study.runs()
    assert len(runs) == study.run_count() == 3 * len(plan) + len(grid) - len(plan)
    tuned_points = [{k: r[k] for k in ("budget", "width", "tokens", "seed")} for r in runs
                    if r.params.get("lr_stage") == "tuned"]
    assert not any(point in tuned_points for point, _ in plan.values())


def test_the_size_choice_takes_the_lowest_finite_loss_and_names_a_width_that_never_trained():
    sweep = pd.DataFrame({"width": [16] * 3 + [32] * 3,
                          "lr": [0.01, 0.003, 0.03, 0.003, 0.01, 0.03],
                          "final_val_loss": [3.5, 4.0, 3.9, 4.1, 3.9, np.nan],
                          "diverged": [0, 0, 0, 0, 0, 1]})
    choice = TransformerFamilyStudy.choose_size_lrs(sweep).set_index("width")
    assert choice.loc[16, "lr"] == 0.01 and choice.loc[16, "at_edge"] == 0
    assert choice.loc[32, "lr"] == 0.01 and choice.loc[32, "final_val_loss"] == 3.9
    edge = sweep.assign(final_val_loss=[3.5, 4.0, 3.4, 4.1, 3.9, np.nan])
    assert TransformerFamilyStudy.choose_size_lrs(edge).set_index("width").loc[16, "at_edge"] == 1
    dead = sweep.assign(diverged=[0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="width 32: every LR of the sweep .* diverged"):
        TransformerFamilyStudy.choose_size_lrs(dead)


def test_a_per_size_sweep_runs_end_to_end(tmp_path):
    """The sweep shards train first, choose_lr writes each width's best LR, the width's other
    runs train with it, and the cube holds the choice, the sweep and no lr dimension."""
    workdir = workflow_copy(tmp_path / "wf")
    overlay = {"studies": {"superposition_lm": {
        "kind": "superposition_lm", "corpus": {"source": "grammar", "val_tokens": 8192},
        "family": {"aspect_ratio": 32, "head_dim": 8}, "widths": [16, 24, 32, 48],
        "seeds": [0, 1], "tokens": 40_000, "batch_size": 8, "eval_points": 4, "eval_tokens": 4096,
        "lr_sweep": [0.001, 0.01, 0.1], "lr_sweep_scope": "size"}}}
    config = merged(load_config(), {})
    config["studies"] = {"superposition_lm": merged(config["studies"]["superposition_lm"],
                                                    overlay["studies"]["superposition_lm"])}
    (workdir / "sweep.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "sweep.yaml", "--cores", "2",
                       "results/superposition_lm/cube.nc")
    assert result.returncode == 0, result.stderr[-3000:]
    choice = pd.read_csv(workdir / "results/superposition_lm/lr_choice.tsv", sep="\t")
    assert list(choice["width"]) == [16, 24, 32, 48]
    cube = xr.open_dataset(workdir / "results/superposition_lm/cube.nc")
    assert "lr" not in cube.dims and cube.sizes["lr_sweep"] == 3
    assert dict(cube.sizes)["seed"] == 2
    for row in choice.itertuples():  # both seeds of a width trained at the width's choice
        np.testing.assert_array_equal(cube["lr"].sel(width=row.width).values, [row.lr, row.lr])
        best = cube["sweep_final_val_loss"].sel(width=row.width)
        assert float(best.sel(lr_sweep=row.lr)) == float(best.min())
        # seed 0's point is the sweep's best run itself (no rerun)
        assert float(cube["final_val_loss"].sel(width=row.width, seed=0)) == row.final_val_loss
    logs = (workdir / "logs/superposition_lm/train").glob("d*.log")
    assert any("the best of width" in path.read_text() for path in logs)


@pytest.mark.parametrize("changes, expected", [
    ({"lr_sweep_scope": "size"}, "lr_sweep_scope: size sweeps each width's LR, but lr_sweep is empty"),
    ({"lr_sweep": [0.003, 0.01, 0.03], "lr_sweep_tokens_per_parameter": 20},
     "lr_sweep_tokens_per_parameter: 20 sets the horizon of a per-size sweep"),
])
def test_a_per_size_sweep_setting_without_its_partner_is_refused(changes, expected):
    with pytest.raises(ConfigError, match=f"studies.superposition_lm.{expected}"):
        validate_config(_with(**changes))
