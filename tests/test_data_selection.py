"""The data-selection study: the synthetic corpus's hidden structure, AttentionInfluence's pieces
(explicit-attention forward, uniform masking, retrieval scores, selection, AUROC) against
constructed cases, and config errors."""

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from scaling_atlas.config import ConfigError
from scaling_atlas.studies import validate_config
from scaling_atlas.models.transformer import Transformer, TransformerConfig
from scaling_atlas.laws.resampling import paired_bootstrap, seed_and_document_bootstrap
from scaling_atlas.selection import heads as ai
from scaling_atlas.selection import scores as sel
from scaling_atlas.selection.pipeline import upsampled
from scaling_atlas.selection.corpus import (BOS, KEY_LEN, QUERY, SEP, VALUE_LEN, CorpusSpec,
                                            flatten, key_value_probe, repeat_probe,
                                            sample_documents)

from conftest import load_config, merged

SPEC = CorpusSpec()


def test_documents_are_windows_with_the_requested_mixture():
    docs = sample_documents(SPEC, 4000, 0.3, stream=1)
    assert docs.tokens.shape == (4000, SPEC.seq_len) and (docs.tokens[:, 0] == BOS).all()
    assert docs.tokens.min() >= 0 and docs.tokens.max() < SPEC.vocab_size
    assert abs(docs.label.mean() - 0.3) < 0.03
    assert set(np.unique(docs.kind[docs.label == 1])) == {1, 2} and (docs.kind[docs.label == 0] == 0).all()
    assert set(np.unique(docs.domain)) == {0, 1}
    # deterministic per stream, different across streams
    assert np.array_equal(sample_documents(SPEC, 4000, 0.3, stream=1).tokens, docs.tokens)
    assert not np.array_equal(sample_documents(SPEC, 4000, 0.3, stream=2).tokens, docs.tokens)
    # the trainer's windows of T + 1 tokens are whole documents plus the next BOS
    stream = flatten(docs.tokens[:3])
    assert len(stream) == 3 * SPEC.seq_len + 1 and stream[SPEC.seq_len] == BOS


def test_key_value_targets_are_the_values_of_the_queried_keys():
    docs, recall = key_value_probe(SPEC, 200, stream=3)
    R = SPEC.records
    for doc, mask in zip(docs, recall):
        records = doc[1 : 1 + R * 4].reshape(R, 4)
        assert (records[:, -1] == SEP).all() and len(set(records[:, 0])) == R  # distinct keys
        table = {r[0]: tuple(r[1 : 1 + VALUE_LEN]) for r in records}
        queries = doc[1 + R * 4 : 1 + R * 8].reshape(R, 4)
        assert (queries[:, 0] == QUERY).all() and sorted(queries[:, 1]) == sorted(table)
        for q in queries:
            assert tuple(q[1 + KEY_LEN :]) == table[q[1]]
        # the targets are exactly the queried values (recallable only from the context)
        assert list(doc[mask]) == [v for q in queries for v in q[1 + KEY_LEN :]]


def test_repeat_targets_copy_an_earlier_segment_at_varying_offsets():
    docs, targets = repeat_probe(SPEC, 300, stream=5)
    offsets = set()
    for doc, mask in zip(docs, targets):
        positions = np.flatnonzero(mask)
        assert len(positions) >= SPEC.seq_len // 8 - 1
        # each target equals the token one segment-offset earlier, the same offset for all
        matches = [o for o in range(2, SPEC.seq_len) if (doc[positions] == doc[positions - o]).all()
                   and positions[0] - o >= 1]
        assert matches
        offsets.add(max(matches))
    assert len(offsets) > 5  # no fixed offset a positional head could learn


def tiny_model(seed=0, n_head=4):
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(vocab_size=SPEC.vocab_size, d_model=32, n_layer=2,
                                         n_head=n_head, seq_len=SPEC.seq_len)).eval()


def test_explicit_attention_forward_equals_the_model():
    model = tiny_model()
    idx = torch.as_tensor(sample_documents(SPEC, 8, 0.5, stream=4).tokens)
    with torch.no_grad():
        expected = model(idx)
    logits, weights = ai.forward_heads(model, idx, keep_weights=True)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert weights[0].shape == (8, 4, SPEC.seq_len, SPEC.seq_len)
    torch.testing.assert_close(weights[1].sum(-1), torch.ones(8, 4, SPEC.seq_len))


def test_masked_head_attends_uniformly_and_only_it_changes():
    model = tiny_model()
    idx = torch.as_tensor(sample_documents(SPEC, 4, 0.5, stream=4).tokens)
    _, intact = ai.forward_heads(model, idx, keep_weights=True)
    _, masked = ai.forward_heads(model, idx, {(0, 2)}, keep_weights=True)
    T = SPEC.seq_len
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    torch.testing.assert_close(masked[0][:, 2], uniform.expand(4, T, T))
    torch.testing.assert_close(masked[0][:, [0, 1, 3]], intact[0][:, [0, 1, 3]])


def test_retrieval_scores_match_a_plain_loop():
    model = tiny_model(seed=3)
    docs, recall = key_value_probe(SPEC, 12, stream=7)
    # make every target the model's own top prediction (position by position, in order), so
    # that the score counts copies rather than zeros
    docs_own = docs.copy()
    for t in np.flatnonzero(recall[0]):  # the key–value layout is the same in every document
        logits, _ = ai.forward_heads(model, torch.as_tensor(docs_own))
        docs_own[:, t] = logits[:, t - 1].argmax(-1).numpy()
    logits, weights = ai.forward_heads(model, torch.as_tensor(docs_own), keep_weights=True)
    pred = logits.argmax(-1).numpy()
    expected, targets = np.zeros((2, 4)), 0
    for b in range(len(docs_own)):
        for p in np.flatnonzero(recall[b]):
            gold = docs_own[b, p]
            targets += 1
            if pred[b, p - 1] != gold:
                continue
            for layer in range(2):
                for h in range(4):
                    top = int(weights[layer][b, h, p - 1].argmax())
                    if docs_own[b, top] == gold and top < p - 2:
                        expected[layer, h] += 1
    scores = ai.retrieval_scores(model, docs_own, recall)
    np.testing.assert_allclose(scores, expected / targets)
    assert ai.recall_accuracy(model, docs_own, recall) == pytest.approx(1.0)


