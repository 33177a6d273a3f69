"""The resolution study: the analytic cost model against the published token counts and hand
counts, the needle task's construction, exact FLOP counts against an independent count of the
layers, selection of the most salient patches, learning to find the glyph, determinism, and the
config errors."""

import pytest
import torch
import torch.nn as nn

from scaling_atlas.config import ConfigError
from scaling_atlas.studies import validate_config
from scaling_atlas.resolution import cost
from scaling_atlas.resolution.needle import (DownsampleEncoder, SelectEncoder, build_model,
                                             evaluate_needle, glyphs, patch_targets, sample_batch,
                                             train_needle)
from scaling_atlas.resolution.task import NeedleTask

from conftest import load_config, merged

CPU = torch.device("cpu")


# ---- cost model --------------------------------------------------------------------------------
def test_token_counts_are_the_published_ones():
    for resolution, published in cost.PUBLISHED_TOKENS.items():
        assert cost.tokens(resolution, 14) == published
    assert sum(cost.tokens(r, 14) for r in cost.PUBLISHED_TOKENS) == cost.PUBLISHED_ALL_SCALES
    with pytest.raises(ValueError, match="not a multiple of the patch size 14"):
        cost.tokens(1000, 14)


def test_forward_flops_by_hand():
    # 2·N·T + 4·L·d·T² with N = 10, T = 3, L = 2, d = 4: 60 + 288
    assert cost.forward_flops(3, params=10, width=4, layers=2) == 60 + 288


def test_selective_cost_stops_growing_with_resolution():
    kw = dict(patch=14, base_resolution=378, per_look=2560)
    assert cost.selective_tokens(378, **kw) == 729  # at the glimpse's size: the glimpse alone
    assert cost.selective_tokens(756, **kw) == 729 + 2560  # 2,916 patches, budget 2,560
    assert cost.selective_tokens(3780, **kw) == cost.selective_tokens(1512, **kw) == 729 + 2560
    assert cost.selective_tokens(3780, looks=2, **kw) == 729 + 5120  # the paper's two-look example
    shape = cost.SO400M
    one_look = cost.forward_flops(729, **shape) + cost.forward_flops(2560, **shape)
    assert cost.selective_flops(3780, **kw, **shape) == pytest.approx(one_look)
    two_looks = cost.forward_flops(729, **shape) + 2 * cost.forward_flops(2560, **shape)
    assert cost.selective_flops(3780, **kw, **shape, looks=2) == pytest.approx(two_looks)


# ---- the needle task -----------------------------------------------------------------------------
def test_glyphs_are_distinct_with_equal_brightness():
    task = NeedleTask(canvas=32, glyph=3, lit=4, classes=4)
    shapes = glyphs(task)
    assert shapes.shape == (4, 3, 3) and (shapes.sum((1, 2)) == 4).all()
    assert len({tuple(g.flatten().tolist()) for g in shapes}) == 4


def test_canvases_hold_their_glyph_where_the_corner_says():
    task = NeedleTask(canvas=32, glyph=3, lit=4, amplitude=100.0, patch=4, glimpse=32)
    images, labels, corners = sample_batch(task, 8, torch.Generator().manual_seed(0), CPU)
    for image, label, (r, c) in zip(images, labels, corners):
        lit = (image[0] > 50).float()  # the glyph stands 100 σ above the noise
        assert lit.sum() == 4
        assert torch.equal(lit[r:r + 3, c:c + 3], glyphs(task)[label])


def test_patch_targets_mark_the_patches_the_glyph_overlaps():
    task = NeedleTask(canvas=32, glyph=3, lit=4, patch=4, glimpse=32)
    targets = patch_targets(task, torch.tensor([[0, 0], [3, 6], [29, 29]]))
    assert targets[0].nonzero().tolist() == [[0, 0]]
    assert targets[1].nonzero().tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]  # rows 3–5, cols 6–8
    assert targets[2].nonzero().tolist() == [[7, 7]]


def _counted_flops(model, images):
    """2 × multiply-adds of every convolution and linear layer, from their actual outputs."""
    total = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total.append(2.0 * output.numel() * module.in_channels * k)  # one image in
        elif isinstance(module, nn.Linear):
            total.append(2.0 * module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(images[:1])
    for h in handles:
        h.remove()
    return sum(total) + images.shape[-1] ** 2  # plus the pooling: each pixel added once


@pytest.mark.parametrize("canvas", [32, 64, 128])
def test_flop_counts_match_the_layers(canvas):
    task = NeedleTask(canvas=canvas, glyph=3, lit=4, patch=4, glimpse=32)
    images, _, _ = sample_batch(task, 1, torch.Generator().manual_seed(0), CPU)
    for model in (DownsampleEncoder(task), SelectEncoder(task, k=4)):
        # the patch encoder runs once per selected patch: the hook sees all K of them
        assert model.flops() == pytest.approx(_counted_flops(model, images))
    # selection's cost does not grow with the canvas beyond reading its pixels once
    assert SelectEncoder(task, 4).flops() - canvas ** 2 == pytest.approx(
        SelectEncoder(NeedleTask(canvas=32, glyph=3, lit=4, patch=4, glimpse=32), 4).flops() - 32 ** 2)


def test_selection_reads_the_most_salient_patches():
    task = NeedleTask(canvas=64, glyph=3, lit=4, patch=4, glimpse=32)
    model = SelectEncoder(task, k=2)
    images = torch.randn(1, 1, 64, 64)

    def fake_logits(x):
        logits = torch.zeros(1, 16, 16)
        logits[0, 3, 5], logits[0, 10, 2] = 5.0, 4.0
        return logits

    model.patch_logits = fake_logits
    read = {}
    model.patch_encoder.register_forward_pre_hook(lambda module, inputs: read.update(x=inputs[0]))
    model(images)
    expected = torch.stack([images[0, 0, 12:16, 20:24], images[0, 0, 40:44, 8:12]])
    assert torch.equal(read["x"][:, 0], expected)  # patch (3, 5) then (10, 2), at full resolution


def test_training_is_deterministic_and_learns_to_find_the_glyph():
    task = NeedleTask(canvas=64, glyph=3, lit=4, amplitude=4.0, patch=4, glimpse=32)
    weights = []
    for _ in range(2):
        model = build_model("select", task, k=4, seed=7)
        train_needle(model, task, 250, 32, 3e-3, seed=7, device=CPU, log=lambda s: None)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    scores = evaluate_needle(model, task, 400, seed=1, device=CPU)
    assert scores["glyph_found"] > 0.8  # random top-4 of 256 patches: ≈ 0.03
    assert scores["accuracy"] > 0.5  # chance 0.25


# ---- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize("needle, message", [
    ({"canvases": [2, 64]}, "needle.canvases[0]: canvas 2 px is smaller than the glyph (3 px)"),
    ({"ks": [1, 300]}, "needle.ks: K = 300 is larger than the 256 patches of a 64 px canvas"),
    ({"canvases": [32, 48]}, "needle.canvases[1]: canvas 48 px is not a multiple of the glimpse"),
    ({"k_canvas": 256}, "needle.k_canvas: 256 is not one of needle.canvases"),
])
def test_bad_needle_config_names_the_key(needle, message):
    config = merged(load_config(), {"studies": {"resolution": {"needle": needle}}})
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert f"studies.resolution.{message}" in str(error.value)


def test_model_rejects_more_patches_than_the_canvas_has():
    with pytest.raises(ValueError, match="k = 65 must be between 1 and the 64 patches"):
        SelectEncoder(NeedleTask(canvas=32, glyph=3, lit=4, patch=4, glimpse=32), k=65)
