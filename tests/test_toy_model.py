"""Known-answer tests of the toy model: data, loss units, gradients, optimiser, metrics."""

import math

import pytest
import torch

from scaling_atlas.models import superposition_toy as toy


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- frequencies (reference §1 sanity values at n = 1000) -------------------------------------
@pytest.mark.parametrize(
    "alpha, p_first, p_last",
    [(0.0, 1e-3, 1e-3), (1.0, 0.134, None), (2.0, 0.608, 6e-7)],  # (code) sanity values
)
def test_power_profile_sanity_values(alpha, p_first, p_last):
    p = toy.feature_probabilities(1000, "power", alpha)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.all(p[:-1] >= p[1:])
    assert float(p[0]) == pytest.approx(p_first, rel=5e-3)
    if p_last is not None:
        assert float(p[-1]) == pytest.approx(p_last, rel=0.05)


def test_density_mixing_reaches_the_papers_levels():
    # (code) exp-15: s = 1 gives p_1 = 1, p_i = 1/i and E = 1 + 6.485 = 7.485
    p = toy.feature_probabilities(1000, "power", 1.0, density=7.4848)
    assert float(p.sum()) == pytest.approx(7.4848, rel=1e-6)
    assert float(p[0]) == pytest.approx(1.0, abs=1e-4)
    assert float(p[9]) == pytest.approx(0.1, rel=1e-3)
    with pytest.raises(ValueError, match="density"):
        toy.feature_probabilities(1000, "power", 1.0, density=8.0)


def test_other_profiles_are_normalised_and_ranked():
    for dist in ("exponential", "linear"):
        p = toy.feature_probabilities(500, dist)
        assert float(p.sum()) == pytest.approx(1.0)
        assert torch.all(p[:-1] >= p[1:])
    lin = toy.feature_probabilities(4, "linear")
    assert torch.allclose(lin, torch.tensor([4, 3, 2, 1], dtype=torch.float64) / 10)


# ---- sparse sampling is the dense Bernoulli × U(0,2) process ------------------------------------
def test_sparse_sampling_has_the_right_statistics():
    n, batch, reps = 200, 512, 300
    p = toy.feature_probabilities(n, "power", 1.0, density=3.0).float()
    counts = torch.zeros(n)
    values, active_per_sample = [], []
    g = gen(1)
    for _ in range(reps):
        bt = toy.sample_sparse_batch(p, batch, g)
        key = bt.sample * n + bt.feature
        assert key.unique().numel() == key.numel()  # no entry drawn twice
        assert 0 <= int(bt.sample.min()) and int(bt.sample.max()) < batch
        counts.index_add_(0, bt.feature, torch.ones(bt.feature.numel()))
        values.append(bt.value)
        active_per_sample.append(torch.bincount(bt.sample, minlength=batch).float())
    trials = reps * batch
    freq = counts / trials
    se = torch.sqrt(p * (1 - p) / trials).clamp_min(1e-6)
    assert float(((freq - p) / se).abs().max()) < 5.0  # every feature within 5 SE
    v = torch.cat(values)
    assert float(v.min()) >= 0 and float(v.max()) <= 2
    assert float(v.mean()) == pytest.approx(toy.MEAN_V, abs=0.01)
    assert float(v.square().mean()) == pytest.approx(toy.MEAN_V2, abs=0.02)
    assert float(torch.cat(active_per_sample).mean()) == pytest.approx(3.0, abs=0.02)


def test_feature_that_always_fires_fills_every_sample():
    p = toy.feature_probabilities(50, "power", 1.0, density=1.0 / float(toy.feature_probabilities(50, "power", 1.0)[0]))
    bt = toy.sample_sparse_batch(p.float(), 64, gen())
    first = bt.sample[bt.feature == 0]
    assert sorted(first.tolist()) == list(range(64))


# ---- loss units ------------------------------------------------------------------------------
def test_loss_units_paper_is_n_times_code():
    n, m = 40, 6
    g = gen(2)
    W, b = torch.randn(n, m, generator=g), torch.randn(n, generator=g)
    x = toy.sample_sparse_batch(toy.feature_probabilities(n, "power", 0.5).float(), 128, g)
    loss_paper, _, _ = toy.loss_and_grads(W[None], b[None], [x])
    dense = x.to_dense()
    mse = torch.nn.MSELoss()(torch.relu(dense @ W @ W.T + b), dense)
    assert float(loss_paper[0]) == pytest.approx(n * float(mse), rel=1e-5)
    summed = (torch.relu(dense @ W @ W.T + b) - dense).square().sum(dim=1).mean()
    assert float(loss_paper[0]) == pytest.approx(float(summed), rel=1e-5)
    # the forward pass alone (used for evaluation) gives the same loss
    assert float(toy.forward_residual(W[None], b[None], [x])[0][0]) == float(loss_paper[0])


