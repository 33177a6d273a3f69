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
import yaml

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


def on_slurm(workdir, env, *args, seconds=420, profile="slurm-cpu"):
    """Snakemake through the SLURM executor: the site profile plus a workflow profile (CPU's)."""
    command = ["timeout", "-k", "10", str(seconds), sys.executable, "-m", "snakemake",
               "--profile", str(SITE), "--workflow-profile", f"profiles/{profile}",
               "--configfile", "config/presets/ci.yaml", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)


def sacct(env, since: str, columns=("JobID", "State"), steps=False) -> pd.DataFrame:
    """SLURM's accounting of the jobs since ``since`` (one row per job, or per step), with the
    job's comment last (the plugin writes the rule and wildcards there)."""
    fields = ",".join([*columns, "Comment%200"])
    out = subprocess.run(["sacct", "-n", "-P", *([] if steps else ["-X"]), "-S", since, "-o", fields],
                         capture_output=True, text=True, env=env, check=True).stdout
    rows = [line.split("|", len(columns)) for line in out.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=[*(c.lower() for c in columns), "comment"])


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
    ("train_shard:gres=fpga:1", "Invalid generic resource"),  # a device the site does not have
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


def cluster_gpus(env) -> int:
    """How many (fake) GPUs the test node declares: hpc/local-cluster.sh gives it 2 by default."""
    out = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%G"], capture_output=True,
                         text=True, env=env).stdout.strip()
    return int(out.split(":")[-1]) if out.startswith("gpu:") else 0


def sized_to_the_test_node(profile: str) -> list[str]:
    """The profile's own train_shard resources as ``--set-resources`` (which replaces the
    profile's block), with only the sizes cut to the 2-CPU node: its GPU keys (gpu, gres, tasks)
    are the file's."""
    spec = yaml.safe_load((REPO / "profiles" / profile / "profile.yaml").read_text())
    resources = dict(spec["set-resources"]["train_shard"], cpus_per_gpu=1, mem_mb=2000, runtime=10)
    return [f"train_shard:{key}={value!r}" if isinstance(value, str) else f"train_shard:{key}={value}"
            for key, value in resources.items()]


#: two shards, so that two training jobs can hold a GPU at the same time
GPU_SHARDS = ("n64-m16-fe3a1d2e", "n64-m16-39880db9")


@pytest.mark.parametrize("profile", ["slurm", "slurm-gres"])
def test_gpu_profiles_give_each_training_job_one_gpu_of_its_own(cluster, ci_run, tmp_path, profile):
    """The GPU profiles through sbatch on a node with two fake GPUs (gres devices, no CUDA
    behind them): SLURM grants each training job one GPU, runs the script once, and gives jobs
    that run at the same time different devices; the training then finds no CUDA, runs on the
    CPU, and gets the local run's numbers."""
    if cluster_gpus(cluster) < 2:
        pytest.skip("the local cluster has no fake GPUs (ATLAS_SLURM_GPUS=0)")
    workdir = workflow_copy(tmp_path / profile)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))
    earlier = set(sacct(cluster, since, ("JobIDRaw",))["jobidraw"])  # the last test's, if as recent
    shards = [f"results/superposition/shards/{shard}.nc" for shard in GPU_SHARDS]
    result = on_slurm(workdir, cluster, "--set-resources", *sized_to_the_test_node(profile),
                      "--", *shards, profile=profile, seconds=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = sacct(cluster, since, ("JobIDRaw", "JobID", "State", "AllocTRES", "Start", "End"))
    jobs = jobs[~jobs["jobidraw"].isin(earlier)]
    training = jobs[jobs["comment"].str.contains("rule_train_shard")]
    assert len(training) == len(shards) and (training["state"] == "COMPLETED").all(), jobs.to_string()
    assert training["alloctres"].str.contains("gres/gpu=1").all(), training.to_string()
    # once per job: no step of a training job ran more than one task (tasks: 0, one GPU)
    steps = sacct(cluster, since, ("JobID", "NTasks"), steps=True)
    steps = steps[steps["jobid"].str.contains(r"\.\d+$") & (steps["ntasks"] != "")]
    ours = steps["jobid"].str.split(".").str[0].isin(set(training["jobid"]))
    assert ours.any() and (steps[ours]["ntasks"].astype(int) <= 1).all(), steps.to_string()
    # what each job was given, as the shard file records it, against SLURM's record
    granted = {}
    for shard, path in zip(GPU_SHARDS, shards):
        attrs = open_cube(workdir / path).attrs
        assert attrs["job_cuda_visible_devices"] in {"0", "1"}, attrs
        assert attrs["job_gpu_hours"] == 0.0  # no CUDA behind the fake devices: trained on CPU
        job = training[training["jobidraw"] == attrs["job_slurm_job_id"]]  # an array task's own id
        assert len(job) == 1, (attrs["job_slurm_job_id"], training.to_string())
        granted[shard] = (attrs["job_cuda_visible_devices"], pd.Timestamp(job["start"].iloc[0]),
                          pd.Timestamp(job["end"].iloc[0]))
        timed = ["train_seconds"]  # wall time differs run to run; every result is the local run's
        xr.testing.assert_equal(open_cube(workdir / path).drop_vars(timed),
                                open_cube(ci_run / path).drop_vars(timed))
    (gpu_a, start_a, end_a), (gpu_b, start_b, end_b) = granted.values()
    if start_a < end_b and start_b < end_a:  # they ran at the same time
        assert gpu_a != gpu_b, granted
