"""Corpora: the grammar's exact entropy and Zipf statistics, text tokenisation, bad input."""

import json

import numpy as np
import pytest

from scaling_atlas.corpus import CorpusError, load_corpus, prepare_corpus
from scaling_atlas.corpus.grammar import (GrammarSpec, build_grammar, rank_frequency_exponent,
                                          sample_documents)
from scaling_atlas.datasets import sha256_of

TEXT_DEFAULTS = {"tokenizer": "bpe", "vocab_size": 300, "val_fraction": 0.1, "allow_repeat": False,
                 "seq_len_margin": 17}


def test_grammar_entropy_rate_matches_the_sampled_log_likelihood():
    grammar = build_grammar(GrammarSpec(seed=3, nonterminals=500))
    sample = sample_documents(grammar, 50_000, np.random.default_rng(0))
    empirical = -sample.log_prob / len(sample.tokens)
    assert empirical == pytest.approx(grammar.entropy_rate, rel=0.01)
    # documents end with the end token and their mean length matches ℓ(S) + 1
    assert (sample.tokens == grammar.end_token).sum() == 50_000
    assert len(sample.tokens) / 50_000 == pytest.approx(grammar.mean_document_length, rel=0.02)


@pytest.fixture(scope="module")
def default_grammar():
    return build_grammar(GrammarSpec())


@pytest.mark.parametrize("s", [1.3, 1.4])
def test_rule_use_spectrum_is_one_power_law(s):
    """Issue #17: rule-use frequencies ∝ rank^(−s) over ≥ 2 decades of rank, ≥ 10⁵ rules,
    vocabulary ≤ 128. Exact usages (no sampling noise), then a sampled corpus agrees."""
    grammar = build_grammar(GrammarSpec(zipf_exponent=s))
    usage = grammar.rule_usage()[1:]
    assert grammar.vocab_size <= 128 and (usage > 0).sum() >= 100_000
    for low, high in ((300, 30_000), (1_000, 100_000)):
        assert grammar.spectrum_exponent(low, high) == pytest.approx(s, abs=0.05), (low, high)
    # each nonterminal's uses follow the planned k^(−s) (the wiring fills every target)
    nonterminal = grammar.nonterminal_usage()[1:]
    k = np.arange(1, len(nonterminal) + 1)
    slope = -np.polyfit(np.log(k[10:]), np.log(nonterminal[10:]), 1)[0]
    assert slope == pytest.approx(s, abs=0.02)


def test_sampled_rule_counts_match_the_exact_usage(default_grammar):
    n = 20_000
    sample = sample_documents(default_grammar, n, np.random.default_rng(1))
    usage = default_grammar.rule_usage()
    top = np.argsort(usage[1:].ravel())[::-1][:200]  # frequent rules: ≥ 100 uses each
    observed = sample.choice_counts[1:].ravel()[top] / n
    np.testing.assert_allclose(observed, usage[1:].ravel()[top], rtol=0.25)
    sampled = rank_frequency_exponent(sample.choice_counts[1:], min_count=0, ranks=(300, 3000))
    assert sampled == pytest.approx(default_grammar.spectrum_exponent(300, 3000), abs=0.05)


def test_grammar_nests_at_least_four_deep(default_grammar):
    profile = default_grammar.depth_profile()
    assert len(profile) >= 4 and profile[3] > 0  # rule uses at depth 4 (start's children: 1)
    assert profile.sum() == pytest.approx(default_grammar.nonterminal_usage()[1:].sum())


def test_quanta_predictions():
    from scaling_atlas.corpus.grammar import quanta_predictions

    pred = quanta_predictions(1.35)
    assert pred["alpha_N"] == pytest.approx(0.35) and pred["a"] == pytest.approx(1 / 2.35)
    assert pred["a"] + pred["b"] == pytest.approx(1.0)


def test_bad_grammar_specs_are_named():
    with pytest.raises(ValueError, match="within_exponent"):
        GrammarSpec(zipf_exponent=1.0, within_exponent=1.2)
    with pytest.raises(ValueError, match="distinct lead terminals"):
        GrammarSpec(vocab_size=32, rules=64)