def test_empty_model_loss_is_mean_square_input():
    # Nothing represented (W = 0, b = 0 → y = 0): L = Σ_i p_i ⟨v²⟩ = E · 4/3 (reference §3)
    n = 100
    p = toy.feature_probabilities(n, "power", 1.0, density=2.0).float()
    loss = toy.evaluate_loss(torch.zeros(n, 4), torch.zeros(n), p, 200_000, gen(3))
    assert loss == pytest.approx(2.0 * 4.0 / 3.0, rel=0.01)


def test_hand_written_gradients_equal_autograd():
    n, m, R = 30, 5, 3
    g = gen(4)
    W = torch.randn(R, n, m, generator=g, dtype=torch.float64)
    b = torch.randn(R, n, generator=g, dtype=torch.float64) * 0.3
    p = toy.feature_probabilities(n, "power", 0.8).float()
    batches = [toy.sample_sparse_batch(p, 64, g) for _ in range(R)]
    for bt in batches:
        bt.value = bt.value.double()
    _, grad_W, grad_b = toy.loss_and_grads(W.clone(), b.clone(), batches)
    for r, bt in enumerate(batches):
        Wr = W[r].clone().requires_grad_(True)
        br = b[r].clone().requires_grad_(True)
        x = bt.to_dense().double()
        torch.nn.MSELoss()(torch.relu(x @ Wr @ Wr.T + br), x).backward()
        assert torch.allclose(grad_W[r], Wr.grad, atol=1e-12, rtol=1e-9)
        assert torch.allclose(grad_b[r], br.grad, atol=1e-12, rtol=1e-9)


# ---- initialisation ------------------------------------------------------------------------------
def test_initial_row_norms_and_bias_statistics():
    n, m = 4000, 16
    models = toy.init_models(n, m, [gen(5)], "cpu")
    sq_norms = models.W[0].square().sum(dim=1)
    # W_ij ~ N(0, 1/m): ‖W_i‖² ~ χ²_m / m, mean 1 and variance 2/m
    assert float(sq_norms.mean()) == pytest.approx(1.0, abs=4 * math.sqrt(2 / m / n))
    assert float(sq_norms.var()) == pytest.approx(2 / m, rel=0.1)
    assert float(models.b.mean()) == pytest.approx(0.0, abs=0.06)  # b ~ N(0, 1), not zero
    assert float(models.b.std()) == pytest.approx(1.0, rel=0.05)


# ---- schedule --------------------------------------------------------------------------------
def test_schedule_warmup_peak_and_floor():
    steps, warmup = 20_000, 2_000  # (code) n = 1000 sweeps
    assert toy.lr_factor(0, steps, warmup) == pytest.approx(1 / 2000)
    assert toy.lr_factor(998, steps, warmup) == pytest.approx(0.4995)
    assert toy.lr_factor(1999, steps, warmup) == pytest.approx(1.0)  # s = w: cosine starts
    assert toy.lr_factor(steps - 1, steps, warmup) == pytest.approx(0.05)
    mid = warmup + (steps - warmup) // 2 - 1
    assert toy.lr_factor(mid, steps, warmup) == pytest.approx(0.05 + 0.95 * 0.5)


# ---- optimiser -------------------------------------------------------------------------------
def test_nonnegative_decay_is_torch_adamw():
    n, m, gamma = 12, 4, 0.3
    g = gen(6)
    W0, b0 = torch.randn(n, m, generator=g), torch.randn(n, generator=g)
    ours = toy.ToyModels(
        W0.clone()[None], b0.clone()[None], torch.zeros(1, n, m), torch.zeros(1, n, m),
        torch.zeros(1, n), torch.zeros(1, n),
    )
    W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    reference = torch.optim.AdamW(
        [{"params": [W], "weight_decay": gamma}, {"params": [b], "weight_decay": 0.0}], lr=0.01
    )
    for t in range(1, 30):
        lr = 0.01 * toy.lr_factor(t - 1, 30, 5)
        gW, gb = torch.randn(n, m, generator=g), torch.randn(n, generator=g)
        for group in reference.param_groups:
            group["lr"] = lr
        W.grad, b.grad = gW.clone(), gb.clone()
        reference.step()
        rate = torch.tensor([lr])
        toy.optimizer_step(ours, gW[None], gb[None], t, rate, rate, torch.tensor([gamma]))
    assert torch.allclose(ours.W[0], W.detach(), atol=1e-6)
    assert torch.allclose(ours.b[0], b.detach(), atol=1e-6)


