"""GPU jobs without a GPU here: one GPU per local training job (slots), a multi-GPU request
refused before any job, and the sbatch lines our SLURM profiles give a training job."""

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import REPO, snakemake, workflow_copy
from scaling_atlas.train.gpu_slots import (gpu_count, job_gpu, training_resource_problems,
                                           visible_gpus)


def test_the_visible_gpus_come_from_cuda_visible_devices_or_the_driver():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0, 2"}) == ["0", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []  # hidden on purpose: none
    assert visible_gpus({}, query=lambda: ["0", "1", "2", "3"]) == ["0", "1", "2", "3"]


def test_concurrent_training_jobs_never_share_a_gpu(tmp_path):
    """Four jobs at once on three (fake) GPUs: each holds its own; the fourth waits for one to
    be released. Each job is a process, as Snakemake runs them."""
    job = textwrap.dedent(f"""
        import json, os, sys, time
        sys.path.insert(0, {str(REPO / 'workflow')!r})
        from scaling_atlas.train.gpu_slots import gpu_slot
        from pathlib import Path
        with gpu_slot(["0", "1", "2"], Path({str(tmp_path / 'locks')!r}), log=lambda m: None,
                      poll_seconds=0.05) as gpu:
            start = time.time()
            assert os.environ["CUDA_VISIBLE_DEVICES"] == gpu
            time.sleep(1.0)
            print(json.dumps({{"gpu": gpu, "start": start, "end": time.time()}}))
        assert "CUDA_VISIBLE_DEVICES" not in os.environ
    """)
    env = {"PATH": "/usr/bin:/bin"}
    jobs = [subprocess.Popen([sys.executable, "-c", job], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(4)]
    held = [json.loads(p.communicate(timeout=60)[0]) for p in jobs]
    assert all(p.returncode == 0 for p in jobs)
    assert {h["gpu"] for h in held} == {"0", "1", "2"}
    for a in held:
        for b in held:
            if a is not b and a["gpu"] == b["gpu"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)


def test_a_job_claims_no_slot_on_cpu_under_slurm_or_with_one_gpu(tmp_path):
    for device, env in (("cpu", {"CUDA_VISIBLE_DEVICES": "0,1"}),
                        ("cuda", {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_ID": "7"}),
                        ("auto", {"CUDA_VISIBLE_DEVICES": "3"})):
        with job_gpu(device, log=lambda m: None, env=env, lock_dir=tmp_path) as gpu:
            assert gpu is None
    with job_gpu("cuda", log=lambda m: None, env={"CUDA_VISIBLE_DEVICES": "4,5"},
                 lock_dir=tmp_path) as gpu:
        assert gpu == "4"


@pytest.mark.parametrize("value,count", [(1, 1), (2, 2), ("gpu", 1), ("gpu:2", 2),
                                         ("gpu:a100:3", 3), ("2 * attempt", None), (None, None)])
def test_how_many_gpus_a_resource_asks_for(value, count):
    assert gpu_count(value) == count


def test_a_training_job_asking_for_several_gpus_is_refused_before_any_job(tmp_path):
    assert training_resource_problems({"gpu": 1, "gres": None}) == []
    workdir = workflow_copy(tmp_path / "workflow")
    (workdir / "toy.yaml").write_text(yaml.safe_dump(  # a small DAG: the check comes first
        {"only_studies": ["toy"], "studies": {"toy": {"kind": "example"}}}))
    for flag in ("train_shard:gpu=2", "train_shard:gres=gpu:a100:2"):
        result = snakemake(workdir, "-n", "--configfile", "toy.yaml", "--set-resources", flag,
                           timeout=120)
        assert result.returncode == 1, flag
        assert f"set-resources {flag}" in result.stderr and "one GPU" in result.stderr
        assert "No job was started" in result.stderr
    assert snakemake(workdir, "-n", "--configfile", "toy.yaml", "--set-resources",
                     "train_shard:gpu=1", timeout=120).returncode == 0


class _Resources(dict):
    def __getattr__(self, name):
        return self[name]


class _Job:
    def __init__(self, resources: dict, threads: int):
        self.resources, self.threads = _Resources(resources), threads


def training_sbatch(profile: str) -> str:
    """The sbatch line the SLURM executor builds for a training job under ``profile`` (its
    set-resources at the first attempt over the rule's own gpu: 1), as the plugin does."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    spec = yaml.safe_load((REPO / "profiles" / profile / "profile.yaml").read_text())
    resources = {"gpu": 1}
    for key, value in spec["set-resources"]["train_shard"].items():
        resources[key] = eval(str(value), {"attempt": 1}) if isinstance(value, str) and "attempt" in value else value
    job = _Job(resources, spec["set-threads"]["train_shard"])
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "",
              "partition": "", "workdir": "."}
    return get_submit_command(job, params) + set_gres_string(job)


def test_our_slurm_profiles_ask_for_one_gpu_as_their_sites_want_it():
    gpus = training_sbatch("slurm")
    assert " --gpus=1" in gpus and "--gres" not in gpus and "--ntasks-per-gpu" not in gpus
    assert "--cpus-per-gpu=8" in gpus
    gres = training_sbatch("slurm-gres")
    assert " --gres=gpu:1" in gres and "--gpus" not in gres and "--ntasks-per-gpu" not in gres
    cpu = training_sbatch("slurm-cpu")
    assert "--gpus" not in cpu and "--gres" not in cpu and " --ntasks=1" in cpu


def test_the_gres_profile_is_the_gpu_profile_but_for_how_it_asks():
    def settings(profile):
        spec = yaml.safe_load((REPO / "profiles" / profile / "profile.yaml").read_text())
        spec["set-resources"]["train_shard"].pop("gpu", None)
        spec["set-resources"]["train_shard"].pop("gres", None)
        return spec

    assert settings("slurm") == settings("slurm-gres")
