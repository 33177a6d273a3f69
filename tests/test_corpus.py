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
    grammar = build_grammar(GrammarSpec(seed=3))
    sample = sample_documents(grammar, 50_000, np.random.default_rng(0))
    empirical = -sample.log_prob / len(sample.tokens)
    assert empirical == pytest.approx(grammar.entropy_rate, rel=0.01)
    # documents end with the end token and their mean length matches ℓ(S) + 1
    assert (sample.tokens == grammar.end_token).sum() == 50_000
    assert len(sample.tokens) / 50_000 == pytest.approx(grammar.mean_document_length, rel=0.02)


@pytest.mark.parametrize("exponent", [0.8, 1.5])
def test_expansion_frequencies_follow_the_zipf_exponent(exponent):
    grammar = build_grammar(GrammarSpec(zipf_exponent=exponent, rules=24))
    sample = sample_documents(grammar, 200_000, np.random.default_rng(1))
    assert rank_frequency_exponent(sample.choice_counts[0]) == pytest.approx(exponent, abs=0.05)


def test_grammar_is_unambiguous_and_deterministic():
    spec = GrammarSpec(seed=5)
    g1, g2 = build_grammar(spec), build_grammar(spec)
    np.testing.assert_array_equal(g1.rhs, g2.rhs)
    leads = g1.rhs[:, :, 0]
    assert all(len(set(row)) == spec.rules for row in leads)  # LL(1): distinct lead terminals
    a = sample_documents(g1, 100, np.random.default_rng(9)).tokens
    b = sample_documents(g2, 100, np.random.default_rng(9)).tokens
    np.testing.assert_array_equal(a, b)


def test_prepare_grammar_corpus(tmp_path):
    cfg = {"source": "grammar", "grammar": {"vocab_size": 128, "nonterminals": [1, 4, 16]},
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