def test_head_choice_selection_and_auroc():
    scores = np.array([[0.1, 0.9, 0.0, 0.2], [0.3, 0.0, 0.8, 0.05]])
    assert sel.top_heads(scores, 0.05) == [(0, 1)]  # at least one head
    assert sel.top_heads(scores, 0.25) == [(0, 1), (1, 2)]
    one = sel.control_head_sets(scores, 1, seed=0)  # every other head in turn
    assert sorted(h for (h,) in one) == sorted(set(np.ndindex(2, 4)) - {(0, 1)})
    two = sel.control_head_sets(scores, 2, seed=0, draws=5)
    assert len(two) == 5 and all(len(s) == 2 and not set(s) & {(0, 1), (1, 2)} for s in two)
    # selection is within each domain: 20 % of each, by score
    score = np.r_[np.arange(10.0), np.arange(10.0) + 100]
    domain = np.r_[np.zeros(10, int), np.ones(10, int)]
    chosen = sel.select_within_domains(score, domain, 0.2)
    assert list(np.flatnonzero(chosen)) == [8, 9, 18, 19]
    # AUROC: the Mann–Whitney U statistic over n_pos · n_neg, ties counted half
    rng = np.random.default_rng(0)
    labels = rng.integers(2, size=300)
    values = rng.normal(size=300) + labels + np.round(rng.normal(size=300))  # with ties
    u = mannwhitneyu(values[labels == 1], values[labels == 0]).statistic
    assert sel.auroc(values, labels) == pytest.approx(u / ((labels == 1).sum() * (labels == 0).sum()))
    assert sel.auroc(np.arange(4.0), np.array([0, 0, 1, 1])) == 1.0
    assert sel.auroc(-np.arange(4.0), np.array([0, 0, 1, 1])) == 0.0
    np.testing.assert_allclose(sel.attention_influence(np.array([2.0, 4.0]), np.array([3.0, 4.0])),
                               [0.5, 0.0])


def test_upsampled_corpus_keeps_the_budget_and_the_share():
    tokens = np.arange(1000)[:, None] * np.ones((1, 4), int)
    chosen = np.zeros(1000, bool)
    chosen[::10] = True  # 100 selected documents
    mixed = upsampled(tokens, chosen, 0.5, seed=0)
    assert mixed.shape == tokens.shape  # equal tokens
    ids = mixed[:, 0]
    from_selected = np.isin(ids, np.flatnonzero(chosen))
    # half the documents are copies of the selected ones (each 5×), plus those of the kept pool
    assert from_selected.sum() == 500 + len(np.flatnonzero(chosen[:500]))
    assert set(ids[from_selected]) == set(np.flatnonzero(chosen))


def test_paired_bootstrap_centres_on_the_difference():
    rng = np.random.default_rng(1)
    a = (rng.random(400) < 0.3).astype(float)
    b = (rng.random(400) < 0.6).astype(float)
    draws = paired_bootstrap(a, b, 2000, seed=0)
    assert draws.mean() == pytest.approx(b.mean() - a.mean(), abs=0.01)
    assert 0.02 < draws.std() < 0.06  # ≈ sqrt(0.21/400 + 0.24/400) ≈ 0.034


def test_two_level_bootstrap_covers_the_seed_spread():
    # two sizes × three seeds × 300 documents; within a seed every document gains the same,
    # so only resampling the seeds can make an interval
    gains = np.array([[0.1, 0.5, 0.9], [0.4, 0.4, 0.4]])
    a = np.zeros((2, 3, 300))
    b = np.broadcast_to(gains[..., None], (2, 3, 300))
    draws = seed_and_document_bootstrap(a, b, 4000, seed=0)
    assert draws.shape == (2, 4000)
    np.testing.assert_allclose(draws.mean(-1), gains.mean(-1), atol=0.01)
    # all three draws the worst (best) seed with probability 1/27 = 3.7 % > 2.5 %
    low, high = np.percentile(draws[0], [2.5, 97.5])
    assert low == pytest.approx(0.1) and high == pytest.approx(0.9)
    assert np.ptp(draws[1]) == pytest.approx(0.0)  # equal seeds: no spread
    # one seed: the paired document bootstrap alone
    single = seed_and_document_bootstrap(a[:, :1], b[:, :1], 100, seed=0)
    np.testing.assert_allclose(single, paired_bootstrap(a[:, :1], b[:, :1], 100, seed=0)[:, 0])


@pytest.mark.parametrize("section, message", [
    ({"select_fraction": 0.0}, "studies.data_selection.select_fraction"),
    ({"select_fraction": 1.5}, "studies.data_selection.select_fraction"),
    ({"head_fraction": 0.95}, "masks all of them"),
    ({"corpus": {"seq_len": 20, "records": 3}}, "cannot hold 3 records"),
    ({"strong": {"widths": [40]}}, "strong.widths[0]: 40 is not a multiple"),
])
def test_bad_config_names_the_key(section, message):
    config = merged(load_config(), {"studies": {"data_selection": section}})
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert message in str(error.value)
