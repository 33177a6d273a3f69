"""Synthetic tasks with unique multi-token answers, for PassUntil (Hu et al. 2024) at toy scale.

Every task is a fixed-length *prompt* followed by a fixed-length *answer* that ends with the end
token ``;``, so the correct answer string is unique and sampling at temperature 1 passes with
probability exactly Π p(answer token | prompt, earlier answer tokens). Documents of the training
stream are prompt + answer, one after another; an evaluation prompt starts with the ``;`` that
ends the previous document, as in training.

Tasks (character tokens; numbers as digit strings):

``add{k}``      ``A`` a ``+`` b ``=`` → the k+1 digits of a + b, least significant first (the
                order that lets a small transformer carry left to right), then ``;``. The
                answer length sweeps with k (the Mirage analysis).
``lookup``      ``L`` key ``=`` → value ``;``: a fixed random table of 3-digit values, keys seen
                with Zipf frequencies (memorisation, a "quanta" skill).
``composite``   ``C`` a ``+`` b ``=`` → the reversed 3-digit sum, ``>``, the table's value of that
                sum, ``;``: two skills chained (Hu et al.'s Theorem 2: sub-scaling, convex F).
``two_route``   ``R`` then ``pairs`` key ``:`` value ``,`` entries then ``|`` key ``=`` → value
                ``;``, in three kinds (the ``two_route`` mixture weight split evenly):
                ``two_route`` (both routes: the query is a table key and its entry is in the
                context), ``two_route_copy`` (copy only: the query is a key outside the table,
                with a fresh random value, so only the context holds it) and
                ``two_route_recall`` (recall only: a table key absent from the context). The
                copy route is needed by the second kind, the memorised route by the third;
                the first can use either (Hu et al.'s Theorem 3: two circuits, concave F).

Keys are written as reversed 3-digit numbers everywhere, so the composite's sum is literally a
key. Test instances are drawn once from ``test_seed``; the addition and composite test pairs never
occur in training (the model must compute, not recall), except for 1-digit addition, whose 100
pairs are all tested and all trained on. Each addition task also has a 4-way
multiple-choice variant whose distractors are near misses (one answer digit off by ±1), and
``lookup`` one whose distractors are other keys' values (the answers a memorised table offers),
for Schaeffer et al.'s chain log p → p → p_choice → accuracy / Brier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VOCAB = tuple("0123456789") + ("+", "=", ";", ">", ":", ",", "|", "A", "L", "C", "R")
TOKEN = {symbol: i for i, symbol in enumerate(VOCAB)}
END = TOKEN[";"]
KEY_DIGITS = 3
#: test pairs are kept out of training when the pair space is at least this many times larger
HOLD_OUT_FACTOR = 10


class TaskError(ValueError):
    """A task definition that cannot give unique, in-context answers (names the config key)."""


def digits(values: np.ndarray, width: int, reverse: bool = False) -> np.ndarray:
    """(n,) non-negative integers → (n, width) digit tokens, most significant first (or reversed)."""
    powers = 10 ** np.arange(width - 1, -1, -1)
    out = (np.asarray(values)[:, None] // powers) % 10
    return out[:, ::-1] if reverse else out


def column(symbol: str, n: int) -> np.ndarray:
    return np.full((n, 1), TOKEN[symbol])


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=float) ** -exponent
    return w / w.sum()


def decode(tokens) -> str:
    return "".join(VOCAB[int(t)] for t in tokens)


@dataclass
class InstanceSet:
    """Test instances of one task: prompts (n, P) and answers (n, L), ``;`` last; optionally
    multiple-choice candidates (n, C, L) with the gold answer at ``choice_answer``."""

    task: str
    prompts: np.ndarray
    answers: np.ndarray
    choices: np.ndarray | None = None
    choice_answer: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def answer_len(self) -> int:
        return self.answers.shape[1]

    def __len__(self) -> int:
        return len(self.prompts)


class Table:
    """The fixed key → value table that ``lookup``, ``composite`` and ``two_route`` share."""

    def __init__(self, size: int, zipf: float, seed: int):
        rng = np.random.default_rng([seed, 7])
        self.size = size
        self.values = rng.integers(0, 10**KEY_DIGITS, size=size)
        # training frequency: Zipf over a random order of the keys (rare keys need capacity)
        self.frequency = np.empty(size)
        self.frequency[rng.permutation(size)] = zipf_weights(size, zipf)

    def value_tokens(self, keys: np.ndarray) -> np.ndarray:
        return digits(self.values[keys], KEY_DIGITS)


class Task:
    """One task: draws (prompt, answer) rows for training and a fixed test set."""

    name: str
    mixture_key: str

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n random (prompts, answers) rows (test prompts of held-out tasks excluded)."""
        raise NotImplementedError

    def test_set(self, rng: np.random.Generator, n: int) -> InstanceSet:
        raise NotImplementedError

    def document_length(self) -> int:
        prompts, answers = self.draw(np.random.default_rng(0), 1)
        return prompts.shape[1] + answers.shape[1]


