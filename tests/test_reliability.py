"""Faults and determinism: corrupt checkpoints, diverging runs, a training job killed with
SIGKILL, an interrupted workflow, and bit-identical outputs of the same preset on CPU."""

import hashlib
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from scaling_atlas.studies import validate_config
from scaling_atlas.corpus.grammar import GrammarSpec, build_grammar, sample_documents
from scaling_atlas.models.transformer import TransformerConfig
from scaling_atlas.studies import get_study
from scaling_atlas.train import checkpoint
from scaling_atlas.train.device import configure_determinism
from scaling_atlas.train.lm import LMTrainSpec, train_lm

from conftest import load_config, merged, reproducible_env, snakemake, workflow_copy

CPU = torch.device("cpu")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- checkpoints -------------------------------------------------------------------------------
def test_a_corrupt_checkpoint_falls_back_to_the_previous_good_one(tmp_path):
    path = tmp_path / "run.pt"
    checkpoint.save({"step": torch.tensor(1)}, path)
    checkpoint.save({"step": torch.tensor(2)}, path)
    assert int(checkpoint.load(path)["step"]) == 2
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    warnings = []
    assert int(checkpoint.load(path, warn=warnings.append)["step"]) == 1
    assert "does not match its sha256" in warnings[0] and "previous good checkpoint" in warnings[1]
    checkpoint.previous_path(path).write_bytes(b"not a checkpoint")
    warnings.clear()
    assert checkpoint.load(path, warn=warnings.append) is None
    assert "no usable checkpoint" in warnings[-1]


def test_a_save_killed_between_keeping_and_writing_resumes_from_the_kept_one(tmp_path):
    path = tmp_path / "run.pt"
    checkpoint.save({"step": torch.tensor(1)}, path)
    checkpoint.save({"step": torch.tensor(2)}, path)
    path.unlink()  # the newest moved aside as .prev, the new one never written
    checkpoint._checksum_path(path).unlink()
    warnings = []
    assert int(checkpoint.load(path, warn=warnings.append)["step"]) == 1
    assert "previous good checkpoint" in warnings[-1]
    assert checkpoint.load(tmp_path / "fresh.pt", warn=warnings.append) is None  # nothing saved yet
    assert len(warnings) == 1


@pytest.fixture(scope="module")
def tokens():
    grammar = build_grammar(GrammarSpec(vocab_size=64, nonterminals=12, rules=8))
    return (sample_documents(grammar, 4000, np.random.default_rng(1)).tokens,
            sample_documents(grammar, 200, np.random.default_rng(2)).tokens)


MODEL = TransformerConfig(vocab_size=64, d_model=16, n_layer=1, n_head=2, seq_len=16)


def test_training_resumes_from_the_last_good_checkpoint_when_the_newest_is_corrupt(tmp_path, tokens):
    torch.use_deterministic_algorithms(True)
    spec = LMTrainSpec(tokens=40 * 8 * 16, batch_size=8, eval_points=5, eval_tokens=512,
                       checkpoint_every=10)
    whole, _ = train_lm(MODEL, spec, *tokens, CPU, tmp_path / "a.pt", log=lambda s: None)
    train_lm(MODEL, spec, *tokens, CPU, tmp_path / "b.pt", log=lambda s: None, stop_after=25)
    newest = tmp_path / "b.pt"  # holds step 20; the previous good one holds step 10
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated, as by a full disk
    messages = []
    resumed, _ = train_lm(MODEL, spec, *tokens, CPU, newest, log=messages.append)
    assert any("does not match its sha256" in m for m in messages)
    assert any("resumed at step 10" in m for m in messages)
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


# ---- divergence --------------------------------------------------------------------------------
def test_a_diverging_run_stops_is_marked_and_stays_marked(tmp_path, tokens):
    spec = LMTrainSpec(tokens=40 * 8 * 16, batch_size=8, lr=1e3, eval_points=10, eval_tokens=512,
                       checkpoint_every=10)
    messages = []
    _, result = train_lm(MODEL, spec, *tokens, CPU, tmp_path / "run.pt", log=messages.append)
    assert result["status"] == "diverged" and result["diverged_at_step"] < 40
    assert math.isnan(result["final_val_loss"])
    assert any("diverged (non-finite loss)" in m for m in messages)
    _, again = train_lm(MODEL, spec, *tokens, CPU, tmp_path / "run.pt", log=messages.append)
    assert again["status"] == "diverged" and again["diverged_at_step"] == result["diverged_at_step"]


