"""A synthetic pretraining corpus whose documents need in-context retrieval or only local statistics.

Every document is exactly ``T`` tokens and starts with BOS. Two (or more) domains, each with its
own first-order Markov source (sparse Zipf transitions over the content tokens), and in each
domain two hidden kinds:

* ``local`` (label 0): BOS then a sample of the domain's Markov chain, predictable from the
  previous token alone.
* ``retrieval`` (label 1), half each of two types:
  - *key–value* documents: records ``k v₁ v₂ ;`` with distinct random keys and random values,
    then queries ``? k v₁ v₂`` in a random order, whose values can only be recalled from the
    context;
  - *repeat* documents: a random segment that appears twice at random places in the domain's
    Markov text. The gap between the copies varies, so only matching content (an induction head)
    predicts the second copy; with a fixed offset a positional head copies it instead (measured:
    it then never learns recall).

The labels are ours: the selection method never sees them. Generation is vectorised and
deterministic in (spec, stream).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOS, SEP, QUERY = 0, 1, 2
SPECIAL = 3  # content tokens are SPECIAL … vocab_size − 1
KEY_LEN, VALUE_LEN = 1, 2
KINDS = ("local", "key_value", "repeat")


@dataclass(frozen=True)
class CorpusSpec:
    seq_len: int = 32  # T: tokens per document
    vocab_size: int = 64
    domains: int = 2
    records: int = 3  # key–value records per key–value document
    successors: int = 4  # likely next tokens of each token in a Markov source
    zipf: float = 1.2  # exponent of the successor probabilities
    seed: int = 0

    @classmethod
    def from_settings(cls, corpus: dict, seed: int) -> CorpusSpec:
        """From a study's ``corpus`` settings (seq_len, vocab_size, domains, records,
        successors, zipf) and the generator's seed."""
        return cls(seq_len=corpus["seq_len"], vocab_size=corpus["vocab_size"],
                   domains=corpus["domains"], records=corpus["records"],
                   successors=corpus["successors"], zipf=corpus["zipf"], seed=seed)

    @property
    def content(self) -> int:
        return self.vocab_size - SPECIAL

    def problems(self) -> list[str]:
        """Readable problems with the shape (config validation calls this before any job)."""
        out = []
        need = 1 + self.records * (KEY_LEN + VALUE_LEN + 1) * 2
        if self.seq_len < need:
            out.append(f"seq_len = {self.seq_len} cannot hold {self.records} records and their "
                       f"queries (needs ≥ {need})")
        if self.content < max(2 * self.successors, self.records):
            out.append(f"vocab_size = {self.vocab_size} leaves too few content tokens "
                       f"({self.content}) for {self.successors} successors and {self.records} keys")
        if self.seq_len < 16:
            out.append(f"seq_len = {self.seq_len} is too short for a repeated segment (≥ 16)")
        return out


def markov_sources(spec: CorpusSpec) -> np.ndarray:
    """(domains, C, C) transition matrices: each token has ``successors`` likely next tokens
    (Zipf weights) plus a small floor, different in every domain."""
    rng = np.random.default_rng([spec.seed, 7919])
    C = spec.content
    weights = np.arange(1, spec.successors + 1, dtype=float) ** -spec.zipf
    out = np.full((spec.domains, C, C), 0.02 / C)
    for d in range(spec.domains):
        for token in range(C):
            nxt = rng.choice(C, spec.successors, replace=False)
            out[d, token, nxt] += 0.98 * weights / weights.sum()
    return out / out.sum(-1, keepdims=True)


def markov_chains(rng, tables: np.ndarray, domain: np.ndarray, length: int) -> np.ndarray:
    """(n, length) content tokens: one chain per document from its domain's source."""
    cdf = np.cumsum(tables, axis=-1)
    cdf[..., -1] = 1.0
    n, C = len(domain), tables.shape[1]
    out = np.empty((n, length), dtype=np.int64)
    state = rng.integers(C, size=n)
    draws = rng.random((n, length))
    for i in range(length):
        state = (cdf[domain, state] < draws[:, i, None]).sum(1)
        out[:, i] = state
    return out + SPECIAL


