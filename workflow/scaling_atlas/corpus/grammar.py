"""A synthetic language with power-law structure at several scales, and its exact entropy.

The generator is a random, *unambiguous* probabilistic context-free grammar arranged in levels
(document → phrases → sub-phrases → words). Every nonterminal X has ``rules`` expansions chosen
with Zipf probabilities p_j ∝ j^(−zipf_exponent). Expansion j of X is

    lead terminal t_{X,j},  then a random order of ``fixed`` terminals and child nonterminals
                            of the next level (none at the last level),

and the lead terminals of one nonterminal are distinct, so the grammar is LL(1): a reader who
knows the parse state learns the choice from one token, and everything after the lead is fixed
by the rule. A model therefore has to *memorise* the rule table (Σ_levels K_ℓ × rules entries,
each with a Zipf-distributed frequency): a small model stores only the frequent rules, a large
one the tail too, which is the "quanta" mechanism behind power-law loss curves (Hutter 2021;
Michaud et al. 2023). Terminals are drawn from a Zipf distribution over the vocabulary
(``token_zipf``), so unigram frequencies are Zipf-like as in natural text.

Documents are the expansions of the start symbol, each followed by an end-of-document token.
Because the grammar is unambiguous, the entropy of a document is the entropy of its derivation:

    H(X) = H(p_X) + Σ_j p_j Σ_{Y ∈ children(j)} H(Y),    ℓ(X) = Σ_j p_j (1 + a_j + Σ_Y ℓ(Y)),

solved bottom-up (levels are strictly ordered), and the entropy rate of the token stream is
h = H(S) / (ℓ(S) + 1) nats per token (the +1 is the end token, which carries no information).
h is the irreducible loss of a model with unbounded context; a model that sees T tokens is
slightly worse at the start of each window, before it has seen a document boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

PAD = -1


@dataclass(frozen=True)
class GrammarSpec:
    vocab_size: int = 512  # terminals, plus one end-of-document token
    nonterminals: tuple[int, ...] = (1, 16, 64, 256)  # per level; level 0 is the start symbol
    rules: int = 32  # expansions per nonterminal
    zipf_exponent: float = 1.2  # p_j ∝ j^(−s) over a nonterminal's expansions
    token_zipf: float = 1.0  # terminals are drawn with weights ∝ rank^(−token_zipf)
    children: tuple[int, int] = (1, 3)  # child nonterminals per expansion (inclusive range)
    fixed: tuple[int, int] = (0, 2)  # fixed terminals after the lead (inclusive range)
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "nonterminals", tuple(int(k) for k in self.nonterminals))
        object.__setattr__(self, "children", tuple(self.children))
        object.__setattr__(self, "fixed", tuple(self.fixed))
        if self.nonterminals[0] != 1:
            raise ValueError("grammar.nonterminals: level 0 must hold exactly 1 start symbol")
        if self.rules > self.vocab_size - 1:
            raise ValueError(f"grammar.rules = {self.rules} needs as many distinct lead "
                             f"terminals; vocab_size - 1 = {self.vocab_size - 1}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Grammar:
    """The compiled rule table: right-hand sides as a padded symbol array.

    Symbols: terminals 0 … V−2, the end token V−1, nonterminal k as V + k.
    """

    spec: GrammarSpec
    rhs: np.ndarray  # (K, rules, max_len) symbols, PAD after the end
    probs: np.ndarray  # (K, rules) expansion probabilities
    level: np.ndarray  # (K,) level of each nonterminal
    entropy: np.ndarray = field(init=False)  # (K,) derivation entropy H(X), nats
    length: np.ndarray = field(init=False)  # (K,) expected terminals ℓ(X)

    def __post_init__(self):
        self.entropy, self.length = derivation_moments(self)

    @property
    def vocab_size(self) -> int:
        return self.spec.vocab_size

    @property
    def end_token(self) -> int:
        return self.spec.vocab_size - 1

    @property
    def entropy_rate(self) -> float:
        """Entropy of the token stream, nats per token (the irreducible loss)."""
        return float(self.entropy[0] / (self.length[0] + 1.0))

    @property
    def mean_document_length(self) -> float:
        return float(self.length[0] + 1.0)


def zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    return weights / weights.sum()


def build_grammar(spec: GrammarSpec) -> Grammar:
    """Draw the rule table from ``spec.seed`` (deterministic)."""
    rng = np.random.default_rng([spec.seed, 0])
    n_terminals = spec.vocab_size - 1
    token_weights = zipf_probabilities(n_terminals, spec.token_zipf)
    # a random assignment of Zipf ranks to token ids, so id order carries no frequency signal
    rank_to_token = rng.permutation(n_terminals)
    levels = np.repeat(np.arange(len(spec.nonterminals)), spec.nonterminals)
    first_of_level = np.concatenate([[0], np.cumsum(spec.nonterminals)])
    K, r = len(levels), spec.rules
    max_len = 1 + spec.fixed[1] + spec.children[1]
    rhs = np.full((K, r, max_len), PAD, dtype=np.int64)
    for k in range(K):
        leads = rank_to_token[rng.choice(n_terminals, size=r, replace=False, p=token_weights)]
        last = levels[k] == len(spec.nonterminals) - 1
        for j in range(r):
            a = rng.integers(spec.fixed[0], spec.fixed[1] + 1)
            fixed = rank_to_token[rng.choice(n_terminals, size=a, p=token_weights)]
            if last:
                body = list(fixed)
            else:
                c = rng.integers(spec.children[0], spec.children[1] + 1)
                lo, hi = first_of_level[levels[k] + 1], first_of_level[levels[k] + 2]
                kids = spec.vocab_size + rng.integers(lo, hi, size=c)
                body = list(fixed) + list(kids)
                rng.shuffle(body)
            rhs[k, j, : 1 + len(body)] = [leads[j], *body]
    probs = np.tile(zipf_probabilities(r, spec.zipf_exponent), (K, 1))
    return Grammar(spec, rhs, probs, levels)


def derivation_moments(grammar: Grammar) -> tuple[np.ndarray, np.ndarray]:
    """H(X) and ℓ(X) for every nonterminal, deepest level first (children are deeper)."""
    V = grammar.spec.vocab_size
    K = len(grammar.level)
    entropy, length = np.zeros(K), np.zeros(K)
    choice_entropy = -(grammar.probs * np.log(grammar.probs)).sum(axis=1)
    for k in np.argsort(-grammar.level, kind="stable"):
        rhs = grammar.rhs[k]
        is_child = rhs >= V
        child = np.where(is_child, rhs - V, 0)
        terminals = ((rhs >= 0) & ~is_child).sum(axis=1)
        child_entropy = np.where(is_child, entropy[child], 0.0).sum(axis=1)
        child_length = np.where(is_child, length[child], 0.0).sum(axis=1)
        entropy[k] = choice_entropy[k] + grammar.probs[k] @ child_entropy
        length[k] = grammar.probs[k] @ (terminals + child_length)
    return entropy, length


@dataclass
class Sample:
    tokens: np.ndarray  # int32 token ids
    log_prob: float  # Σ ln p of every expansion choice (exact log-likelihood of the tokens)
    choice_counts: np.ndarray  # (K, rules) how often each expansion was chosen


def sample_documents(grammar: Grammar, n_documents: int, rng: np.random.Generator) -> Sample:
    """Expand ``n_documents`` start symbols level by level, all documents at once (vectorised)."""
    V = grammar.spec.vocab_size
    K, r, _ = grammar.rhs.shape
    cumulative = np.cumsum(grammar.probs, axis=1)
    cumulative[:, -1] = 1.0
    log_probs = np.log(grammar.probs)
    symbols = np.empty(2 * n_documents, dtype=np.int64)
    symbols[0::2], symbols[1::2] = V, grammar.end_token  # start symbol, end token
    counts = np.zeros((K, r), dtype=np.int64)
    log_prob = 0.0
    while True:
        is_nt = symbols >= V
        if not is_nt.any():
            break
        nt = symbols[is_nt] - V
        u = rng.random(len(nt))
        choice = (u[:, None] > cumulative[nt]).sum(axis=1)
        np.add.at(counts, (nt, choice), 1)
        log_prob += float(log_probs[nt, choice].sum())
        rows = np.full((len(symbols), grammar.rhs.shape[2]), PAD, dtype=np.int64)
        rows[~is_nt, 0] = symbols[~is_nt]
        rows[is_nt] = grammar.rhs[nt, choice]
        symbols = rows[rows != PAD]
    return Sample(symbols.astype(np.int32), log_prob, counts)


def rank_frequency_exponent(counts: np.ndarray, min_count: int = 5) -> float:
    """s in frequency ∝ rank^(−s): least squares of ln count on ln rank (counts ≥ min_count)."""
    ranked = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    ranked = ranked[ranked >= min_count]
    if len(ranked) < 3:
        return float("nan")
    ranks = np.arange(1, len(ranked) + 1)
    slope = np.polyfit(np.log(ranks), np.log(ranked), 1)[0]
    return float(-slope)
