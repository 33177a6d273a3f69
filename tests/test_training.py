"""Training: batched ≡ sequential, determinism, exact resume, and the two regimes appear."""

import math

import pytest
import torch

from scaling_atlas.studies import validate_config
from scaling_atlas.models import superposition_toy as toy
from scaling_atlas.studies import get_study
from scaling_atlas.train.device import configure_determinism

from conftest import merged

CPU = torch.device("cpu")


def tiny_study(ci_config, **overrides):
    section = {"n": 32, "widths": [4], "alphas": [0.5, 1.5], "gammas": [-1.0, 0.3],
               "seeds": [0], "batch_size": 64, "steps": 120, "eval_samples": 2048,
               "last_steps": 20, "curve_points": 10, **overrides}
    widths = section.pop("widths")
    # validate with two widths (α_m needs them), then train only the widths under test
    config = validate_config(merged(ci_config, {"studies": {"superposition": {**section, "widths": [4, 8]}}}))
    config["studies"]["superposition"]["widths"] = widths
    return get_study("superposition", config)


def train(study, tmp_path, batching, checkpoint_every=0):
    configure_determinism(CPU)
    study.settings["checkpoint_every"] = checkpoint_every
    return study.train_shard(study.runs(), CPU, tmp_path, batching, lambda message: None)


def test_batched_trainer_equals_independent_runs(ci_config, tmp_path):
    study = tiny_study(ci_config)
    assert len(study.runs()) == 4
    batched = train(study, tmp_path / "batched", "batched")
    sequential = train(study, tmp_path / "sequential", "sequential")
    for name in ("loss_eval", "loss_last", "phi_half", "mean_sq_overlap"):
        assert batched[name].values == pytest.approx(sequential[name].values, rel=1e-4, abs=1e-6)
    assert batched["loss_curve"].values == pytest.approx(sequential["loss_curve"].values, rel=1e-4)


def test_training_is_deterministic_on_cpu(ci_config, tmp_path):
    study = tiny_study(ci_config, alphas=[1.0], gammas=[-1.0])
    first = train(study, tmp_path / "a", "sequential")
    second = train(study, tmp_path / "b", "sequential")
    assert (first["loss_curve"].values == second["loss_curve"].values).all()
    assert (first["loss_eval"].values == second["loss_eval"].values).all()


def test_seeds_differ(ci_config, tmp_path):
    study = tiny_study(ci_config, alphas=[1.0], gammas=[-1.0], seeds=[0, 1])
    result = train(study, tmp_path, "sequential")
    assert result["loss_eval"].values[0] != result["loss_eval"].values[1]


def test_killed_training_resumes_exactly(ci_config, tmp_path, monkeypatch):
    study = tiny_study(ci_config, alphas=[1.0], gammas=[-1.0])
    reference = train(study, tmp_path / "ref", "sequential")

    calls = {"n": 0}
    real_step = toy.optimizer_step

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 75:
            raise KeyboardInterrupt("simulated kill")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(toy, "optimizer_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(study, tmp_path / "killed", "sequential", checkpoint_every=50)
    assert list((tmp_path / "killed").glob("group-*.pt")), "no checkpoint was left behind"
    monkeypatch.setattr(toy, "optimizer_step", real_step)
    resumed = train(study, tmp_path / "killed", "sequential", checkpoint_every=50)
    assert (resumed["loss_curve"].values == reference["loss_curve"].values).all()
    assert resumed["loss_eval"].values == pytest.approx(reference["loss_eval"].values, rel=0, abs=0)
    # finished runs are not retrained
    again = train(study, tmp_path / "killed", "sequential")
    assert (again["loss_eval"].values == resumed["loss_eval"].values).all()


def test_strong_and_weak_regimes_emerge(ci_config, tmp_path):
    # (fig) φ½ ≈ 1 for strongly negative γ, ≈ m/n for positive γ
    study = tiny_study(ci_config, n=64, widths=[8], alphas=[1.0], gammas=[-1.0, 0.3],
                       batch_size=256, steps=1500, last_steps=100)
    result = train(study, tmp_path, "sequential").set_index(run="gamma")
    strong, weak = result.sel(run=-1.0), result.sel(run=0.3)
    assert float(strong["phi_half"]) > 0.9
    assert float(weak["phi_half"]) < 3 * 8 / 64
    assert float(strong["loss_eval"]) < float(weak["loss_eval"])
    assert float(weak["loss_eval"]) < 4 / 3  # better than representing nothing
    assert math.isfinite(float(strong["mean_sq_overlap"]))