class Addition(Task):
    mixture_key = "addition"

    def __init__(self, k: int, distractors: int):
        self.k, self.distractors, self.name = k, distractors, f"add{k}"
        self.held_out = np.empty(0, dtype=np.int64)

    def _rows(self, a, b):
        n = len(a)
        prompt = np.hstack([column("A", n), digits(a, self.k), column("+", n), digits(b, self.k),
                            column("=", n)])
        answer = np.hstack([digits(a + b, self.k + 1, reverse=True), column(";", n)])
        return prompt, answer

    def _pairs(self, rng, n, exclude):
        top = 10**self.k
        a, b = rng.integers(0, top, size=n), rng.integers(0, top, size=n)
        bad = np.isin(a * top + b, exclude)
        while bad.any():  # redraw the held-out pairs
            a[bad], b[bad] = rng.integers(0, top, size=bad.sum()), rng.integers(0, top, size=bad.sum())
            bad = np.isin(a * top + b, exclude)
        return a, b

    def draw(self, rng, n):
        return self._rows(*self._pairs(rng, n, self.held_out))

    def test_set(self, rng, n):
        top = 10**self.k
        codes = rng.choice(top * top, size=min(n, top * top), replace=False)
        # held out of training when there are pairs to spare (not for 1-digit sums: 100 pairs)
        self.held_out = np.sort(codes) if top * top >= HOLD_OUT_FACTOR * n else np.empty(0, np.int64)
        prompts, answers = self._rows(codes // top, codes % top)
        choices = near_misses(answers, self.distractors, rng)
        return InstanceSet(self.name, prompts, answers, choices, np.zeros(len(prompts), int),
                           {"digits": self.k})


def near_misses(answers: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 1 + count, L): the gold answer first, then ``count`` distinct near misses, each with
    one digit (not the end token) moved by ±1 (mod 10)."""
    n, length = answers.shape
    digit_positions = length - 1
    if count > 2 * digit_positions:
        raise TaskError(f"distractors: {count} near misses need at least {count} distinct "
                        f"single-digit changes; answers of {digit_positions} digits have "
                        f"{2 * digit_positions}")
    out = np.repeat(answers[:, None, :], 1 + count, axis=1)
    for i in range(n):
        options = [(pos, step) for pos in range(digit_positions) for step in (1, -1)]
        picks = rng.choice(len(options), size=count, replace=False)
        for j, pick in enumerate(picks, start=1):
            pos, step = options[pick]
            out[i, j, pos] = (answers[i, pos] + step) % 10
    return out


class Lookup(Task):
    name = mixture_key = "lookup"

    def __init__(self, table: Table, distractors: int = 0):
        self.table, self.distractors = table, distractors
        if distractors >= len(np.unique(table.values)):
            raise TaskError(f"distractors: {distractors} lookup distractors need that many "
                            f"other values in the table, which has "
                            f"{len(np.unique(table.values))} distinct values")

    def _rows(self, keys):
        n = len(keys)
        prompt = np.hstack([column("L", n), digits(keys, KEY_DIGITS, reverse=True), column("=", n)])
        return prompt, np.hstack([self.table.value_tokens(keys), column(";", n)])

    def draw(self, rng, n):
        return self._rows(rng.choice(self.table.size, size=n, p=self.table.frequency))

    def test_set(self, rng, n):
        keys = np.sort(rng.choice(self.table.size, size=min(n, self.table.size), replace=False))
        prompts, answers = self._rows(keys)
        return InstanceSet(self.name, prompts, answers, self._choices(keys, answers, rng),
                           np.zeros(len(keys), int), meta={"key_frequency": self.table.frequency[keys]})

    def _choices(self, keys, answers, rng) -> np.ndarray | None:
        """(n, 1 + distractors, L): the gold value first, then values of other table keys (the
        answers the memorised table offers), distinct from the gold one and from each other."""
        if not self.distractors:
            return None
        values = self.table.values
        out = np.repeat(answers[:, None, :], 1 + self.distractors, axis=1)
        for i, key in enumerate(keys):
            others = np.unique(values[values != values[key]])
            picks = rng.choice(others, size=self.distractors, replace=False)
            out[i, 1:, :-1] = digits(picks, KEY_DIGITS)
        return out


class Composite(Task):
    name = mixture_key = "composite"

    def __init__(self, table: Table):
        self.table, self.adder = table, Addition(2, 0)
        if table.size < 199:
            raise TaskError(f"table_size: the composite task looks up sums of two 2-digit "
                            f"numbers (0–198), so the table needs at least 199 keys, not {table.size}")

    def _rows(self, a, b):
        prompt, sums = self.adder._rows(a, b)
        prompt = prompt.copy()
        prompt[:, 0] = TOKEN["C"]
        n = len(a)
        answer = np.hstack([sums[:, :-1], column(">", n), self.table.value_tokens(a + b),
                            column(";", n)])
        return prompt, answer

    def draw(self, rng, n):
        return self._rows(*self.adder._pairs(rng, n, self.adder.held_out))

    def test_set(self, rng, n):
        codes = np.sort(rng.choice(10**4, size=min(n, 10**4), replace=False))
        self.adder.held_out = codes
        prompts, answers = self._rows(codes // 100, codes % 100)
        return InstanceSet(self.name, prompts, answers)


class TwoRoute(Task):
    """Recall from the memorised table or copy from the context; ``route`` says which the
    instance allows: ``both`` (the query's true entry is in the context), ``copy`` (a key
    outside the table with a fresh random value, given only in the context) or ``recall`` (a
    table key absent from the context)."""

    mixture_key = "two_route"
    NAMES = {"both": "two_route", "copy": "two_route_copy", "recall": "two_route_recall"}

    def __init__(self, table: Table, pairs: int, route: str = "both"):
        self.table, self.pairs, self.route, self.name = table, pairs, route, self.NAMES[route]
        spare = 10**KEY_DIGITS - table.size
        if pairs + (route == "recall") > table.size:
            raise TaskError(f"context_pairs: {pairs} distinct table keys per prompt"
                            + (" besides the query" if route == "recall" else "")
                            + f", but the table has only {table.size}")
        if route == "copy" and spare < 1:
            raise TaskError(f"tasks.table_size: the copy route asks about keys outside the table, "
                            f"but {table.size} keys fill all {10**KEY_DIGITS} {KEY_DIGITS}-digit codes")

    def _rows(self, rng, query):
        n = len(query)
        size = self.table.size
        in_context = self.route != "recall"
        keys = np.empty((n, self.pairs), dtype=np.int64)
        values = np.empty((n, self.pairs), dtype=np.int64)
        answer = np.empty(n, dtype=np.int64)
        for i in range(n):  # distinct table keys; the query among them at a random slot
            table_query = query[i] < size
            count = self.pairs - in_context
            others = rng.choice(size - table_query, size=count, replace=False)
            if table_query:
                others = others + (others >= query[i])
            row = (np.insert(others, rng.integers(0, self.pairs), query[i]) if in_context
                   else others)
            keys[i] = row
            values[i] = self.table.values[np.minimum(row, size - 1)]
            answer[i] = self.table.values[query[i]] if table_query else rng.integers(0, 10**KEY_DIGITS)
            values[i, row == query[i]] = answer[i]  # a copy-only key's fresh value
        parts = [column("R", n)]
        for j in range(self.pairs):
            parts += [digits(keys[:, j], KEY_DIGITS, reverse=True), column(":", n),
                      digits(values[:, j], KEY_DIGITS), column(",", n)]
        parts += [column("|", n), digits(query, KEY_DIGITS, reverse=True), column("=", n)]
        return np.hstack(parts), np.hstack([digits(answer, KEY_DIGITS), column(";", n)])

    def _queries(self, rng, n, training: bool):
        if self.route == "copy":  # uniform over the codes the table does not hold
            return rng.integers(self.table.size, 10**KEY_DIGITS, size=n)
        if training:  # table keys with their training (Zipf) frequencies
            return rng.choice(self.table.size, size=n, p=self.table.frequency)
        return rng.choice(self.table.size, size=n, replace=n > self.table.size)

    def draw(self, rng, n):
        return self._rows(rng, self._queries(rng, n, training=True))

    def test_set(self, rng, n):
        query = self._queries(rng, n, training=False)
        prompts, answers = self._rows(rng, query)
        frequency = np.where(query < self.table.size,
                             self.table.frequency[np.minimum(query, self.table.size - 1)], 0.0)
        return InstanceSet(self.name, prompts, answers,
                           meta={"key_frequency": frequency, "route": self.route})


# ----------------------------------------------------------------------------------------------
class TaskSuite:
    """The configured tasks, their training mixture and their fixed test sets."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.table = Table(cfg["table_size"], cfg["table_zipf"], cfg["table_seed"])
        tasks: list[Task] = [Addition(k, cfg["distractors"]) for k in cfg["addition_digits"]]
        tasks += [Lookup(self.table, cfg["distractors"]), Composite(self.table)]
        tasks += [TwoRoute(self.table, cfg["context_pairs"], route) for route in TwoRoute.NAMES]
        self.tasks = {task.name: task for task in tasks}
        rng = np.random.default_rng([cfg["test_seed"], 11])
        # test sets first: they fix the held-out pairs that training must avoid
        self.test_sets = {name: task.test_set(rng, cfg["instances"]) for name, task in self.tasks.items()}
        for instances in self.test_sets.values():
            check_unique_answers(instances)
        weights = np.array([cfg["mixture"][task.mixture_key] for task in tasks], dtype=float)
        counts = np.array([sum(t.mixture_key == task.mixture_key for t in tasks) for task in tasks])
        self.weights = weights / counts / (weights / counts).sum()  # a key's weight split evenly

    def mean_document_length(self) -> float:
        lengths = np.array([task.document_length() for task in self.tasks.values()])
        return float(self.weights @ lengths)

    def stream(self, n_tokens: int, stream: int, chunk_docs: int = 50_000) -> np.ndarray:
        """The first ``n_tokens`` tokens of training (or validation) stream ``stream``: documents
        of tasks drawn by the mixture weights, in chunks seeded by (seed, stream, chunk), so a
        longer stream extends a shorter one."""
        names = list(self.tasks)
        chunks, total, chunk = [], 0, 0
        while total < n_tokens:
            rng = np.random.default_rng([self.cfg["data_seed"], stream, chunk])
            which = rng.choice(len(names), size=chunk_docs, p=self.weights)
            lengths = np.array([self.tasks[n].document_length() for n in names])[which]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            out = np.empty(lengths.sum(), dtype=np.int64)
            for t, name in enumerate(names):
                mine = np.flatnonzero(which == t)
                if len(mine):
                    prompts, answers = self.tasks[name].draw(rng, len(mine))
                    docs = np.hstack([prompts, answers])
                    out[starts[mine, None] + np.arange(docs.shape[1])] = docs
            chunks.append(out)
            total += len(out)
            chunk += 1
        return np.concatenate(chunks)[:n_tokens]


def check_unique_answers(instances: InstanceSet) -> None:
    """PassUntil needs one correct answer per prompt: a prompt seen twice with different answers,
    or an answer that does not end with ``;`` (and so has longer passing strings), is an error."""
    name = instances.task
    if not (instances.answers[:, -1] == END).all() or (instances.answers[:, :-1] == END).any():
        raise TaskError(f"tasks.{name}: every answer must end with its only ';' (unique answers)")
    prompts = {}
    for i, (prompt, answer) in enumerate(zip(instances.prompts, instances.answers)):
        key = prompt.tobytes()
        if key in prompts and not np.array_equal(instances.answers[prompts[key]], answer):
            j = prompts[key]
            raise TaskError(f"tasks.{name}: instances {j} and {i} share the prompt "
                            f"{decode(prompt)!r} but answer {decode(instances.answers[j])!r} and "
                            f"{decode(answer)!r}; PassUntil needs a unique correct answer")
        prompts.setdefault(key, i)
    if instances.choices is not None:
        gold = instances.choices[np.arange(len(instances)), instances.choice_answer]
        for i, row in enumerate(instances.choices):
            if len({c.tobytes() for c in row}) < len(row) or not np.array_equal(gold[i], instances.answers[i]):
                raise TaskError(f"tasks.{name}: instance {i}'s choices are not distinct or miss "
                                "the gold answer")
