"""Releases: the release rule's contents, verify on a faithful copy, and every way it must
complain (tampered release, changed results, another config), plus the scorecard and the
provenance every file carries."""

import json
import shutil
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
import xarray as xr
import yaml

from scaling_atlas.studies import validate_config
from scaling_atlas.cubes import open_cube, write_netcdf
from scaling_atlas.release import verify

from conftest import REPO, load_config, merged, reproducible_env, snakemake

pytestmark = pytest.mark.workflow
STUDIES = ("superposition", "published", "matrix_sensing", "compute_optimal", "superposition_lm",
           "emergence", "resolution", "data_selection", "backtest")


@pytest.fixture(scope="module")
def release(ci_run):
    result = snakemake(ci_run, "release", "--configfile", "config/presets/ci.yaml",
                       env=reproducible_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return ci_run / "results" / "release"


def test_release_contents(release):
    manifest = json.loads((release / "MANIFEST.json").read_text())
    sums = (release / "SHA256SUMS").read_text().splitlines()
    names = {line.split("  ", 1)[1].removeprefix("files/") for line in sums}
    assert all(line.split("  ", 1)[1].startswith("files/") for line in sums)
    for study in STUDIES:
        assert {f"{study}/cube.nc", f"{study}/fits.nc", f"{study}/claims.csv"} <= names
        assert any(n.startswith(f"{study}/figures/") and n.endswith(".png") for n in names)
    assert "claims.csv" in names and set(manifest["files"]) == names
    assert all(entry["match"] == "exact" for entry in manifest["files"].values())  # CPU: bit for bit
    assert manifest["source_date_epoch"] == reproducible_env()["SOURCE_DATE_EPOCH"]
    config = yaml.safe_load((release / "config.yaml").read_text())
    # in the workflow's order: `make verify` re-runs with this config, and the scorecard's rows
    # follow the order of the studies
    assert config["preset"] == "ci" and list(config["studies"]) == list(STUDIES)
    assert "torch==2.13.0" in (release / "pip-freeze.txt").read_text()
    dot = (release / "rulegraph.dot").read_text()
    assert dot.startswith("digraph") and all(rule in dot for rule in ("train_shard", "fit_laws", "scorecard"))
    with zipfile.ZipFile(release / "report.zip") as archive:
        assert any(name.endswith("report.html") for name in archive.namelist())
    scorecard = pd.read_csv(release / "claims.csv")
    assert list(scorecard["study"].unique()) == list(STUDIES)


def test_verify_accepts_the_results_it_was_made_from(release, ci_run):
    config = yaml.safe_load((release / "config.yaml").read_text())
    assert verify(release, ci_run / "results", config) == []
    cli = subprocess.run([sys.executable, "-m", "scaling_atlas.release", "verify", str(release), "--results",
                          str(ci_run / "results")], capture_output=True, text=True)
    assert cli.returncode == 0 and "files match the release" in cli.stdout


def test_rerun_of_an_intact_release_matches(release, ci_run):
    """`make verify`'s command on a good release: the config goes to Snakemake as plain JSON,
    nothing is out of date (the same config as the run), and every file matches."""
    result = subprocess.run([sys.executable, "-m", "scaling_atlas.release", "rerun", str(release), "--cores", "2"],
                            cwd=ci_run, capture_output=True, text=True, timeout=900, env=reproducible_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "--configfile /" in result.stdout and ".json" in result.stdout
    assert "files match the release" in result.stdout


def test_verify_names_every_difference(release, ci_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ci_run / "results", results, ignore=shutil.ignore_patterns("release"))
    copy = tmp_path / "release"
    shutil.copytree(release, copy)
    # results that changed: a claims number, and a cube made from another config
    claims = pd.read_csv(results / "matrix_sensing/claims.csv")
    claims.loc[0, "ours"] += 0.5
    claims.to_csv(results / "matrix_sensing/claims.csv", index=False)
    cube = open_cube(results / "emergence/cube.nc")
    cube.attrs["config_hash"] = "0" * 16
    write_netcdf(cube, results / "emergence/cube.nc")
    (results / "superposition/figures/loss_vs_m.png").unlink()
    # a tampered release: an edited checksum line and an altered copy of a cube
    first, rest = (copy / "SHA256SUMS").read_text().split("\n", 1)  # the line of claims.csv
    (copy / "SHA256SUMS").write_text(("0" * 64) + first[64:] + "\n" + rest)
    with open(copy / "files/published/cube.nc", "ab") as handle:
        handle.write(b"\0")
    other = validate_config(merged(load_config("ci"), {"seed_salt": 1}))
    problems = [str(d) for d in verify(copy, results, other)]
    text = "\n".join(problems)
    assert "matrix_sensing/claims.csv: does not match the release bit for bit: column ours" in text
    assert "emergence/cube.nc: made from another config" in text
    assert "superposition/figures/loss_vs_m.png: missing from the results" in text
    assert "release/SHA256SUMS: files/claims.csv: disagrees with MANIFEST.json" in text
    assert "release/files/published/cube.nc: missing or altered" in text
    assert "config: this config" in text and "another config" in text


def test_the_plain_checksum_tool_passes_on_an_intact_release(release):
    """#19 item 5: `sha256sum -c SHA256SUMS` in the release folder finds every file."""
    result = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=release,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == len(json.loads((release / "MANIFEST.json").read_text())["files"])
    assert all(line.endswith(": OK") for line in lines)


def test_verify_finds_extra_files_and_lines_and_malformed_sums(release, ci_run, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(release, copy)
    (copy / "files/superposition/figures/extra.png").write_bytes(b"not from the release")
    with open(copy / "SHA256SUMS", "a") as handle:
        handle.write(("a" * 64) + "  files/planted.csv\n")
        handle.write("this is not a checksum line\n")
    text = "\n".join(str(d) for d in verify(copy, ci_run / "results"))
    assert "release/files/superposition/figures/extra.png: not in MANIFEST.json" in text
    assert "release/SHA256SUMS: files/planted.csv: listed but not in MANIFEST.json" in text
    n = len((release / "SHA256SUMS").read_text().splitlines())
    assert f"release/SHA256SUMS: SHA256SUMS line {n + 2} is not '<sha256>  <path>'" in text
    # a line taken out
    lines = (release / "SHA256SUMS").read_text().splitlines()
    (copy / "SHA256SUMS").write_text("\n".join(lines[1:]) + "\n")
    text = "\n".join(str(d) for d in verify(copy, ci_run / "results"))
    assert f"release/SHA256SUMS: {lines[0].split('  ', 1)[1]}: not listed" in text
    # and the command line says so with no traceback
    cli = subprocess.run([sys.executable, "-m", "scaling_atlas.release", "verify", str(copy),
                          "--results", str(ci_run / "results")], capture_output=True, text=True)
    assert cli.returncode == 1 and "not listed" in cli.stdout and "Traceback" not in cli.stderr


def test_verify_allows_another_machine_but_not_other_software(release, ci_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ci_run / "results", results, ignore=shutil.ignore_patterns("release"))
    cube = open_cube(results / "matrix_sensing/cube.nc")
    cube.attrs["host_platform"] = "Linux-elsewhere"
    write_netcdf(cube, results / "matrix_sensing/cube.nc")
    assert verify(release, results) == []  # the same numbers and provenance, made elsewhere
    cube.attrs["software_versions"] = "torch=0.0"
    write_netcdf(cube, results / "matrix_sensing/cube.nc")
    problems = [str(d) for d in verify(release, results)]
    assert problems == ["matrix_sensing/cube.nc: does not match the release bit for bit: "
                        "attribute software_versions differs"]


def test_scorecard_gathers_every_study(ci_run):
    table = pd.read_csv(ci_run / "results/claims.csv")
    assert list(table["study"].unique()) == list(STUDIES)
    assert list(table.columns[:2]) == ["study", "paper"]
    assert "Hu et al. 2024" in table.loc[table["study"] == "emergence", "paper"].iloc[0]
    for column in ("statement", "paper_value", "ours", "ours_detail", "tolerance", "verdict", "preset"):
        assert column in table.columns
    for study in STUDIES:
        own = pd.read_csv(ci_run / f"results/{study}/claims.csv")
        assert (table["study"] == study).sum() == len(own)
    text = (ci_run / "results/claims.md").read_text()
    assert text.startswith("# Claims scorecard") and "| superposition | Superposition yields" in text
    assert "| study | paper | pass | fail | inconclusive | not tested |" in text
    counts = pd.read_csv(ci_run / "results/claims_counts.csv").set_index("study")
    assert list(counts.index) == list(STUDIES)
    for study in STUDIES:
        verdicts = table.loc[table["study"] == study, "verdict"].value_counts()
        for verdict in ("pass", "fail", "inconclusive", "not tested"):
            assert counts.loc[study, verdict] == verdicts.get(verdict, 0)
        assert counts.loc[study, "claims"] == (table["study"] == study).sum()
    assert set(table["verdict"]) <= {"pass", "fail", "inconclusive", "not tested"}
    assert table["verdict_reason"].notna().all()


def test_every_file_carries_its_provenance(ci_run):
    for study in STUDIES:
        for name in ("cube.nc", "fits.nc"):
            data = open_cube(ci_run / "results" / study / name)
            attrs = data.attrs
            for key in ("project_version", "source_commit", "config_hash", "config_json",
                        "workflow_config_json", "software_versions", "device", "dtype", "seeds",
                        "snakemake_rule", "run_id", "created_utc", "Conventions"):
                assert key in attrs, (study, name, key)
            assert attrs["snakemake_rule"] == ("assemble_cube" if name == "cube.nc" else "fit_laws")
            assert attrs["created_utc"] == "2026-01-01T00:00:00+00:00"  # SOURCE_DATE_EPOCH
            assert json.loads(attrs["workflow_config_json"])["preset"] == "ci"
            if isinstance(data, xr.Dataset) and name == "cube.nc":
                assert "train_seconds" not in data and "tokens_per_second" not in data


def test_snakemake_archive_needs_conda(tmp_path):
    # documented in the README: `snakemake --archive` packs each conda env's packages, so it
    # needs conda; without it, it stops before writing anything
    if shutil.which("conda"):
        pytest.skip("conda is installed: the archive itself is exercised on release machines")
    archive = tmp_path / "atlas.tar.gz"
    result = subprocess.run([sys.executable, "-m", "snakemake", "--archive", str(archive)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "conda" in result.stderr.lower()
    assert not archive.exists()


# Snakemake's own --archive with its two conda steps (create the envs, pack their packages)
# replaced by "archive the env file": everything else is the real code path.
ARCHIVE_WITHOUT_CONDA = """
import sys
from snakemake.cli import main
from snakemake import dag, jobs
dag.DAG.create_conda_envs = lambda self, *args, **kwargs: None
jobs.Job.archive_conda_env = lambda self: self.conda_env_spec.file.get_path_or_uri(secret_free=True)
sys.argv = ["snakemake", "--archive", sys.argv[1]]
main()
"""


def test_snakemake_archive_packs_the_tracked_workflow(tmp_path):
    import tarfile

    archive = tmp_path / "atlas.tar.gz"
    result = subprocess.run([sys.executable, "-c", ARCHIVE_WITHOUT_CONDA, str(archive)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with tarfile.open(archive) as tar:
        packed = set(tar.getnames())
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert set(tracked) <= packed  # sources, config, envs, profiles, tests: what git tracks
    assert {"Snakefile", "envs/train.yaml", "config/presets/paper.yaml"} <= packed
    assert not any(name.startswith(("results/", "resources/", ".venv/")) and name != "results/README.md"
                   for name in packed)  # results and environments are not part of it