def key_value_documents(rng, spec: CorpusSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (n, T) and the mask of the queried value tokens (the recall targets)."""
    R, T = spec.records, spec.seq_len
    keys = np.argsort(rng.random((n, spec.content)), axis=1)[:, :R] + SPECIAL  # distinct
    values = rng.integers(spec.content, size=(n, R, VALUE_LEN)) + SPECIAL
    order = np.argsort(rng.random((n, R)), axis=1)
    rows = np.arange(n)[:, None]
    records = np.concatenate([keys[..., None], values, np.full((n, R, 1), SEP)], axis=2)
    queries = np.concatenate([np.full((n, R, 1), QUERY), keys[rows, order][..., None],
                              values[rows, order]], axis=2)
    body = np.concatenate([np.full((n, 1), BOS), records.reshape(n, R * records.shape[2]),
                           queries.reshape(n, R * queries.shape[2])], axis=1)
    tokens = np.full((n, T), SEP, dtype=np.int64)
    tokens[:, : body.shape[1]] = body
    recall = np.zeros((n, T), dtype=bool)
    query_start = 1 + R * (KEY_LEN + VALUE_LEN + 1)
    for r in range(R):
        first_value = query_start + r * (1 + KEY_LEN + VALUE_LEN) + 1 + KEY_LEN
        recall[:, first_value : first_value + VALUE_LEN] = True
    return tokens, recall


def repeat_documents(rng, spec: CorpusSpec, tables, domain) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (n, T) and the mask of the second copy's tokens after its first (the induction
    targets: the copy's first token cannot be predicted)."""
    n, T = len(domain), spec.seq_len
    tokens = np.concatenate([np.full((n, 1), BOS), markov_chains(rng, tables, domain, T - 1)], 1)
    length = rng.integers(T // 8, T // 4 + 1, size=n)
    room = T - 1 - 2 * length  # filler tokens around and between the two copies
    gap = 1 + (rng.random(n) * room).astype(int)  # 1 … room
    first = 1 + (rng.random(n) * (room - gap + 1)).astype(int)
    second = first + length + gap
    j = np.arange(T)[None, :]
    in_first = (j >= first[:, None]) & (j < (first + length)[:, None])
    in_second = (j >= second[:, None]) & (j < (second + length)[:, None])
    tokens = np.where(in_first, rng.integers(spec.content, size=(n, T)) + SPECIAL, tokens)
    source = np.clip(j - (second - first)[:, None], 0, T - 1)
    tokens = np.where(in_second, np.take_along_axis(tokens, source, axis=1), tokens)
    return tokens, in_second & (j > second[:, None])


@dataclass
class Documents:
    tokens: np.ndarray  # (n, T) int64
    label: np.ndarray  # (n,) 1 retrieval-heavy, 0 local
    domain: np.ndarray  # (n,)
    kind: np.ndarray  # (n,) index into KINDS


def sample_documents(spec: CorpusSpec, n: int, retrieval_fraction: float, stream: int) -> Documents:
    """``n`` documents: each retrieval-heavy with probability ``retrieval_fraction`` (then half
    key–value, half repeat), in a uniformly drawn domain. Reproducible per (spec, stream)."""
    rng = np.random.default_rng([spec.seed, stream])
    tables = markov_sources(spec)
    domain = rng.integers(spec.domains, size=n)
    retrieval = rng.random(n) < retrieval_fraction
    kind = np.where(retrieval, 1 + rng.integers(2, size=n), 0)
    tokens = np.empty((n, spec.seq_len), dtype=np.int64)
    local = kind == 0
    tokens[local] = np.concatenate(
        [np.full((local.sum(), 1), BOS), markov_chains(rng, tables, domain[local], spec.seq_len - 1)],
        axis=1)
    tokens[kind == 1] = key_value_documents(rng, spec, int((kind == 1).sum()))[0]
    tokens[kind == 2] = repeat_documents(rng, spec, tables, domain[kind == 2])[0]
    return Documents(tokens, retrieval.astype(np.int64), domain, kind)


def key_value_probe(spec: CorpusSpec, n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, T) key–value documents and the (n, T) mask of their recall targets."""
    return key_value_documents(np.random.default_rng([spec.seed, stream]), spec, n)


def repeat_probe(spec: CorpusSpec, n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, T) repeat documents (domains alternating) and the mask of their induction targets."""
    rng = np.random.default_rng([spec.seed, stream])
    return repeat_documents(rng, spec, markov_sources(spec), np.arange(n) % spec.domains)


def flatten(tokens: np.ndarray) -> np.ndarray:
    """Documents as one stream for the LM trainer, whose windows of T + 1 tokens then start at
    each document's BOS (the extra token is the next document's BOS)."""
    return np.concatenate([tokens.reshape(-1), [BOS]]).astype(np.uint16)
