"""A synthetic language whose rule-use frequencies follow one power law, and its exact entropy.

The generator is a random, *unambiguous* probabilistic context-free grammar built for scaling
studies (issue #17): a model of it has to memorise a table of ≥ 10⁵ rules whose frequencies of
use follow a single power law f ∝ rank^(−s), the premise of the "quanta" picture of neural
scaling (Hutter 2021; Michaud et al. 2023), over several decades of rank.

**Rules.** Nonterminals X_1 … X_K each have ``rules`` expansions with probabilities
p_j ∝ j^(−within_exponent), the same shape for every nonterminal. Expansion j of X is

    lead terminal t_{X,j},  then a random order of ``fixed`` terminals and child nonterminals,

with the lead terminals of one nonterminal distinct, so the grammar is LL(1): a reader who knows
the parse state learns the choice from one token, and everything after the lead is fixed by the
rule. Children always have a larger index than their parent (the grammar is a DAG, so every
derivation ends). A document is the expansion of the start symbol S → X_a X_b … (``top_slots``
children, no choice), followed by an end-of-document token. Terminals are drawn from a Zipf
distribution over the vocabulary (``token_zipf``), so unigram frequencies are Zipf-like.

**The power law.** The expected uses per document of X_k are made ∝ k^(−s) (s =
``zipf_exponent``): children are wired top-down, each child slot of a rule going to the later
nonterminal that most lacks uses, and only where it fits (a slot is dropped rather than overfill
its target). A rule's frequency is then U(X_k)·p_j. With within_exponent < s the count of rules
used more often than v is Σ_k #{j : U_k p_j > v} ∝ v^(−1/s), so the rule-use spectrum is
f ∝ rank^(−s) from ranks above ``rules`` (where one nonterminal's flat top ends) to the tail;
:meth:`Grammar.spectrum_exponent` measures it on the exact usages.

**Quanta prediction (derived, approximate).** If a model learns rules in order of frequency and
each learned rule removes a fixed share of its uses' loss, a model that knows the n most
frequent rules has excess loss ∝ Σ_{r>n} r^(−s) ∝ n^(1−s): α_N ≈ s − 1 when n ∝ N, and, from
the data side, α_D ≈ (s − 1)/s. Hoffmann's allocation exponent is then
a = β/(α + β) ≈ 1/(s + 1) (:func:`quanta_predictions`). These are targets derived from an
idealised model, not measurements of the grammar.

**Entropy.** Because the grammar is unambiguous, the entropy of a document is the entropy of
its derivation:

    H(X) = H(p_X) + Σ_j p_j Σ_{Y ∈ children(j)} H(Y),    ℓ(X) = Σ_j p_j (a_j + Σ_Y ℓ(Y)),

solved from the last nonterminal to the first, and the entropy rate of the token stream is
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
    vocab_size: int = 128  # terminals, plus one end-of-document token
    nonterminals: int = 2000  # K, besides the start symbol
    rules: int = 64  # expansions per nonterminal (≤ vocab_size − 1: distinct leads)
    zipf_exponent: float = 1.35  # s: uses of X_k ∝ k^(−s), so rule uses ∝ rank^(−s)
    within_exponent: float = 0.3  # p_j ∝ j^(−within_exponent) inside each nonterminal (< s)
    top_slots: int = 8  # children of the start symbol
    token_zipf: float = 1.0  # terminals are drawn with weights ∝ rank^(−token_zipf)
    children: tuple[int, int] = (1, 3)  # child slots tried per expansion (inclusive range)
    fixed: tuple[int, int] = (0, 2)  # fixed terminals after the lead (inclusive range)
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "children", tuple(int(c) for c in self.children))
        object.__setattr__(self, "fixed", tuple(int(c) for c in self.fixed))
        problems = []
        if self.rules > self.vocab_size - 1:
            problems.append(f"grammar.rules = {self.rules} needs as many distinct lead terminals; "
                            f"vocab_size - 1 = {self.vocab_size - 1}")
        if self.nonterminals < 2:
            problems.append(f"grammar.nonterminals = {self.nonterminals}: at least 2")
        if not self.within_exponent < self.zipf_exponent:
            problems.append(f"grammar.within_exponent = {self.within_exponent} must be below "
                            f"zipf_exponent = {self.zipf_exponent} (else the rule-use spectrum "
                            "follows the within-nonterminal shape, not one power law)")
        for key in ("children", "fixed"):
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi:
                problems.append(f"grammar.{key} = [{lo}, {hi}] is not an inclusive range of counts ≥ 0")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Grammar:
    """The compiled rule table: right-hand sides as a padded symbol array.

    Symbols: terminals 0 … V−2, the end token V−1, nonterminal k as V + k; nonterminal 0 is the
    start symbol, and children always have a larger index than their parent.
    """

    spec: GrammarSpec
    rhs: np.ndarray  # (K + 1, rules, max_len) symbols, PAD after the end
    probs: np.ndarray  # (K + 1, rules) expansion probabilities (0 for absent expansions)
    entropy: np.ndarray = field(init=False)  # (K + 1,) derivation entropy H(X), nats
    length: np.ndarray = field(init=False)  # (K + 1,) expected terminals ℓ(X)

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

    # ---- exact usage ---------------------------------------------------------------------------
    def _uses_by_depth(self, max_depth: int = 64) -> list[np.ndarray]:
        """Expected uses of every nonterminal per document at nesting depth 1, 2, … (depth 1:
        the start's children), exact: uses flow down the DAG one level at a time."""
        V = self.spec.vocab_size
        parent, rule, _ = np.nonzero(self.rhs >= V)
        child = self.rhs[self.rhs >= V] - V
        weight = self.probs[parent, rule]
        current = np.zeros(len(self.probs))
        current[0] = 1.0
        depths = []
        for _ in range(max_depth):
            current = np.bincount(child, weights=current[parent] * weight, minlength=len(current))
            if current.sum() < 1e-12:
                break
            depths.append(current)
        return depths

    def nonterminal_usage(self) -> np.ndarray:
        """Expected uses of every nonterminal per document (the start's is 1)."""
        usage = np.sum(self._uses_by_depth(), axis=0)
        usage[0] = 1.0
        return usage

    def rule_usage(self) -> np.ndarray:
        """Expected uses of every expansion per document, (K + 1, rules); the start row is the
        start's single rule."""
        return self.nonterminal_usage()[:, None] * self.probs

    def spectrum_exponent(self, low: int = 300, high: int = 30_000) -> float:
        """s in f ∝ rank^(−s) over the ranks [low, high) of the exact rule usages (the start's
        rule excluded): least squares of ln f on ln rank."""
        return rank_frequency_exponent(self.rule_usage()[1:].ravel(), min_count=0, ranks=(low, high))

    def depth_profile(self) -> np.ndarray:
        """Expected rule uses per document at nesting depth 1, 2, …"""
        return np.array([uses.sum() for uses in self._uses_by_depth()])


def zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
    return weights / weights.sum()


def quanta_predictions(s: float) -> dict[str, float]:
    """What an idealised quanta model predicts for rule uses ∝ rank^(−s) (derived, approximate):
    α_N = s − 1, α_D = (s − 1)/s, a = β/(α + β) = 1/(s + 1), b = 1 − a."""
    alpha, beta = s - 1.0, (s - 1.0) / s
    return {"alpha_N": alpha, "alpha_D": beta, "a": beta / (alpha + beta), "b": alpha / (alpha + beta)}


def build_grammar(spec: GrammarSpec) -> Grammar:
    """Draw the rule table from ``spec.seed`` (deterministic)."""
    rng = np.random.default_rng([spec.seed, 0])
    V, K, R = spec.vocab_size, spec.nonterminals, spec.rules
    n_terminals = V - 1
    token_weights = zipf_probabilities(n_terminals, spec.token_zipf)
    # a random assignment of Zipf ranks to token ids, so id order carries no frequency signal
    rank_to_token = rng.permutation(n_terminals)
    within = zipf_probabilities(R, spec.within_exponent)
    # planned uses per document of X_1 … X_K: ∝ k^(−s), the first taking 90 % of the start's slots
    # (the larger its share, the more uses flow down and the deeper the derivations)
    plan = np.arange(1, K + 1, dtype=np.float64) ** -spec.zipf_exponent
    plan *= 0.9 * spec.top_slots / plan[0]
    deficit = np.concatenate([[-np.inf], plan])  # index = nonterminal (0: the start)
    received = np.zeros(K + 1)
    max_len = max(spec.top_slots, 1 + spec.fixed[1] + spec.children[1])
    rhs = np.full((K + 1, R, max_len), PAD, dtype=np.int64)
    probs = np.zeros((K + 1, R))

    def wire(parent: int, weight: float) -> int | None:
        """The later nonterminal that most lacks uses, if a slot of ``weight`` fits in it."""
        if parent + 1 > K:
            return None
        child = parent + 1 + int(np.argmax(deficit[parent + 1:]))
        if deficit[child] < weight and parent > 0:
            return None
        received[child] += weight
        deficit[child] -= weight
        return child

    top = [wire(0, 1.0) for _ in range(spec.top_slots)]
    rhs[0, 0, : len(top)] = [V + c for c in top]
    probs[0, 0] = 1.0
    slots = rng.integers(spec.children[0], spec.children[1] + 1, size=(K + 1, R))
    n_fixed = rng.integers(spec.fixed[0], spec.fixed[1] + 1, size=(K + 1, R))
    fixed_terminals = rank_to_token[rng.choice(n_terminals, size=(K + 1, R, max(spec.fixed[1], 1)),
                                               p=token_weights)]
    for k in range(1, K + 1):
        deficit[k] = -np.inf
        usage = received[k]
        leads = rank_to_token[rng.choice(n_terminals, size=R, replace=False, p=token_weights)]
        probs[k] = within
        for j in range(R):
            kids = []
            if usage > 0:
                for _ in range(slots[k, j]):
                    child = wire(k, usage * within[j])
                    if child is None:
                        break
                    kids.append(V + child)
            body = list(fixed_terminals[k, j, : n_fixed[k, j]]) + kids
            rng.shuffle(body)
            rhs[k, j, : 1 + len(body)] = [leads[j], *body]
    return Grammar(spec, rhs, probs)


def derivation_moments(grammar: Grammar) -> tuple[np.ndarray, np.ndarray]:
    """H(X) and ℓ(X) for every nonterminal, last first (children come later)."""
    V = grammar.spec.vocab_size
    K = len(grammar.probs)
    entropy, length = np.zeros(K), np.zeros(K)
    p = grammar.probs
    with np.errstate(divide="ignore", invalid="ignore"):
        choice_entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    for k in reversed(range(K)):
        rhs = grammar.rhs[k]
        is_child = rhs >= V
        child = np.where(is_child, rhs - V, 0)
        terminals = ((rhs >= 0) & ~is_child).sum(axis=1)
        child_entropy = np.where(is_child, entropy[child], 0.0).sum(axis=1)
        child_length = np.where(is_child, length[child], 0.0).sum(axis=1)
        entropy[k] = choice_entropy[k] + p[k] @ child_entropy
        length[k] = p[k] @ (terminals + child_length)
    return entropy, length


@dataclass
class Sample:
    tokens: np.ndarray  # int32 token ids
    log_prob: float  # Σ ln p of every expansion choice (exact log-likelihood of the tokens)
    choice_counts: np.ndarray  # (K + 1, rules) how often each expansion was chosen


def sample_documents(grammar: Grammar, n_documents: int, rng: np.random.Generator) -> Sample:
    """Expand ``n_documents`` start symbols breadth first, all documents at once (vectorised)."""
    V = grammar.spec.vocab_size
    K, r, _ = grammar.rhs.shape
    cumulative = np.cumsum(grammar.probs, axis=1)
    cumulative[:, -1] = 1.0
    with np.errstate(divide="ignore"):
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


def rank_frequency_exponent(counts: np.ndarray, min_count: float = 5,
                            ranks: tuple[int, int] | None = None) -> float:
    """s in frequency ∝ rank^(−s): least squares of ln count on ln rank, over counts ≥
    ``min_count`` (and ranks in [low, high) when ``ranks`` is given)."""
    ranked = np.sort(np.asarray(counts, dtype=np.float64).ravel())[::-1]
    keep = ranked > 0 if min_count <= 0 else ranked >= min_count
    rank = np.arange(1, len(ranked) + 1)
    if ranks is not None:
        keep &= (rank >= ranks[0]) & (rank < ranks[1])
    if keep.sum() < 3:
        return float("nan")
    slope = np.polyfit(np.log(rank[keep]), np.log(ranked[keep]), 1)[0]
    return float(-slope)
