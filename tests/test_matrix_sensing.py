"""Matrix sensing: gradients, exact convergence, the conserved imbalance, rebalancing, bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from scaling_atlas.config import ConfigError
from scaling_atlas.studies import validate_config
from scaling_atlas.models import matrix_sensing as ms
from scaling_atlas.studies import get_study
from scaling_atlas.train.matrix_sensing import train_batch

from conftest import merged


def problem(n=6, r=2, k=3, m=None, asymmetric=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    target = ms.ground_truth(n, r, gen)[None]
    sensing = None if m is None else ms.sensing_gram(ms.measurements(n, m, not asymmetric, gen))[None]
    X, G = ms.initial_factors(n, k, 0.5, asymmetric, gen)
    return target, sensing, X[None], None if G is None else G[None]


@pytest.mark.parametrize("asymmetric", [False, True])
@pytest.mark.parametrize("m", [None, 200])
def test_gradients_match_finite_differences(asymmetric, m):
    target, sensing, X, G = problem(m=m, asymmetric=asymmetric)

    def loss(X_, G_):
        return float(ms.loss(ms.product(X_, G_) - target, sensing)[0])

    grad_x, grad_g = ms.gradients(X, G, ms.product(X, G) - target, sensing)
    h = 1e-6
    for which, param, grad in (("X", X, grad_x), ("G", G, grad_g)):
        if param is None:
            continue
        for idx in [(0, 0, 0), (0, 3, 1), (0, 5, 2)]:
            up, down = param.clone(), param.clone()
            up[idx] += h
            down[idx] -= h
            args_up = (up, G) if which == "X" else (X, up)
            args_down = (down, G) if which == "X" else (X, down)
            numeric = (loss(*args_up) - loss(*args_down)) / (2 * h)
            assert float(grad[idx]) == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_gram_form_equals_the_measurement_sum():
    gen = torch.Generator().manual_seed(3)
    a = ms.measurements(5, 300, False, gen)
    error = torch.randn(1, 5, 5, generator=gen, dtype=torch.float64)
    residuals = a @ error.reshape(25)
    direct = (residuals[:, None] * a).mean(0).reshape(1, 5, 5)
    torch.testing.assert_close(ms.error_gradient(error, ms.sensing_gram(a)[None]), direct)
    assert float(ms.loss(error, ms.sensing_gram(a)[None])[0]) == pytest.approx(
        0.5 * float((residuals**2).mean()), rel=1e-12)


def test_population_loss_is_the_mean_of_the_gaussian_one():
    """E[⟨A, E⟩²] = ‖E‖²: with many measurements the sensing loss approaches ½‖E‖²."""
    target, sensing, X, G = problem(m=20000, asymmetric=True)
    error = ms.product(X, G) - target
    assert float(ms.loss(error, sensing)[0]) == pytest.approx(float(ms.loss(error, None)[0]), rel=0.05)


def _runs(study_cfg, **overrides):
    config = validate_config(merged({"studies": {"ms": {"kind": "matrix_sensing"}}},
                                    {"studies": {"ms": {**study_cfg, **overrides}}}))
    return get_study("ms", config)


def _train(tmp_path, **cfg):
    study = _runs({"operator": "population", "seeds": [0], "checkpoint_every": 0,
                   "log_points": 30} | cfg)
    results = [train_batch(runs, torch.device("cpu"), tmp_path / name, lambda _: None, 0)
               for name, runs in study.shards().items()]
    return study, study.assemble(results)


@pytest.mark.parametrize("operator", ["population", "gaussian"])
@pytest.mark.parametrize("param", ["sym", "asym"])
def test_exact_parameterisation_reaches_machine_precision(tmp_path, param, operator):
    study, cube = _train(tmp_path, params=[param], ks=[2], alphas=[0.1, 0.5], steps=1000,
                         operator=operator, measurements=1200)
    reached = cube["first_passage"].sel(decade=25)
    assert bool(np.isfinite(reached).all()) and float(reached.max()) < 1000
    # the shard stops early once every run is below 1e-30: later log points are NaN
    assert float(cube["err_fro2"].min("step").max()) < 1e-25


def test_imbalance_is_nearly_conserved_under_small_steps():
    target, _, F, G = problem(n=8, r=2, k=4, asymmetric=True)
    start = ms.imbalance(F, G)
    first_error = float(torch.linalg.norm(ms.product(F, G) - target))
    for _ in range(2000):
        gf, gg = ms.gradients(F, G, ms.product(F, G) - target, None)
        F, G = F - 0.005 * gf, G - 0.005 * gg
    drift = torch.linalg.norm(ms.imbalance(F, G) - start) / torch.linalg.norm(start)
    assert float(torch.linalg.norm(ms.product(F, G) - target)) < first_error / 10  # it learned
    assert float(drift) < 0.02


def test_rebalancing_keeps_the_product_and_balances_f():
    _, _, F, G = problem(n=8, k=4, asymmetric=True)
    F2, G2 = ms.rebalance(F, G)
    torch.testing.assert_close(ms.product(F2, G2), ms.product(F, G), rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(F2.transpose(1, 2) @ F2, torch.eye(4, dtype=torch.float64)[None],
                               rtol=1e-10, atol=1e-10)


def test_a_diverging_run_is_recorded_and_left_out_of_the_fits(tmp_path):
    study, cube = _train(tmp_path, params=["asym"], ks=[4], alphas=[0.5], step_sizes=[0.2, 3.0],
                         steps=400)
    assert float(cube["diverged"].sel(eta=3.0).max()) == 1.0
    assert float(cube["diverged"].sel(eta=0.2).max()) == 0.0
    fits = study.fit_laws(cube)
    assert bool(fits["rate"].sel(eta=3.0).isnull().all())
    assert bool(fits["rate"].sel(eta=0.2).notnull().all())


def test_over_parameterised_asymmetric_rate_grows_like_alpha_squared(tmp_path):
    study, cube = _train(tmp_path, params=["asym"], ks=[4], alphas=[0.2, 0.5], steps=6000,
                         seeds=[0, 1])
    fits = study.fit_laws(cube)
    rate = fits["rate"].sel(param="asym", k=4).mean(["seed", "eta"])
    ratio = float(rate.sel(alpha=0.5) / rate.sel(alpha=0.2))
    assert 2.5 < ratio < 12  # (0.5/0.2)² = 6.25, within the reference's ≈ 2×


@pytest.mark.parametrize("bad, key", [
    ({"r": 20}, "r: rank r = 20 must be below n = 20"),
    ({"ks": [1, 4]}, "ks: k = [1] below the rank r = 2"),
    ({"alphas": [0.0]}, "alphas[0]"),
    ({"step_sizes": [-0.1]}, "step_sizes[0]"),
    ({"operator": "gaussian", "measurements": 50}, "measurements: m = 50 is too few"),
])
def test_bad_matrix_sensing_configs_name_the_key(bad, key):
    with pytest.raises(ConfigError) as error:
        _runs({}, **bad)
    assert key in str(error.value)


def test_resumes_from_a_checkpoint(tmp_path):
    study = _runs({"operator": "population", "params": ["sym"], "ks": [3], "alphas": [0.3],
                   "seeds": [0], "steps": 800, "log_points": 20})
    [(name, runs)] = study.shards().items()
    full = train_batch(runs, torch.device("cpu"), tmp_path / "a", lambda _: None, 0)
    train_batch(runs, torch.device("cpu"), tmp_path / "b", lambda _: None, 300)  # leaves a checkpoint
    messages = []
    resumed = train_batch(runs, torch.device("cpu"), tmp_path / "b", messages.append, 300)
    assert any(m.startswith("resumed at step") for m in messages)
    np.testing.assert_array_equal(full["err_fro2"].values, resumed["err_fro2"].values)
    assert not math.isnan(float(full["err_fro2"].values[0, -1]))
    assert Path(tmp_path / "b" / "state.pt").exists()
