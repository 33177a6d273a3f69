"""The transformer family: exact counts, causality, the LR schedules, resumable training."""

import math

import numpy as np
import pytest
import torch

from scaling_atlas.corpus.grammar import GrammarSpec, build_grammar, sample_documents
from scaling_atlas.models.shape import family_shape, flops_per_token, parameter_counts
from scaling_atlas.models.transformer import Transformer, TransformerConfig
from scaling_atlas.train.lm import (CorpusTooSmall, LMTrainSpec, WindowSampler, eval_steps, lr_at,
                                    train_lm)

# V = 10, d = 8, L = 2, T = 4, d_ff = 32, 2 heads
SMALL = dict(vocab_size=10, d_model=8, n_layer=2, n_head=2, seq_len=4, d_ff=32)


def test_parameter_counts_by_hand():
    cfg = TransformerConfig(**SMALL, positions="learned", tied_head=False)
    # token 10·8 = 80, positions 4·8 = 32; per layer qkv 3·64 + proj 64 + mlp 2·8·32 + 2 LNs 4·8
    # = 800, two layers 1600; final LN 16; untied head 80
    counts = parameter_counts(cfg)
    assert counts["total"] == 80 + 32 + 1600 + 16 + 80 == 1808
    assert counts["non_embedding"] == 1616
    assert counts["non_embedding_with_head"] == 1616 + 80
    assert counts["total"] == sum(p.numel() for p in Transformer(cfg).parameters())


@pytest.mark.parametrize("positions", ["rotary", "learned"])
@pytest.mark.parametrize("tied", [True, False])
def test_parameter_counts_match_the_module(positions, tied):
    cfg = TransformerConfig(vocab_size=37, d_model=24, n_layer=3, n_head=3, seq_len=16,
                            positions=positions, tied_head=tied)
    assert parameter_counts(cfg)["total"] == sum(p.numel() for p in Transformer(cfg).parameters())


def test_flop_counts_by_hand():
    cfg = TransformerConfig(**SMALL, positions="learned", tied_head=False)
    flops = flops_per_token(cfg)
    assert flops["6N"] == 6 * 1808
    assert flops["kaplan"] == 6 * 1616
    assert flops["attention"] == 6 * 1808 + 6 * 4 * 8 * 2
    # Hoffmann App. F per token: attention 2·3·64 + 2·4·8 + 3·2·4 + 2·4·8 + 2·64 = 664,
    # dense 2·2·8·32 = 1024, embeddings and logits 2·10·8 each → forward 3696, ×3
    assert flops["hoffmann"] == 3 * (160 + 2 * (664 + 1024) + 160) == 11088