def test_diverged_runs_are_in_the_cube_and_left_out_of_the_fits(ci_config, tmp_path):
    configure_determinism(CPU)
    study = get_study("superposition", validate_config(ci_config))
    wild = get_study("superposition", validate_config(merged(ci_config, {
        "studies": {"superposition": {"lr": 1e30}}})))  # AdamW steps of 1e30 overflow float32
    shards = [study.train_shard(runs, CPU, tmp_path / name, "sequential", lambda s: None)
              for name, runs in study.shards().items() if runs[0]["m"] != 8]
    shards += [wild.train_shard(runs, CPU, tmp_path / name, "sequential", lambda s: None)
               for name, runs in wild.shards().items() if runs[0]["m"] == 8]
    cube = study.assemble(shards)
    assert int(cube["diverged"].sum()) == int(cube.sizes["alpha"] * cube.sizes["gamma"] * cube.sizes["seed"])
    assert bool((cube["diverged"].sel(m=8) == 1).all()) and bool((cube["diverged"].sel(m=4) == 0).all())
    fits = study.fit_laws(cube)
    assert fits.attrs["excluded_diverged_runs"] == int(cube["diverged"].sum())
    per_seed = fits.sel(estimate="eval", form="loglog", density=1.0)
    assert bool((per_seed["n_points"] == 2).all()) and np.isfinite(per_seed["alpha_m"].values).all()
    # the rest of the study still completes
    assert study.claims(cube, fits)
    for name in study.figures:
        study.draw_figure(name, cube, fits)


# ---- a killed training job and an interrupted workflow -----------------------------------------
def test_a_killed_job_resumes_to_the_same_cube_and_keeps_finished_shards(ci_run, tmp_path):
    workdir = workflow_copy(tmp_path / "killed")
    target = ["--configfile", "config/presets/ci.yaml", "--", "results/superposition/cube.nc"]
    command = [sys.executable, "-m", "snakemake", *target]
    process = subprocess.Popen(command, cwd=workdir, env=reproducible_env(), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = workdir / "resources" / "ckpt" / "superposition"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("*/group-*.pt")):
        time.sleep(0.02)
    finished = {p: p.stat().st_mtime_ns for p in (workdir / "results/superposition/shards").glob("*.nc")}
    os.killpg(process.pid, signal.SIGKILL)  # the job and Snakemake, mid-shard, no clean-up
    process.wait()
    assert list(checkpoints.glob("*/group-*.pt")), "the kill came before any checkpoint"
    assert not (workdir / "results/superposition/cube.nc").exists()
    # the documented recovery: release the dead run's lock, rerun (the default profile sets
    # rerun-incomplete, so the interrupted job is redone and resumes from its checkpoint)
    assert snakemake(workdir, "--unlock", *target).returncode == 0
    rerun = snakemake(workdir, *target, env=reproducible_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    logs = "".join(p.read_text() for p in (workdir / "logs/superposition/train").glob("*.log"))
    assert "resumed" in logs
    for path, mtime in finished.items():  # shards finished before the kill were kept
        assert path.stat().st_mtime_ns == mtime, path.name
    # the same bytes as the uninterrupted run
    assert sha256(workdir / "results/superposition/cube.nc") == sha256(ci_run / "results/superposition/cube.nc")


def test_the_same_preset_twice_gives_bit_identical_outputs(ci_run, tmp_path):
    workdir = workflow_copy(tmp_path / "again")
    studies = ("matrix_sensing", "emergence", "compute_optimal")
    targets = [f"results/{s}/{name}" for s in studies for name in ("cube.nc", "fits.nc", "claims.csv")]
    config = validate_config(load_config("ci"))
    # figures: one study's (every figure goes through the same new_figure and savefig with the
    # source date; a figure job costs a Snakemake and matplotlib start-up)
    figures = [f"results/matrix_sensing/figures/{f}.{ext}"
               for f in get_study("matrix_sensing", config).figures for ext in ("png", "pdf")]
    result = snakemake(workdir, "--configfile", "config/presets/ci.yaml", "--", *targets, *figures,
                       env=reproducible_env())
    assert result.returncode == 0, result.stderr[-3000:]
    for path in targets + figures:
        assert sha256(workdir / path) == sha256(ci_run / path), path


# ---- housekeeping (#19 item 9) -------------------------------------------------------------------
def test_removing_a_checkpoint_takes_its_checksum_and_previous_version(tmp_path):
    path = tmp_path / "group-abc.pt"
    checkpoint.save({"step": torch.tensor(1)}, path)
    checkpoint.save({"step": torch.tensor(2)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "group-abc.prev.pt", "group-abc.prev.pt.sha256", "group-abc.pt", "group-abc.pt.sha256"]
    checkpoint.remove(path)
    assert list(tmp_path.iterdir()) == []
    folder = tmp_path / "shard"
    checkpoint.save({"x": torch.zeros(1000)}, folder / "run.pt")
    assert checkpoint.clear_folder(folder) > 4000 and not folder.exists()
    assert checkpoint.clear_folder(folder) == 0


def test_a_finished_toy_group_leaves_only_its_results_and_logs_what_it_does(tmp_path):
    from scaling_atlas.studies import get_study

    config = validate_config(load_config("ci"))
    study = get_study("superposition", config)
    runs = next(iter(study.shards().values()))[:2]
    runs = [type(r).from_params({**r.params, "steps": 30, "curve_points": 5, "last_steps": 10,
                                 "eval_samples": 1000}) for r in runs]
    messages = []
    study.train_shard(runs, CPU, tmp_path, "sequential", messages.append)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{r.run_id}.result.pt{s}" for r in runs for s in ("", ".sha256")), names
    assert not any("resumed" in m for m in messages)
    assert any("from step 0" in m for m in messages)