def test_grammar_is_unambiguous_and_deterministic():
    spec = GrammarSpec(seed=5, nonterminals=300)
    g1, g2 = build_grammar(spec), build_grammar(spec)
    np.testing.assert_array_equal(g1.rhs, g2.rhs)
    leads = g1.rhs[1:, :, 0]
    assert all(len(set(row)) == spec.rules for row in leads)  # LL(1): distinct lead terminals
    V = spec.vocab_size
    parents, _, _ = np.nonzero(g1.rhs >= V)
    assert (g1.rhs[g1.rhs >= V] - V > parents).all()  # children come later: every derivation ends
    a = sample_documents(g1, 100, np.random.default_rng(9)).tokens
    b = sample_documents(g2, 100, np.random.default_rng(9)).tokens
    np.testing.assert_array_equal(a, b)


def test_prepare_grammar_corpus(tmp_path):
    cfg = {"source": "grammar", "grammar": {"vocab_size": 128, "nonterminals": 40, "rules": 16},
           "val_tokens": 4096, "seq_len_margin": 33}
    meta = prepare_corpus(cfg, 50_000, tmp_path / "a", tmp_path / "cache", log=lambda s: None)
    train, val, stored = load_corpus(tmp_path / "a")
    assert isinstance(train, np.memmap) and train.dtype == np.uint16  # vocabulary < 2^16
    assert len(train) >= 50_033 and len(val) >= 4096 and stored == json.loads(json.dumps(meta))
    assert meta["empirical_entropy_rate"] == pytest.approx(meta["entropy_rate_nats"], rel=0.05)
    assert meta["entropy_rate_nats"] < meta["unigram_entropy_nats"] < np.log(128)
    again = prepare_corpus(cfg, 50_000, tmp_path / "b", tmp_path / "cache", log=lambda s: None)
    assert again["train_sha256"] == meta["train_sha256"]
    assert not np.array_equal(train[:1000], val[:1000])  # validation is an independent stream


def _write_texts(folder, n=40):
    folder.mkdir()
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "über", "naïve", "🙂"]
    for i in range(n):
        text = " ".join(rng.choice(words, size=60)) + ".\n"
        (folder / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("tokenizer", ["bpe", "bytes"])
def test_text_folder_round_trips(tmp_path, tokenizer):
    from tokenizers import Tokenizer

    folder = _write_texts(tmp_path / "texts")
    cfg = {**TEXT_DEFAULTS, "source": "text", "path": str(folder), "tokenizer": tokenizer}
    meta = prepare_corpus(cfg, 1000, tmp_path / "out", tmp_path / "cache", log=lambda s: None)
    train, val, _ = load_corpus(tmp_path / "out")
    tokens = np.concatenate([train, val])
    documents = tokens_to_documents(tokens, meta, tmp_path / "out", Tokenizer)
    original = [p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())]
    assert documents == original
    assert meta["documents"] == 40 and len(meta["source_sha256"]) == 40
    # BPE stops early when the corpus has no more pairs to merge
    assert (257 < meta["vocab_size"] <= 300) if tokenizer == "bpe" else meta["vocab_size"] == 257


def tokens_to_documents(tokens, meta, folder, Tokenizer):
    end = meta["end_token"]
    cuts = np.flatnonzero(tokens == end)
    pieces = np.split(tokens, cuts + 1)[:-1]
    if meta["tokenizer"] == "bytes":
        return [bytes(p[:-1].astype(np.uint8)).decode("utf-8") for p in pieces]
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return [tok.decode(p[:-1].tolist()) for p in pieces]


def test_download_source_is_verified_against_its_pin(tmp_path):
    folder = _write_texts(tmp_path / "texts", n=3)
    source = folder / "doc00.txt"
    url = source.as_uri()  # the real download code, pointed at a local file
    cfg = {**TEXT_DEFAULTS, "source": "download", "url": url, "sha256": sha256_of(source),
           "tokenizer": "bytes"}
    meta = prepare_corpus(cfg, 10, tmp_path / "out", tmp_path / "cache", log=lambda s: None)
    assert meta["url"] == url and (tmp_path / "cache" / "doc00.txt").exists()
    with pytest.raises(CorpusError, match="corpus.url: .*does not match the pinned"):
        prepare_corpus({**cfg, "sha256": "0" * 64}, 10, tmp_path / "out2", tmp_path / "cache2",
                       log=lambda s: None)


