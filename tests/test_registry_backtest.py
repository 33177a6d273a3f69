"""The scaling-data registry (one loader, one schema, QC flags, `scaling-atlas datasets`) and the
backtest of fitting procedures (splits, scores, ranking on data drawn from a known law)."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.datasets import upstream_files
from scaling_atlas.datasets.registry import (
    QC_FLAGS,
    REGISTRY,
    RegistryError,
    best_per_point,
    get,
    load,
    qc,
    qc_summary,
    verify,
)
from scaling_atlas.laws.backtest import (
    PROCEDURES,
    backtest_family,
    leaderboard,
    split_masks,
)

from conftest import REPO

MIRROR = REPO.parent / "shared" / "data" / "published"
needs_mirror = pytest.mark.skipif(not MIRROR.exists(), reason="needs ../shared/data/published")


# ---- registry on the published data ------------------------------------------------------------
@needs_mirror
def test_every_dataset_loads_with_the_schema_and_passes_its_checksum(tmp_path):
    table = verify(MIRROR)
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"]
    assert set(table["dataset"]) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        df = load(name, MIRROR, cache_dir=tmp_path)
        assert len(df) > 0, name
        for column in ("N", "D", "C", "loss", "group", "run", "step", "lr", *QC_FLAGS):
            assert column in df, (name, column)
        for column in spec.missing:
            assert df[column].isna().all(), (name, column)
        assert spec.usable == df[["N", "D", "loss"]].notna().any().all(), name
        assert spec.provenance(), name  # every file has an upstream repository and commit
        assert all(len(r["commit"]) == 40 for r in spec.provenance()), name


@needs_mirror
def test_row_counts_and_flags_match_what_the_sources_document(tmp_path):
    """Numbers from shared/data/published/README.md and the sources' own selections."""
    def summary(name):
        return qc_summary(load(name, MIRROR, cache_dir=tmp_path))

    assert len(load("epoch_chinchilla", MIRROR, cache_dir=tmp_path)) == 245
    assert summary("epoch_chinchilla")["qc_source_outlier"] == 5  # Epoch drops 5 highest losses
    assert len(load("misfitting_checkpoints", MIRROR, cache_dir=tmp_path)) == 4852
    final = load("misfitting_final", MIRROR, cache_dir=tmp_path)
    assert len(final) == 261 and final["N"].nunique() == 11
    # the authors' selection: the best learning rate per (N, D)
    assert len(best_per_point(final[~final["qc_duplicate"]])) == final.groupby(["N", "D"]).ngroups
    old = load("misfitting_old", MIRROR, cache_dir=tmp_path)
    assert len(old) == 222  # the rows with a C4 loss
    # Open Athena's transform: rows not flagged as outliers ("clean") per source
    clean = {"ml_scalefit": 89, "epochai_chinchilla": 85, "misfitting": 106,
             "llama_3": 115 + 116, "marin_202603": 80 + 79 + 80}
    for source, count in clean.items():
        df = load(f"openathena_{source}", MIRROR, cache_dir=tmp_path)
        assert int((~df["qc_source_outlier"]).sum()) == count, source
    marin = load("marin_ladder", MIRROR, cache_dir=tmp_path)
    assert len(marin) == 92 + 85 + 96 and int(marin["qc_source_outlier"].sum()) == 15
    llama = load("llama3_isoflops", MIRROR, cache_dir=tmp_path)
    assert len(llama) == 133 and llama["C"].nunique() == 10
    np.testing.assert_allclose(llama["N"] * llama["D"] * 6, llama["C"], rtol=1e-12)


@needs_mirror
def test_download_path_verifies_each_file_at_its_pinned_commit(tmp_path):
    root = tmp_path / "github"
    for file in get("llama3_isoflops").files:
        up = upstream_files(file)[0]
        target = root / up.repository / up.commit / up.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MIRROR / file, target)
    messages = []
    df = load("llama3_isoflops", None, source="download", cache_dir=tmp_path / "cache",
              url_base=f"file://{root}", log=messages.append)
    assert len(df) == 133
    assert "downloaded eric-czech/llama3_isoflop_extraction@1bc1755" in messages[0]


def test_unknown_dataset_and_a_file_without_its_columns_are_named(tmp_path):
    with pytest.raises(RegistryError, match="unknown dataset 'chinchila'"):
        get("chinchila")
    bad = tmp_path / "llama3_isoflop_points.csv"
    bad.write_text("compute_budget,tokens,validation_loss\n6e18,1e9,0.9\n")
    with pytest.raises(RegistryError, match=r"llama3_isoflop_points.csv: missing column\(s\) "
                                             r"\['training_tokens'\]"):
        get("llama3_isoflops").reader({"llama3_isoflop_points.csv": bad})