def test_negative_decay_follows_its_formula_and_pulls_rows_to_unit_norm():
    lr, gamma = 0.1, -1.0
    W = torch.tensor([[[2.0, 0.0], [0.0, 0.5], [0.3, 0.4]]])
    expected = W[0] + lr * gamma * W[0] * (1 - 1 / (W[0].norm(dim=1, keepdim=True) + 1e-8))
    toy.apply_signed_decay(W, torch.tensor([lr]), torch.tensor([gamma]))
    assert torch.allclose(W[0], expected)
    for _ in range(300):
        toy.apply_signed_decay(W, torch.tensor([lr]), torch.tensor([gamma]))
    assert torch.allclose(W[0].norm(dim=1), torch.ones(3), atol=1e-6)
    # directions are untouched
    assert torch.allclose(W[0][2] / W[0][2].norm(), torch.tensor([0.6, 0.8]), atol=1e-6)


def test_positive_decay_shrinks_and_mixed_signs_act_per_run():
    W = torch.ones(2, 3, 2)
    toy.apply_signed_decay(W, torch.tensor([0.1, 0.1]), torch.tensor([0.5, -0.5]))
    assert torch.allclose(W[0], torch.full((3, 2), 0.95))
    norm = math.sqrt(2)
    assert torch.allclose(W[1], torch.full((3, 2), 1 - 0.05 * (1 - 1 / norm)), atol=1e-6)


# ---- metrics -----------------------------------------------------------------------------------
def test_metrics_on_a_constructed_matrix():
    m = 5
    eye = torch.eye(m)
    W = torch.cat([eye, 1.5 * eye])  # every direction twice; n = 2m
    metrics = toy.weight_metrics(W, torch.linspace(0, 2, 41, dtype=torch.float64))
    assert metrics["phi_half"] == 1.0
    assert metrics["phi_one"] == 0.5  # norm exactly 1 is not > 1
    # ordered pairs i ≠ j: 2m(2m − 1); those with cos² = 1: 2m
    assert metrics["mean_sq_overlap"] == pytest.approx(1 / (2 * m - 1))
    assert metrics["mean_sq_overlap_strong"] == pytest.approx(0.0)
    hist = metrics["norm_hist"]
    assert float(hist.sum()) == pytest.approx(1.0)
    assert float(hist[20]) == 0.5 and float(hist[30]) == 0.5  # bins [1.0,1.05) and [1.5,1.55)


def test_random_unit_vectors_overlap_is_one_over_m():
    # (derived) isotropic unit vectors: (u·v)² ~ Beta(½, (m−1)/2): mean 1/m, var 2(m−1)/(m²(m+2))
    m = 20
    W = torch.randn(1500, m, generator=gen(7))
    metrics = toy.weight_metrics(W, torch.linspace(0, 2, 41, dtype=torch.float64))
    assert metrics["mean_sq_overlap"] == pytest.approx(1 / m, rel=0.03)
    assert metrics["sq_overlap_var"] == pytest.approx(2 * (m - 1) / (m**2 * (m + 2)), rel=0.08)


def test_blocked_overlap_moments_equal_the_dense_computation():
    unit = torch.nn.functional.normalize(torch.randn(300, 7, generator=gen(8), dtype=torch.float64), dim=1)
    sq = (unit @ unit.T).square()
    off = sq[~torch.eye(300, dtype=torch.bool)]
    mean, var = toy.squared_overlap_moments(unit, block=64)
    assert mean == pytest.approx(float(off.mean()), rel=1e-12)
    assert var == pytest.approx(float(off.var(correction=0)), rel=1e-9)


def test_feature_with_zero_probability_never_fires():
    p = torch.tensor([0.5, 0.0, 0.25])
    bt = toy.sample_sparse_batch(p, 4096, gen(9))
    assert not (bt.feature == 1).any()
    assert float((bt.feature == 0).float().sum()) / 4096 == pytest.approx(0.5, abs=0.03)
