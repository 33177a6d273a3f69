"""Unembedding statistics and the Hugging Face checkpoint loader (checkpoints written here)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from scaling_atlas.models.lm_heads import (CheckpointError, load_hf_unembedding,
                                           overlap_statistics, unembedding_statistics)


def test_blocked_overlaps_equal_the_direct_computation():
    W = torch.randn(301, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    unit = W / W.norm(dim=1, keepdim=True)
    cos = unit @ unit.T
    iu = torch.triu_indices(301, 301, offset=1)
    pairs = cos[iu[0], iu[1]]
    stats = overlap_statistics(W, block=64)
    assert stats["mean_sq_overlap"] == pytest.approx(float(pairs.square().mean()), rel=1e-12)
    assert stats["mean_abs_overlap"] == pytest.approx(float(pairs.abs().mean()), rel=1e-12)


@pytest.mark.parametrize("m", [8, 64])
def test_random_rows_have_mean_squared_overlap_one_over_m(m):
    # for isotropic random directions E[cos²] = 1/m exactly
    W = torch.randn(2000, m, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert overlap_statistics(W)["mean_sq_overlap"] == pytest.approx(1 / m, rel=0.03)


def test_norm_statistics_find_unrepresented_rows():
    W = torch.ones(10, 4)
    W[7] = 0.0
    W[8] = 0.1
    stats = unembedding_statistics(W)
    assert stats["zero_rows"] == 1 and stats["represented_fraction"] == pytest.approx(0.8)
    assert stats["norm_median"] == pytest.approx(2.0) and stats["n_tokens"] == 10


def _checkpoint(folder, config, tensors, shard=False):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if not shard:
        save_file(tensors, str(folder / "model.safetensors"))
        return folder
    names = sorted(tensors)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves):
        file = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, str(folder / file))
        weight_map.update(dict.fromkeys(part, file))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def test_loader_reads_each_family_naming(tmp_path):
    g = torch.Generator().manual_seed(0)
    wte = torch.randn(50, 12, generator=g)
    gpt2 = _checkpoint(tmp_path / "gpt2", {"model_type": "gpt2", "n_embd": 12},
                       {"transformer.wte.weight": wte, "transformer.h.0.attn.c_attn.weight": torch.zeros(12, 36)})
    head = load_hf_unembedding(gpt2)
    assert head["tensor"] == "transformer.wte.weight" and head["tied"] and head["width"] == 12
    assert torch.equal(head["matrix"], wte)

    embed_out = torch.randn(60, 16, generator=g)
    pythia = _checkpoint(tmp_path / "pythia", {"model_type": "gpt_neox", "hidden_size": 16},
                         {"gpt_neox.embed_in.weight": torch.randn(60, 16, generator=g),
                          "embed_out.weight": embed_out}, shard=True)
    head = load_hf_unembedding(pythia)
    assert head["tensor"] == "embed_out.weight" and not head["tied"]
    assert torch.equal(head["matrix"], embed_out)

    # OPT-350m: a 512-wide embedding projected up; the paper uses the model width 1024
    opt = _checkpoint(tmp_path / "opt350m", {"model_type": "opt", "hidden_size": 1024,
                                             "word_embed_proj_dim": 512},
                      {"model.decoder.embed_tokens.weight": torch.randn(30, 512, generator=g)})
    head = load_hf_unembedding(opt)
    assert head["width"] == 1024 and head["matrix"].shape == (30, 512)

    qwen = _checkpoint(tmp_path / "qwen7b", {"model_type": "qwen2", "hidden_size": 8,
                                             "tie_word_embeddings": False},
                       {"model.embed_tokens.weight": torch.zeros(20, 8),
                        "lm_head.weight": torch.ones(20, 8)})
    assert load_hf_unembedding(qwen)["tensor"] == "lm_head.weight"


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hf_unembedding(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no \\*.safetensors"):
        load_hf_unembedding(tmp_path)


def test_study_places_checkpoints_next_to_our_family(tmp_path):
    from scaling_atlas.studies.superposition_lm import SuperpositionLMStudy

    W = torch.randn(400, 32, generator=torch.Generator().manual_seed(2))
    folder = _checkpoint(tmp_path / "tiny-gpt2", {"model_type": "gpt2", "n_embd": 32},
                         {"transformer.wte.weight": W})
    table = SuperpositionLMStudy._external([{"path": str(folder), "label": "", "loss": 3.2}])
    assert list(table["checkpoint"].values) == ["tiny-gpt2"]
    row = table.isel(checkpoint=0)
    assert int(row["hf_width"]) == 32 and int(row["hf_vocab"]) == 400
    assert float(row["hf_mean_sq_overlap"]) == pytest.approx(1 / 32, rel=0.1)  # random rows
    assert float(row["hf_loss"]) == 3.2


def test_shared_mean_direction_is_measured_and_removed():
    """Random rows plus a common offset c·u: the offset lifts every overlap (towards cos² of the
    offset's share) and carries a known share of the energy; projecting it out restores ≈ 1/m."""
    rng = np.random.default_rng(0)
    n, m, c = 2000, 64, 1.0
    noise = rng.standard_normal((n, m)) / np.sqrt(m)  # rows of norm ≈ 1
    u = np.zeros(m)
    u[0] = 1.0
    W = noise + c * u
    stats = unembedding_statistics(W)
    # energy along the mean direction: (c² + 1/m) / (c² + 1) for these rows
    assert stats["mean_direction_energy"] == pytest.approx((c**2 + 1 / m) / (c**2 + 1), rel=0.05)
    assert stats["mean_sq_overlap"] > 0.2  # ≈ (c²/(c²+1))² = 0.25, far above 1/m
    assert stats["mean_sq_overlap_centred"] == pytest.approx(1 / (m - 1), rel=0.05)
    assert stats["represented_fraction_paper"] == 1.0
    W[:10] = 0.01 * W[:10] / np.linalg.norm(W[:10], axis=1, keepdims=True)  # ten near-zero rows
    assert unembedding_statistics(W)["represented_fraction_paper"] == pytest.approx(1 - 10 / n)