def test_spreadsheet_reader_keeps_run_rows_and_their_model_and_length(tmp_path):
    """(Mis)Fitting's older sweep: configuration rows, per-length sub-headers, then run rows."""
    path = tmp_path / "li2025_misfitting_data.csv"
    path.write_text(
        "Params,total steps,lr,C4 Eval Loss,D,N,vocab\n"
        "12M,,,,,40719168,32.0K\n"        # configuration row: no loss
        ",200,,,,40719168,\n"              # sub-header: the run length
        ",,1E-03,5.186,209715200,40719168,\n"
        ",,2E-03,4.988,209715200,40719168,\n"
        "25M,,,,,70000000,32.0K\n"
        ",400,,,,70000000,\n"
        ",,1E-03,4.500,419430400,70000000,\n")
    df = get("misfitting_old").reader({"li2025_misfitting_data.csv": path})
    assert len(df) == 3
    assert list(df["lr"]) == [1e-3, 2e-3, 1e-3]
    assert df["run"].iloc[0].startswith("12M steps=200") and df["run"].iloc[2].startswith("25M steps=400")
    np.testing.assert_allclose(df["C"], 6 * df["N"] * df["D"])
    assert len(best_per_point(df)) == 2 and best_per_point(df)["loss"].iloc[0] == 4.988


def test_openathena_reader_matches_outlier_flags_by_value_even_for_twins(tmp_path):
    header = "source,provenance,dataset,model,condition,experiment,tokens,params,budget,loss\n"
    rows = ["s,p,d,m,,e1,1e9,1e8,6e17,3.0", "s,p,d,m,,e1,1e9,1e8,6e17,3.0",  # exact twins
            "s,p,d,m,,e1,2e9,5e7,6e17,3.1"]
    extract = tmp_path / "openathena_isoflops_extract_ml_scalefit.csv"
    extract.write_text(header + "\n".join(rows) + "\n")
    flags = tmp_path / "openathena_isoflops_transform.csv"
    flags.write_text("source,dataset,model,condition,experiment,tokens,params,budget,loss,outlier,reason\n"
                     "s,d,m,,e1,2e9,5e7,6e17,3.1,False,\n"       # reordered
                     "s,d,m,,e1,1e9,1e8,6e17,3.0,False,\n"
                     "s,d,m,,e1,1e9,1e8,6e17,3.0,True,exact_duplicate\n")
    df = get("openathena_ml_scalefit").reader({extract.name: extract, flags.name: flags})
    assert list(df["source_reason"]) == ["", "Open Athena: exact_duplicate", ""]
    flags.write_text(flags.read_text().replace("2e9,5e7", "3e9,5e7"))
    with pytest.raises(RegistryError, match="1 row\\(s\\) have no match in openathena_isoflops_transform.csv"):
        get("openathena_ml_scalefit").reader({extract.name: extract, flags.name: flags})


# ---- QC flags on constructed data ---------------------------------------------------------------
def _table(rows):
    df = pd.DataFrame(rows, columns=["group", "N", "D", "C", "loss"])
    for column, value in (("run", ""), ("step", np.nan), ("lr", np.nan), ("source_reason", "")):
        df[column] = value
    df["run"] = [f"r{i}" for i in range(len(df))]
    return df


def test_qc_flags_each_problem_on_constructed_budgets():
    log_n = np.linspace(np.log(1e7), np.log(1e9), 7)
    centre = log_n.mean()
    rows = []
    # budget 1e18: a clean parabola centred in the sampled sizes
    rows += [("g", np.exp(x), 1e18 / (6 * np.exp(x)), 1e18, 3 + 0.1 * (x - centre) ** 2) for x in log_n]
    # budget 1e19: opens downward
    rows += [("g", np.exp(x), 1e19 / (6 * np.exp(x)), 1e19, 3 - 0.1 * (x - centre) ** 2) for x in log_n]
    # budget 1e20: two sizes only
    rows += [("g", n, 1e20 / (6 * n), 1e20, 2.5) for n in (1e8, 1e8, 3e8)]
    # budget 1e21: the vertex at the smallest size sampled → points far from it are off-centre
    rows += [("g", np.exp(x), 1e21 / (6 * np.exp(x)), 1e21, 2 + 0.1 * (x - log_n[1]) ** 2) for x in log_n]
    # an exact duplicate and a negative loss
    rows += [rows[0], ("g", 1e8, 1e9, 6e17, -1.0)]
    table = _table(rows)
    table.loc[len(table) - 2, "run"] = table.loc[0, "run"]  # the same run's row, twice
    df = qc(table, isoflop=True)
    by_budget = df.groupby("C")
    assert not by_budget.get_group(1e18)[list(QC_FLAGS)].iloc[:7].any().any()
    assert by_budget.get_group(1e19)["qc_negative_curvature"].all()
    assert by_budget.get_group(1e20)["qc_budget_too_few"].all()
    far = by_budget.get_group(1e21)["qc_off_centre"].to_numpy()
    assert far[-1] and not far[1]  # far from the vertex flagged, the vertex itself not
    assert df["qc_duplicate"].sum() == 1 and df["qc_duplicate"].iloc[-2]
    assert df["qc_invalid"].sum() == 1 and df["qc_invalid"].iloc[-1]


