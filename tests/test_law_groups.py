"""Parity with the tools people use: the asymmetric (lower-envelope) objective, fits that share
the irreducible loss across groups, the effective-compute and data multipliers, the crossover."""

import math

import numpy as np
import pandas as pd
import pytest

from scaling_atlas.laws import (
    LawFit,
    Objective,
    crossover_compute,
    effective_multiplier,
    fit_shared,
)

E, ALPHA, BETA = 1.8, 0.34, 0.37


def _law(n, d, A=400.0, B=1500.0, alpha=ALPHA, beta=BETA):
    return E + A / n**alpha + B / d**beta


def _grid():
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6))
    return n.ravel(), d.ravel()


def test_the_asymmetric_objective_fits_the_lower_envelope():
    rng = np.random.default_rng(3)
    n, d = _grid()
    truth = _law(n, d)
    # every observation at or above the law (e.g. runs with untuned settings)
    observed = truth * np.exp(np.abs(0.03 * rng.standard_normal(n.size)))
    df = pd.DataFrame({"N": n, "D": d, "loss": observed})
    plain = LawFit("chinchilla").fit(df, df["loss"])
    envelope = LawFit("chinchilla", Objective(overestimate_weight=100.0)).fit(df, df["loss"])
    over = envelope.predict(df) - observed
    assert np.mean(over > 1e-3) < 0.1          # it lies (nearly) under every point
    assert np.mean(plain.predict(df) - observed > 1e-3) > 0.3  # the symmetric fit runs through them
    err_plain = np.abs(plain.predict(df) / truth - 1).mean()
    err_envelope = np.abs(envelope.predict(df) / truth - 1).mean()
    assert err_envelope < 0.5 * err_plain
    assert envelope.attributes()["objective_overestimate_weight"] == 100.0
    with pytest.raises(ValueError, match="asymmetric MAE"):
        Objective("mae", overestimate_weight=2.0)


def _two_mixes(B_code=1000.0, beta_code=BETA, noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    n, d = _grid()
    rows = [pd.DataFrame({"N": n, "D": d, "mix": "web", "loss": _law(n, d)}),
            pd.DataFrame({"N": n, "D": d, "mix": "code",
                          "loss": _law(n, d, B=B_code, beta=beta_code)})]
    df = pd.concat(rows, ignore_index=True)
    df["loss"] *= np.exp(noise * rng.standard_normal(len(df)))
    return df


def test_a_shared_offset_fit_and_the_compute_and_data_multipliers():
    df = _two_mixes()
    fit = fit_shared(df, df["loss"], group="mix", shared=("e",))
    assert fit.natural_["E"] == pytest.approx(E, rel=0.02)
    assert "E[web]" not in fit.natural_ and "A[web]" in fit.natural_ and "A[code]" in fit.natural_
    assert fit.natural_["beta[web]"] == pytest.approx(BETA, abs=0.02)
    assert fit.identified_
    fit.bootstrap(60, seed=0, n_jobs=1)
    # only B differs: web needs (B_web/B_code)^(1/β) times the compute, and the data at fixed N
    truth = 1.5 ** (1 / BETA)
    compute = effective_multiplier(fit, "web", "code", C=1e21)
    assert compute["estimate"] == pytest.approx(truth, rel=0.1)
    assert compute["ci_low"] <= truth <= compute["ci_high"]
    data = effective_multiplier(fit, "web", "code", N=1e9, D=2e10)
    assert data["estimate"] == pytest.approx(truth, rel=0.1)
    assert effective_multiplier(fit, "code", "web", C=1e21)["estimate"] == pytest.approx(
        1 / compute["estimate"], rel=0.01)  # exact only when the fitted exponents agree
    # parallel frontiers never cross
    cross = crossover_compute(fit, "web", "code")
    assert math.isnan(cross["estimate"]) and "do not cross" in cross["reason"]
    with pytest.raises(ValueError, match="not parameters of 'chinchilla'"):
        fit_shared(df, df["loss"], group="mix", shared=("E",))


def test_frontiers_with_different_exponents_cross_where_their_losses_meet():
    # code: lower B but a flatter data exponent: better at small compute, worse at large
    df = _two_mixes(B_code=200.0, beta_code=0.30, noise=0.0)
    fit = fit_shared(df, df["loss"], group="mix", shared=("e", "a", "alpha"))
    cross = crossover_compute(fit, "web", "code")
    from scaling_atlas.laws.groups import _frontier_loss

    truth_web = dict(E=E, A=400.0, B=1500.0, alpha=ALPHA, beta=BETA)
    truth_code = dict(E=E, A=400.0, B=200.0, alpha=ALPHA, beta=0.30)
    expected = [c for c in np.geomspace(1e15, 1e30, 20001)
                if _frontier_loss(truth_web, c) < _frontier_loss(truth_code, c)][0]
    assert 1e16 < expected < 1e29  # an interior crossing
    assert cross["estimate"] == pytest.approx(expected, rel=0.05)


def test_grouped_names_follow_what_is_shared_not_what_happens_to_be_equal():
    from scaling_atlas.laws import GroupedForm

    form = GroupedForm("chinchilla", ["web", "code"], shared=("e", "alpha"))
    assert [p.name for p in form.params][:2] == ["e", "alpha"] and len(form.params) == 2 + 2 * 3
    theta = np.zeros((1, len(form.params)))  # every per-group parameter equal across groups
    names = set(form.natural(theta))
    assert {"E", "alpha", "A[web]", "A[code]", "beta[web]", "beta[code]"} <= names
    assert "E[web]" not in names and "A" not in names
    X = {"N": np.array([1e8, 1e9]), "D": np.array([1e10, 1e11]), "group": np.array([0.0, 1.0])}
    theta = np.arange(1, len(form.params) + 1, dtype=float)[None, :] * 0.1
    pred, jac = form.predict_and_jacobian(theta, X)
    step = 1e-6
    for p in range(theta.shape[1]):  # the Jacobian against central differences
        up, down = theta.copy(), theta.copy()
        up[0, p] += step
        down[0, p] -= step
        numeric = (form.predict(up, X) - form.predict(down, X)) / (2 * step)
        assert jac[0, :, p] == pytest.approx(numeric[0], rel=1e-5, abs=1e-9)
