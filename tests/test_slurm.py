"""The workflow on a real SLURM scheduler: the one-node cluster of hpc/local-cluster.sh.

.ci/run sets ATLAS_SLURM_TESTS=1, so this module starts the cluster (root, apt) and stops it at
the end; elsewhere the tests run against a cluster that is already up, or skip. Every Snakemake
call runs under `timeout -k`: a stuck status poll ignores SIGTERM (shared/hpc/README.md).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from scaling_atlas.studies import validate_config
from scaling_atlas.cubes import open_cube
from scaling_atlas.studies import get_study

from conftest import REPO, load_config, workflow_copy

pytestmark = pytest.mark.slurm
CLUSTER = REPO / "hpc" / "local-cluster.sh"
SITE = REPO / "tests" / "slurm" / "site"  # what a user's own profile holds: account, partition


def cluster_env() -> dict:
    line = subprocess.run(["bash", str(CLUSTER), "env"], capture_output=True, text=True).stdout
    env = dict(os.environ, SLURM_CONF=line.strip().split("=", 1)[1])
    # jobs run Snakemake with this interpreter's environment: its bin first on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def cluster_answers() -> bool:
    return subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    started = False
    if not cluster_answers():
        if os.environ.get("ATLAS_SLURM_TESTS") != "1" or shutil.which("apt-get") is None:
            pytest.skip("no local SLURM cluster (.ci/run starts one with ATLAS_SLURM_TESTS=1; "
                        "needs root and apt): bash hpc/local-cluster.sh up")
        up = subprocess.run(["timeout", "-k", "10", "300", "bash", str(CLUSTER), "up"],
                            capture_output=True, text=True)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        started = True
    yield cluster_env()
    if started:
        subprocess.run(["timeout", "-k", "10", "120", "bash", str(CLUSTER), "down"], capture_output=True)


def on_slurm(workdir, env, *args, seconds=420):
    """Snakemake through the SLURM executor: the site profile plus the workflow's CPU profile."""
    command = ["timeout", "-k", "10", str(seconds), sys.executable, "-m", "snakemake",
               "--profile", str(SITE), "--workflow-profile", "profiles/slurm-cpu",
               "--configfile", "config/presets/ci.yaml", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)


def sacct(env, since: str) -> pd.DataFrame:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", since, "-o", "JobID,State,Comment%200"],
                         capture_output=True, text=True, env=env, check=True).stdout
    rows = [line.split("|", 2) for line in out.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["job", "state", "comment"])


def assert_same_results(a: xr.Dataset | xr.DataTree, b: xr.Dataset | xr.DataTree, name: str):
    if isinstance(a, xr.DataTree):
        assert sorted(a.children) == sorted(b.children), name
        for child in a.children:
            xr.testing.assert_equal(a[child].to_dataset(), b[child].to_dataset())
    else:
        xr.testing.assert_equal(a, b)


def first_shard(study: str) -> str:
    config = validate_config(load_config("ci"))
    return f"results/{study}/shards/{next(iter(get_study(study, config).shards()))}.nc"


#: the studies sent through SLURM, and compute_optimal's corpus: every kind of cluster job
#: (corpus, training, fit) in 17 jobs. Each SLURM job costs ≈ 20 s on the 2-core test machine
#: (two Snakemake start-ups), so every study would take the test past its budget; the
#: transformer studies' shards go through the same rule and profile, and their bytes are
#: compared run against run locally (test_reliability's bit-identical test).
SLURM_STUDIES = ("superposition", "matrix_sensing")
SLURM_CORPUS = "results/compute_optimal/corpus/meta.json"


def test_ci_preset_through_sbatch_equals_the_local_run(cluster, ci_run, tmp_path):
    workdir = workflow_copy(tmp_path / "slurm")
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))
    targets = [f"results/{study}/{name}" for study in SLURM_STUDIES
               for name in ("cube.nc", "fits.nc", "claims.csv")]
    result = on_slurm(workdir, cluster, "--", *targets, SLURM_CORPUS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = sacct(cluster, since)
    # the jobs really went through sbatch (the plugin writes rule and wildcards into the comment)
    for rule in ("train_shard", "prepare_corpus", "fit_laws"):
        assert jobs["comment"].str.contains(f"rule_{rule}").any(), (rule, jobs.to_string())
    shards = sum(len(list((workdir / "results" / study / "shards").glob("*.nc")))
                 for study in SLURM_STUDIES)
    assert jobs["comment"].str.contains("rule_train_shard").sum() == shards
    assert (jobs["state"] == "COMPLETED").all(), jobs.to_string()
    # the same numbers as the local run
    for study in SLURM_STUDIES:
        for name in ("cube.nc", "fits.nc"):
            assert_same_results(open_cube(workdir / "results" / study / name),
                                open_cube(ci_run / "results" / study / name), f"{study}/{name}")
        pd.testing.assert_frame_equal(pd.read_csv(workdir / f"results/{study}/claims.csv"),
                                      pd.read_csv(ci_run / f"results/{study}/claims.csv"))
    for name in ("train.npy", "val.npy"):
        corpus = Path(SLURM_CORPUS).parent / name
        assert (workdir / corpus).read_bytes() == (ci_run / corpus).read_bytes(), corpus
    # the training code accounts for itself (no GPU here: 0 GPU-hours; the job id is SLURM's)
    shard = open_cube(workdir / first_shard("matrix_sensing"))
    assert shard.attrs["job_slurm_job_id"] and shard.attrs["job_gpu_hours"] == 0.0


def test_out_of_memory_is_reported_and_retried_with_more(cluster, tmp_path):
    workdir = workflow_copy(tmp_path / "oom")
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))
    # 150 MB cannot hold PyTorch: the first attempt is killed; the profile's retries: 2 resubmit
    # with the next attempt's memory
    result = on_slurm(workdir, cluster, "--set-resources",
                      "train_shard:mem_mb=150 if attempt == 1 else 2000", "--",
                      first_shard("matrix_sensing"), seconds=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "OUT_OF_MEMORY" in output  # the scheduler's verdict, surfaced by Snakemake
    states = sacct(cluster, since)
    training = states[states["comment"].str.contains("rule_train_shard")]
    assert list(training["state"]) == ["OUT_OF_MEMORY", "COMPLETED"], states.to_string()


@pytest.mark.parametrize("resource, message", [
    ("train_shard:gpu=1", "Invalid generic resource"),
    ("train_shard:cpus_per_task=64", "More processors requested than permitted"),
    ("train_shard:mem_mb=10000000", "Requested node configuration is not available"),
])
def test_impossible_requests_fail_at_submission(cluster, tmp_path, resource, message):
    workdir = workflow_copy(tmp_path / "bad")
    start = time.time()
    result = on_slurm(workdir, cluster, "--set-resources", resource, "--",
                      first_shard("matrix_sensing"), seconds=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output[-3000:]
    assert time.time() - start < 90  # refused at submission, not an endless wait