def test_weak_curvature_when_the_noise_hides_the_parabola():
    rng = np.random.default_rng(0)
    log_n = np.linspace(np.log(1e7), np.log(1e9), 8)
    loss = 3 + 1e-4 * (log_n - log_n.mean()) ** 2 + 0.05 * rng.standard_normal(8)
    df = qc(_table([("g", np.exp(x), 1.0, 1e18, v) for x, v in zip(log_n, loss)]), isoflop=True)
    assert df["qc_weak_curvature"].all() or df["qc_negative_curvature"].all()


# ---- splits and ranking -------------------------------------------------------------------------
def _chinchilla_points(seed=0, noise=0.002, alpha=0.34, beta=0.28):
    rng = np.random.default_rng(seed)
    budgets = np.logspace(17, 20, 7)
    rows = []
    for c in budgets:
        n_opt = 0.1 * np.sqrt(c)
        for n in n_opt * np.logspace(-0.6, 0.6, 7):
            d = c / (6 * n)
            loss = (1.7 + 400 / n**alpha + 410 / d**beta) * np.exp(noise * rng.standard_normal())
            rows.append({"N": n, "D": d, "C": c, "loss": loss})
    return pd.DataFrame(rows)


def test_splits_hold_out_whole_sizes_whole_budgets_and_the_upper_log_compute():
    points = _chinchilla_points()
    masks = split_masks(points)
    largest_n = points.loc[~masks["largest_N"], "N"]
    assert largest_n.min() > points.loc[masks["largest_N"], "N"].max()
    assert (~masks["largest_N"]).sum() >= 0.1 * len(points)
    held_c = set(points.loc[~masks["largest_C"], "C"])
    assert held_c == {points["C"].max()}  # 7 of 49 points: one whole budget is ≥ 10 %
    assert not (set(points.loc[masks["largest_C"], "C"]) & held_c)
    log_c = np.log(points["C"])
    assert (log_c[masks["compute_cut"]] <= (log_c.min() + log_c.max()) / 2).all()
    assert masks["all"].all()


def test_the_procedure_of_the_constructed_law_ranks_first():
    """Data drawn from a Chinchilla law with α ≠ β: the free Chinchilla fit extrapolates best;
    the tied form (α = β) and Kaplan's form cannot represent it."""
    points = _chinchilla_points()
    procedures = ["chinchilla", "chinchilla_tied", "kaplan", "approach2_parabola"]
    rows = backtest_family(points, isoflop=True, procedures=procedures,
                           splits=["largest_C", "compute_cut", "all"])
    scores = pd.DataFrame(rows).assign(family="constructed")
    assert (scores["status"] == "ok").all(), scores[["split", "procedure", "status", "reason"]]
    board = leaderboard(scores)
    assert board.iloc[0]["procedure"] == "chinchilla"
    assert board.iloc[0]["median_error"] < 0.005
    # Approach 2 predicts no loss: it is ranked on N* only, after the loss-predicting ones
    a2_row = board[board["procedure"] == "approach2_parabola"].iloc[0]
    assert np.isnan(a2_row["mean_rank"]) and a2_row["cells_nstar"] == 2
    assert board.iloc[-1]["procedure"] == "approach2_parabola"
    a2 = scores[(scores["procedure"] == "approach2_parabola") & (scores["split"] == "compute_cut")]
    assert a2["nstar_log_error"].iloc[0] < 0.3
    # the allocation of the fit on all points matches the law's own (α = 0.34, β = 0.28)
    from scaling_atlas.laws import optimal_allocation

    truth = optimal_allocation(400, 410, 0.34, 0.28, 5.88e23)[2]
    fitted = scores[(scores["procedure"] == "chinchilla") & (scores["split"] == "all")]["D_over_N"]
    assert abs(np.log(fitted.iloc[0] / truth)) < 0.2