def test_bad_corpora_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="corpus.path: .* is an empty folder"):
        prepare_corpus({**TEXT_DEFAULTS, "source": "text", "path": str(empty)}, 10, tmp_path / "o",
                       tmp_path / "c", log=lambda s: None)
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("café".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.txt is not UTF-8 text \(byte 3"):
        prepare_corpus({**TEXT_DEFAULTS, "source": "text", "path": str(binary)}, 10, tmp_path / "o",
                       tmp_path / "c", log=lambda s: None)
    folder = _write_texts(tmp_path / "texts", n=4)
    with pytest.raises(CorpusError, match=r"has [\d,]+ training tokens but the largest run needs "
                                          r"1,000,000 \(\d+ epochs\)"):
        prepare_corpus({**TEXT_DEFAULTS, "source": "text", "path": str(folder), "tokenizer": "bytes"},
                       1_000_000, tmp_path / "o", tmp_path / "c", log=lambda s: None)
    meta = prepare_corpus({**TEXT_DEFAULTS, "source": "text", "path": str(folder),
                           "tokenizer": "bytes", "allow_repeat": True}, 1_000_000, tmp_path / "o",
                          tmp_path / "c", log=lambda s: None)
    assert meta["allow_repeat"] and meta["train_tokens"] < 1_000_000


# ---- python_stdlib: offline real text on every machine --------------------------------------
def test_stdlib_corpus_files_order_exclusions_and_digest(tmp_path):
    import hashlib

    from scaling_atlas.corpus.text import stdlib_corpus

    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "site-packages").mkdir()
    (root / "b.py").write_text("b = 2\n")
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "a.py").write_text("z = 0\n")
    (root / "site-packages" / "x.py").write_text("installed = True\n")
    (root / "latin.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    (root / "notes.txt").write_text("not python\n")
    documents, meta = stdlib_corpus(root=root)
    assert documents == ["z = 0\n", "b = 2\n", "a = 1\n"]  # a.py, b.py, pkg/a.py
    assert meta["stdlib_files"] == 3 and meta["stdlib_skipped_not_utf8"] == ["latin.py"]
    expected = hashlib.sha256(b"a.py\0z = 0\nb.py\0b = 2\npkg/a.py\0a = 1\n").hexdigest()
    assert meta["stdlib_sha256"] == expected
    assert stdlib_corpus(max_documents=2, root=root)[0] == documents[:2]


def test_python_stdlib_corpus_is_deterministic_and_pinned(tmp_path):
    import platform

    cfg = {"source": "python_stdlib", "tokenizer": "bpe", "vocab_size": 300, "val_fraction": 0.1,
           "allow_repeat": True, "seq_len_margin": 17, "max_documents": 30, "sha256": ""}
    first = prepare_corpus(cfg, 20_000, tmp_path / "a", tmp_path / "cache", log=lambda s: None)
    again = prepare_corpus(cfg, 20_000, tmp_path / "b", tmp_path / "cache", log=lambda s: None)
    assert first["train_sha256"] == again["train_sha256"] and first["stdlib_sha256"] == again["stdlib_sha256"]
    assert first["python_version"] == platform.python_version() and first["stdlib_files"] == 30
    assert first["vocab_size"] == 300 and first["bigram_cross_entropy_nats"] < first["unigram_entropy_nats"]
    pinned = dict(cfg, sha256=first["stdlib_sha256"])
    assert prepare_corpus(pinned, 20_000, tmp_path / "c", tmp_path / "cache",
                          log=lambda s: None)["train_sha256"] == first["train_sha256"]
    with pytest.raises(CorpusError, match=f"standard library of Python {platform.python_version()}"):
        prepare_corpus(dict(cfg, sha256="0" * 64), 20_000, tmp_path / "d", tmp_path / "cache",
                       log=lambda s: None)
