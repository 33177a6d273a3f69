"""The `runs` study kind: a user's table of runs through fit → figures → claims, with the data
checked (file, column, row) before any job and the user's expectations judged like claims."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake, workflow_copy
from scaling_atlas.config import ConfigError
from scaling_atlas.studies import validate_config
from scaling_atlas.studies import get_study

TRUTH = {"A": 400.0, "B": 1500.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}


def _runs(sizes=np.geomspace(1e7, 1e10, 6), noise=0.002, seed=0, B=TRUTH["B"]):
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(sizes, np.geomspace(1e9, 1e12, 6))
    n, d = n.ravel(), d.ravel()
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + B / d ** TRUTH["beta"]
    return pd.DataFrame({"params": n, "tokens": d, "val_loss": loss * np.exp(noise * rng.standard_normal(n.size))})


def _config(data, **section):
    base = {"kind": "runs", "data": str(data), "columns": {"N": "params", "D": "tokens",
                                                           "target": "val_loss"},
            "bootstrap_resamples": 40, "n_jobs": 1}
    base.update(section)
    return {"studies": {"mine": base}}


def _study(config):
    return get_study("mine", validate_config(config))


def _run_stages(study, tmp_path):
    data = study.prepare_dataset("runs", tmp_path, lambda *_: None)
    cube = study.assemble([], {"runs": data})
    fits = study.fit_laws(cube)
    return cube, fits, {c.claim_id: c for c in study.claims(cube, fits)}


def test_expectations_are_judged_on_a_constructed_law(tmp_path):
    path = tmp_path / "runs.csv"
    _runs().to_csv(path, index=False)
    study = _study(_config(path, predict_at=[{"C": 1e21}], expectations=[
        {"id": "alpha_right", "quantity": "alpha", "between": [0.3, 0.38]},
        {"id": "alpha_wrong", "quantity": "alpha", "between": [0.5, 0.6]},
        {"id": "a_chinchilla", "quantity": "a", "between": [0.4, 0.6],
         "statement": "N_opt ∝ C^a, a ≈ 0.5"}]))
    cube, fits, claims = _run_stages(study, tmp_path)
    for name in ("N", "D", "C", "target", "source_row"):
        assert cube[name].attrs["long_name"] and cube[name].attrs["units"]
    assert cube["D"].attrs["units"] == "token" and cube["C"].attrs["units"] == "FLOP"
    assert "6·N·D" in cube["C"].attrs["long_name"]
    assert claims["alpha_right"].verdict == "pass"
    assert claims["alpha_wrong"].verdict == "fail"
    a_true = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])
    assert claims["a_chinchilla"].ours == pytest.approx(a_true, abs=0.03)
    assert claims["a_chinchilla"].statement == "N_opt ∝ C^a, a ≈ 0.5"
    pred = fits["predictions"].to_dataset()
    assert float(pred["low"][0]) < float(pred["prediction"][0]) < float(pred["high"][0])
    assert set(study.figures) == {"fit", "frontier"}
    for name in study.figures:
        study.draw_figure(name, cube, fits)


def test_tokens_can_come_from_compute(tmp_path):
    path = tmp_path / "runs.tsv"
    table = _runs()
    table.assign(flops=6 * table["params"] * table["tokens"]).drop(columns="tokens").to_csv(
        path, sep="\t", index=False)
    study = _study(_config(path, bootstrap_resamples=0,
                           columns={"N": "params", "C": "flops", "target": "val_loss"}))
    cube, fits, _ = _run_stages(study, tmp_path)
    assert cube["D"].values == pytest.approx(table["tokens"].to_numpy(), rel=1e-12)
    assert "C/(6N)" in cube["D"].attrs["long_name"] and "'flops'" in cube["C"].attrs["long_name"]


def test_a_fit_the_data_cannot_determine_leaves_the_expectations_not_tested(tmp_path):
    path = tmp_path / "two_sizes.parquet"
    _runs(sizes=[1e8, 1e9]).to_parquet(path, index=False)
    study = _study(_config(path, bootstrap_resamples=0, expectations=[
        {"id": "alpha", "quantity": "alpha", "between": [0.3, 0.38]}]))
    _, _, claims = _run_stages(study, tmp_path)
    assert claims["alpha"].verdict == "not tested"
    assert "the fit is identified: FAILS" in claims["alpha"].verdict_reason


def test_groups_share_the_offset_and_the_multiplier_is_a_quantity(tmp_path):
    web, code = _runs(), _runs(B=1000.0, seed=1)
    table = pd.concat([web.assign(mix="web"), code.assign(mix="code")])
    path = tmp_path / "mixes.jsonl"
    table.to_json(path, orient="records", lines=True)
    section = _config(path, reference_group="web", budgets=[1e21], expectations=[
        {"id": "code_worth_more", "quantity": "multiplier[code]@1e21", "between": [2.0, 4.0]}])
    section["studies"]["mine"]["columns"]["group"] = "mix"
    study = _study(section)
    assert "frontier" not in study.figures
    _, fits, claims = _run_stages(study, tmp_path)
    assert float(fits["law"].to_dataset()["estimate"].sel(parameter="E")) == pytest.approx(1.8, rel=0.03)
    assert claims["code_worth_more"].ours == pytest.approx(1.5 ** (1 / TRUTH["beta"]), rel=0.1)
    assert claims["code_worth_more"].verdict in ("pass", "inconclusive")


def test_a_folder_of_runs_keeps_each_runs_last_step(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    for i, row in _runs().iterrows():
        steps = pd.DataFrame({"step": [100, 200, 300], "params": row["params"],
                              "tokens": row["tokens"] * np.array([0.1, 0.5, 1.0]),
                              "val_loss": [9.0, 8.0, row["val_loss"]]})
        steps.to_csv(folder / f"run{i:02d}.csv", index=False)
    study = _study(_config(folder, bootstrap_resamples=0, columns={
        "N": "params", "D": "tokens", "target": "val_loss", "step": "step"}))
    cube, fits, _ = _run_stages(study, tmp_path)
    assert cube.sizes["row"] == 36 and float(cube["target"].max()) < 8.0
    assert str(cube["source_row"].values[0]) == "run00.csv:4"
    assert float(fits["law"].to_dataset()["estimate"].sel(parameter="alpha")) == pytest.approx(
        TRUTH["alpha"], abs=0.02)


def _problems(config):
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


def test_bad_data_is_refused_before_any_job_naming_key_file_row_and_column(tmp_path):
    assert "studies.mine.data: " in _problems(_config(tmp_path / "absent.csv"))
    path = tmp_path / "runs.csv"
    table = _runs().astype({"val_loss": object})
    table.loc[4, "val_loss"] = "diverged"
    table.to_csv(path, index=False)
    text = _problems(_config(path))
    assert f"studies.mine.data: {path}" in text and "column 'val_loss'" in text and "row(s) 6" in text
    _runs().to_csv(path, index=False)
    text = _problems(_config(path, columns={"N": "size", "D": "tokens", "target": "val_loss"}))
    assert "studies.mine.columns: N: no column 'size'" in text and "'params'" in text
    text = _problems(_config(path, expectations=[{"id": "x", "quantity": "gamma", "between": [0, 1]}]))
    assert "studies.mine.expectations[0].quantity: 'gamma' is not a quantity" in text
    text = _problems(_config(path, law="power_law", columns={"x": "params", "target": "val_loss"}))
    assert "studies.mine.units.x: give the unit" in text
    text = _problems({**_config(path), "only_studies": ["theirs"]})
    assert "only_studies: 'theirs' not under studies" in text


@pytest.mark.workflow
def test_the_example_config_runs_only_its_study(tmp_path):
    """config/examples/runs.yaml through Snakemake: only that study's jobs, its claims."""
    workdir = workflow_copy(tmp_path / "flow")
    example = yaml.safe_load((REPO / "config" / "examples" / "runs.yaml").read_text())
    small = copy.deepcopy(example)
    small["studies"]["my_runs"]["bootstrap_resamples"] = 30
    (workdir / "small.yaml").write_text(yaml.safe_dump(small))
    result = snakemake(workdir, "--cores", "2", "--configfile", "small.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (workdir / "results").iterdir() if p.is_dir()) == ["my_runs"]
    claims = pd.read_csv(workdir / "results" / "my_runs" / "claims.csv")
    assert list(claims["claim_id"]) == ["chinchilla_a", "offset_plausible"]
    assert set(claims["verdict"]) <= {"pass", "fail", "inconclusive", "not tested"}
    assert (workdir / "results" / "my_runs" / "figures" / "frontier.png").exists()