def test_claim_intervals_cover_the_constructed_law_and_widen_with_noise():
    """procedure_interval: the bootstrap interval of D/N (points resampled) and of Approach 2's
    a (budgets resampled) holds the law's own value, holds the estimate, and widens with noise."""
    from scaling_atlas.laws import optimal_allocation
    from scaling_atlas.laws.backtest import procedure_interval

    truth_ratio = optimal_allocation(400, 410, 0.34, 0.28, 5.88e23)[2]
    truth_a = 0.28 / (0.34 + 0.28)
    widths = {}
    for noise in (0.002, 0.02):
        points = _chinchilla_points(seed=1, noise=noise)
        ratio = procedure_interval("chinchilla", points, "D_over_N", 100, seed=0)
        a = procedure_interval("approach2_parabola", points, "a", 200, seed=0)
        for found, truth in ((ratio, truth_ratio), (a, truth_a)):
            assert found["status"] == "ok", found
            assert found["low"] <= found["value"] <= found["high"]
            assert found["low"] <= truth <= found["high"], (noise, found, truth)
        assert a["budgets"] == 7 and ratio["at_bound"] == ""
        widths[noise] = (np.log(ratio["high"] / ratio["low"]), a["high"] - a["low"])
    assert widths[0.02][0] > 3 * widths[0.002][0] and widths[0.02][1] > 3 * widths[0.002][1]
    # no resamples: the estimate alone; a quantity the procedure cannot give is an error
    point = procedure_interval("chinchilla", _chinchilla_points(), "D_over_N", 0)
    assert np.isfinite(point["value"]) and np.isnan(point["low"]) and np.isnan(point["high"])
    with pytest.raises(ValueError, match="only the exponent"):
        procedure_interval("approach2_akima", _chinchilla_points(), "D_over_N", 10)


def test_failures_and_splits_that_cannot_run_are_counted_not_dropped():
    points = _chinchilla_points().query("N < 3e7")  # few sizes: some splits cannot run
    rows = backtest_family(points, isoflop=False, procedures=["chinchilla", "approach2_parabola"])
    scores = pd.DataFrame(rows)
    assert len(scores) == 4 * 2  # every (split, procedure) has a row
    assert set(scores["status"]) <= {"ok", "failed", "not identified", "not applicable",
                                     "split not run"}
    assert (scores.loc[scores["procedure"] == "approach2_parabola", "status"]
            .isin(["not applicable", "split not run"]).all())
    assert all(PROCEDURES[p].kind in ("parametric", "approach2") for p in PROCEDURES)


# ---- the command line ---------------------------------------------------------------------------
def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scaling_atlas.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@needs_mirror
def test_cli_datasets_list_verify_show(tmp_path):
    out = _cli("datasets", "list", "--mirror", str(MIRROR), "--cache", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    for name in REGISTRY:
        assert name in out.stdout
    out = _cli("datasets", "verify", "--mirror", str(MIRROR))
    assert out.returncode == 0 and f"{len(verify(MIRROR))} of {len(verify(MIRROR))} files" in out.stdout
    out = _cli("datasets", "show", "llama3_isoflops", "--mirror", str(MIRROR), "--cache", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert "eric-czech/llama3_isoflop_extraction@1bc1755" in out.stdout
    assert "qc_weak_curvature" in out.stdout and "133 rows" in out.stdout


@needs_mirror
def test_cli_verify_names_a_tampered_file_and_show_refuses_it(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    path = mirror / "llama3_isoflop_points.csv"
    path.write_bytes(path.read_bytes().replace(b"0.919843406813", b"0.919843406814"))
    out = _cli("datasets", "verify", "llama3_isoflops", "--mirror", str(mirror))
    assert out.returncode == 1
    assert "MISMATCH llama3_isoflops" in out.stdout
    out = _cli("datasets", "show", "llama3_isoflops", "--mirror", str(mirror), "--cache",
               str(tmp_path / "c"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "sha256" in out.stderr and "llama3_isoflop_points.csv" in out.stderr
    out = _cli("datasets", "show", "nope", "--mirror", str(mirror))
    assert out.returncode == 2 and "unknown dataset 'nope'" in out.stderr


def test_a_family_task_scores_coverage_on_the_splits_that_can_run():
    """The study's worker: scores for every (split, procedure) and the reference fit's interval
    coverage per held-out split (none for 'all', none for a split that cannot run)."""
    from scaling_atlas.studies.backtest import COVERAGE_LEVELS, _backtest_task

    points = _chinchilla_points()
    result = _backtest_task({"family": "constructed", "points": points, "isoflop": True,
                             "procedures": ["chinchilla"], "splits": ["largest_C", "all"],
                             "coverage_resamples": 8, "seed": 0})
    assert {r["split"] for r in result["rows"]} == {"largest_C", "all"}
    coverage = pd.DataFrame(result["coverage"])
    assert set(coverage["split"]) == {"largest_C"}
    assert sorted(coverage["nominal"]) == sorted(COVERAGE_LEVELS)
    assert coverage["coverage"].between(0, 1).all() and (coverage["n_test"] == 7).all()