def test_family_rule_and_shape_errors():
    assert family_shape(64, aspect_ratio=32, head_dim=16) == (2, 4)
    assert family_shape(16, aspect_ratio=32, head_dim=8) == (2, 2)  # depth ≥ 2 for every width
    assert family_shape(16, aspect_ratio=32, head_dim=8, min_layers=1) == (1, 2)
    with pytest.raises(ValueError, match="not divisible by n_head"):
        TransformerConfig(vocab_size=10, d_model=10, n_layer=1, n_head=3, seq_len=4)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_future_tokens_cannot_change_past_logits(positions):
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=50, d_model=32, n_layer=2, n_head=4,
                                          seq_len=16, positions=positions)).eval()
    idx = torch.randint(0, 50, (2, 16))
    changed = idx.clone()
    changed[:, 9:] = (changed[:, 9:] + 7) % 50
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert torch.equal(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_lr_schedules():
    spec = LMTrainSpec(tokens=1, lr=1.0, warmup_fraction=0.1, final_lr_fraction=0.1)
    cosine = [lr_at(s, 100, spec) for s in range(100)]
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert cosine[10] == pytest.approx(1.0) and cosine[-1] == pytest.approx(0.1)
    assert all(x >= y for x, y in zip(cosine[9:], cosine[10:]))
    wsd = [lr_at(s, 100, LMTrainSpec(tokens=1, lr=1.0, schedule="wsd", decay_fraction=0.2,
                                     warmup_fraction=0.1, final_lr_fraction=0.1)) for s in range(100)]
    assert wsd[79] == 1.0 and wsd[-1] == pytest.approx(0.1) and wsd[80] < 1.0
    const = [lr_at(s, 100, LMTrainSpec(tokens=1, lr=1.0, schedule="constant")) for s in range(100)]
    assert const[50] == 1.0 == const[-1]
    assert eval_steps(1000, 8)[-1] == 1000 and eval_steps(1000, 8)[0] == 1


def test_window_sampler_never_repeats_silently():
    tokens = np.arange(101, dtype=np.int32)  # 10 windows of 10
    sampler = WindowSampler(tokens, 10, seed=0, allow_repeat=False)
    assert sampler.require(10, "run") == 1
    with pytest.raises(CorpusTooSmall, match="needs 110 training tokens .* corpus has 100"):
        sampler.require(11, "run")
    repeat = WindowSampler(tokens, 10, seed=0, allow_repeat=True)
    assert repeat.require(25, "run") == 3
    x, y = repeat.batch(0, 10)
    # one epoch visits every window exactly once; targets are inputs shifted by one
    assert sorted(x[:, 0].tolist()) == list(range(0, 100, 10))
    assert torch.equal(y[:, :-1], x[:, 1:])


@pytest.fixture(scope="module")
def grammar_tokens():
    grammar = build_grammar(GrammarSpec(vocab_size=64, nonterminals=12, rules=8))
    train = sample_documents(grammar, 4000, np.random.default_rng(1)).tokens
    val = sample_documents(grammar, 200, np.random.default_rng(2)).tokens
    return train, val


def test_resume_after_interruption_gives_identical_weights(tmp_path, grammar_tokens):
    torch.use_deterministic_algorithms(True)
    train, val = grammar_tokens
    cfg = TransformerConfig(vocab_size=64, d_model=16, n_layer=1, n_head=2, seq_len=16)
    spec = LMTrainSpec(tokens=40 * 8 * 16, batch_size=8, lr=3e-3, eval_points=5,
                       eval_tokens=512, checkpoint_every=10)
    device = torch.device("cpu")
    probe = torch.from_numpy(val[:17]).long()[None]

    def curves(model):  # an extra curve at every validation point: the probe's loss per position
        logits = model(probe[:, :-1])
        return {"probe_loss": torch.nn.functional.cross_entropy(
            logits[0], probe[0, 1:], reduction="none").detach().numpy()[:4]}

    whole, result = train_lm(cfg, spec, train, val, device, tmp_path / "a.pt", log=lambda s: None,
                             on_eval=curves)
    partial, none = train_lm(cfg, spec, train, val, device, tmp_path / "b.pt", log=lambda s: None,
                             stop_after=25, on_eval=curves)
    assert none is None  # interrupted; the checkpoint holds step 20
    messages = []
    resumed, again = train_lm(cfg, spec, train, val, device, tmp_path / "b.pt", log=messages.append,
                              on_eval=curves)
    # the extra curve is kept through the checkpoint: one row per validation point
    assert result["history"]["probe_loss"].shape == (len(result["history"]["step"]), 4)
    np.testing.assert_array_equal(result["history"]["probe_loss"], again["history"]["probe_loss"])
    assert result["history"]["probe_loss"][-1].mean() < result["history"]["probe_loss"][0].mean()
    assert any("resumed at step 20" in m for m in messages)
    for (name, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    np.testing.assert_array_equal(result["history"]["val_loss"], again["history"]["val_loss"])
    assert result["steps"] == 40 and result["tokens_seen"] == 40 * 8 * 16
    # the loss falls below the unigram baseline ln V
    assert result["final_val_loss"] < math.log(64)
