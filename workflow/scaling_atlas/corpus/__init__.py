"""Corpora for the transformer studies: a synthetic grammar (default) or real text.

:func:`prepare_corpus` writes ``train.npy`` and ``val.npy`` (token ids, uint16 below 65,537 ids; read back
memory-mapped) and ``meta.json`` (vocabulary, token counts, source checksums, and for the
grammar its spec and exact entropy rate).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from scaling_atlas.atomic import atomic_path, write_text
from scaling_atlas.corpus.grammar import (Grammar, GrammarSpec, build_grammar,
                                          rank_frequency_exponent, sample_documents)
from scaling_atlas.corpus.text import (CorpusError, checksums, corpus_files, fetch,
                                       read_documents, stdlib_corpus, tokenize)
from scaling_atlas.datasets import sha256_of

__all__ = ["CorpusError", "prepare_corpus", "write_corpus", "load_corpus", "grammar_spec",
           "unigram_entropy", "bigram_cross_entropy"]

DOCUMENTS_PER_CHUNK = 100_000


def grammar_spec(corpus_cfg: dict) -> GrammarSpec:
    return GrammarSpec(**corpus_cfg.get("grammar", {}))


def token_dtype(vocab_size: int):
    """uint16 when every id fits (half the disk and page cache of int32), else int32."""
    return np.uint16 if vocab_size <= 1 << 16 else np.int32


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    counts = np.bincount(tokens, minlength=vocab_size).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def bigram_cross_entropy(train: np.ndarray, val: np.ndarray, vocab_size: int,
                         smoothing: float = 0.1) -> float:
    """The loss of a bigram model on ``val`` (nats/token): p(b | a) estimated from ``train``'s
    pair counts with additive ``smoothing``. Every model must get below this "bigram level" to
    have learned anything beyond neighbouring-token statistics (the plateau premise of the
    transformer studies' claims). Sparse (pairs as a·V + b), so large vocabularies fit."""
    train, val = np.asarray(train, np.int64), np.asarray(val, np.int64)
    V = int(vocab_size)
    keys, counts = np.unique(train[:-1] * V + train[1:], return_counts=True)
    context = np.bincount(train[:-1], minlength=V).astype(float)
    query = val[:-1] * V + val[1:]
    at = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    pair = np.where(keys[at] == query, counts[at], 0).astype(float)
    p = (pair + smoothing) / (context[val[:-1]] + smoothing * V)
    return float(-np.log(p).mean())


def _grammar_tokens(grammar: Grammar, n_tokens: int, stream: int) -> tuple[np.ndarray, dict]:
    """The first ``n_tokens`` tokens of sampling stream ``stream``.

    Chunks of a fixed number of documents, each from its own seed, make the stream
    prefix-stable: a grid that needs more tokens extends the same text instead of redrawing it.
    """
    spec = grammar.spec
    chunks, total, log_prob, chunk = [], 0, 0.0, 0
    counts = None
    while total < n_tokens:
        rng = np.random.default_rng([spec.seed, stream, chunk])
        sample = sample_documents(grammar, DOCUMENTS_PER_CHUNK, rng)
        chunks.append(sample.tokens.astype(token_dtype(spec.vocab_size)))
        total += len(sample.tokens)
        log_prob += sample.log_prob
        counts = sample.choice_counts if counts is None else counts + sample.choice_counts
        chunk += 1
    tokens = np.concatenate(chunks)[:n_tokens]
    stats = {"empirical_entropy_rate": -log_prob / total,
             "sampled_rule_zipf_exponent": rank_frequency_exponent(counts[1:], min_count=0,
                                                                   ranks=(300, 3000))}
    return tokens, stats


def prepare_corpus(corpus_cfg: dict, tokens_needed: int, out_dir: str | Path,
                   cache_dir: str | Path, log: Callable[[str], None] = print) -> dict:
    """Build the corpus described by ``corpus_cfg`` into ``out_dir``; returns its metadata.

    ``tokens_needed``: training tokens the largest run of the grid consumes. The grammar
    generates that many (plus one window of margin); real text must hold them unless
    ``allow_repeat`` is set.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = corpus_cfg["source"]
    meta: dict = {"source": source, "tokens_needed": int(tokens_needed),
                  "allow_repeat": bool(corpus_cfg.get("allow_repeat", False))}
    if source == "grammar":
        spec = grammar_spec(corpus_cfg)
        grammar = build_grammar(spec)
        train, stats = _grammar_tokens(grammar, tokens_needed + corpus_cfg["seq_len_margin"], stream=1)
        val, _ = _grammar_tokens(grammar, corpus_cfg["val_tokens"], stream=2)
        meta.update(
            vocab_size=spec.vocab_size, end_token=grammar.end_token, tokenizer="none (grammar ids)",
            grammar=spec.to_dict(), entropy_rate_nats=grammar.entropy_rate,
            mean_document_length=grammar.mean_document_length,
            rule_table_size=int(np.prod(grammar.probs.shape)), **stats,
            rule_zipf_exponent=grammar.spectrum_exponent(300, 30_000),
            rule_zipf_ranks=[300, 30_000],
            nesting_depth_uses=[round(float(u), 6) for u in grammar.depth_profile()],
            note="entropy_rate_nats is the exact entropy of the token stream (irreducible loss "
                 "with unbounded context); a model with context T pays a little more at the "
                 "start of each window")
        log(f"grammar: {len(train):,} training tokens, entropy rate {grammar.entropy_rate:.4f} "
            f"nats/token (sampled: {stats['empirical_entropy_rate']:.4f})")
    else:
        if source == "python_stdlib":
            documents, provenance = stdlib_corpus(corpus_cfg.get("max_documents", 0))
            pinned = corpus_cfg.get("sha256", "")
            if pinned and pinned != provenance["stdlib_sha256"]:
                raise CorpusError(
                    f"corpus.sha256: the standard library of Python {provenance['python_version']} "
                    f"at {provenance['stdlib_folder']} has sha256 {provenance['stdlib_sha256']}, not "
                    f"the pinned {pinned}: another interpreter's library (run with the Python the "
                    "pin was made with, or update the pin)")
            meta.update(provenance)
            files = []
        elif source == "download":
            files = [fetch(corpus_cfg["url"], corpus_cfg["sha256"], cache_dir)]
            meta["url"] = corpus_cfg["url"]
        elif source == "text":
            files = corpus_files(corpus_cfg["path"])
        else:
            raise CorpusError(f"corpus.source: unknown source {source!r}")
        if files:
            documents = read_documents(files)
        tokens, vocab, end = tokenize(documents, corpus_cfg["tokenizer"], corpus_cfg["vocab_size"],
                                      save_to=out / "tokenizer.json")
        n_val = max(corpus_cfg["seq_len_margin"] + 1, round(corpus_cfg["val_fraction"] * len(tokens)))
        if n_val >= len(tokens):
            raise CorpusError(f"corpus: {len(tokens):,} tokens are too few for a validation "
                              f"split of {n_val:,}")
        # the held-out split is the tail of the stream (whole files or documents in order)
        train, val = tokens[:-n_val], tokens[-n_val:]
        meta.update(vocab_size=int(vocab), end_token=int(end), tokenizer=corpus_cfg["tokenizer"],
                    documents=len(documents))
        if files:
            meta["source_sha256"] = checksums(files)
        if len(train) < tokens_needed:
            epochs = math.ceil(tokens_needed / len(train))
            if not meta["allow_repeat"]:
                raise CorpusError(
                    f"corpus: the corpus has {len(train):,} training tokens but the largest run "
                    f"needs {tokens_needed:,} ({epochs} epochs); add text, shrink the budgets, or "
                    "set corpus.allow_repeat: true (epochs are then recorded per run)")
            log(f"corpus repeats: the largest run needs {epochs} epochs")
        log(f"{source}: {len(documents):,} documents → {len(train):,} train + {len(val):,} "
            f"validation tokens, vocabulary {vocab}")
    return write_corpus(out, train, val, meta)


def write_corpus(out: Path, train: np.ndarray, val: np.ndarray, meta: dict) -> dict:
    """Write ``train.npy``, ``val.npy`` and ``meta.json`` (``meta`` needs ``vocab_size``; token
    counts, unigram statistics and the arrays' sha256 are added); returns the metadata."""
    dtype = token_dtype(meta["vocab_size"])
    for name, tokens in (("train.npy", train), ("val.npy", val)):
        with atomic_path(out / name) as tmp:
            np.save(tmp, tokens.astype(dtype))
    meta.update(
        train_tokens=int(len(train)), val_tokens=int(len(val)),
        unigram_entropy_nats=unigram_entropy(train, meta["vocab_size"]),
        bigram_cross_entropy_nats=bigram_cross_entropy(train, val, meta["vocab_size"]),
        token_zipf_exponent=rank_frequency_exponent(np.bincount(train, minlength=meta["vocab_size"])),
        train_sha256=sha256_of(out / "train.npy"), val_sha256=sha256_of(out / "val.npy"))
    write_text(out / "meta.json", json.dumps(meta, indent=2, default=float) + "\n")
    return meta


def load_corpus(folder: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train, val) token arrays, memory-mapped, and the metadata."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    return (np.load(folder / "train.npy", mmap_mode="r"), np.load(folder / "val.npy", mmap_mode="r"),
            meta)
