"""Measuring a trained model on task instances: every metric of Hu et al. and Schaeffer et al.

* teacher-forced log-probability of the gold answer, token by token: with a unique answer and
  temperature-1 sampling, exp(Σ log p) *is* the pass probability PassUntil estimates;
* PassUntil: sample answers at temperature 1 until ``r`` pass or ``k_max`` were drawn;
* greedy decoding: exact match and token edit distance (the "conventional" metrics);
* multiple choice: log p of every candidate (Schaeffer et al.'s chain).

Sampling is real ancestral sampling, organised so that it costs little: a sample fails at its
first token that differs from the answer, so only samples that match the answer so far are
continued, and those all share one prefix. Each answer position therefore needs one forward
pass per instance (on the sampled prefix) and one inverse-CDF draw per surviving sample.
"""

from __future__ import annotations

import numpy as np
import torch

from scaling_atlas.emergence.tasks import END


def _with_context(prompts: np.ndarray) -> torch.Tensor:
    """Prompts preceded by the end token of the previous document, as in the training stream."""
    return torch.from_numpy(np.hstack([np.full((len(prompts), 1), END), prompts])).long()


@torch.no_grad()
def next_token_distribution(model, sequences: torch.Tensor, device, batch: int = 1024) -> np.ndarray:
    """p(· | sequence) at the last position, float64, one row per sequence."""
    rows = []
    for start in range(0, len(sequences), batch):
        logits = model(sequences[start : start + batch].to(device))[:, -1].double()
        rows.append(torch.softmax(logits, dim=-1).cpu().numpy())
    return np.concatenate(rows)


@torch.no_grad()
def answer_logprobs(model, prompts: np.ndarray, answers: np.ndarray, device,
                    batch: int = 1024) -> np.ndarray:
    """(n, L) log p(answer token i | prompt, answer tokens < i), teacher-forced, float64."""
    context = _with_context(prompts)
    gold = torch.from_numpy(answers).long()
    inputs = torch.cat([context, gold[:, :-1]], dim=1)
    first = context.shape[1] - 1  # the position whose logits predict the first answer token
    out = []
    for start in range(0, len(inputs), batch):
        logits = model(inputs[start : start + batch].to(device))[:, first:].double()
        logp = torch.log_softmax(logits, dim=-1)
        target = gold[start : start + batch].to(device)
        out.append(logp.gather(-1, target[..., None])[..., 0].cpu().numpy())
    return np.concatenate(out)


def pass_until(model, prompts: np.ndarray, answers: np.ndarray, r: int, k_max: int,
               rng: np.random.Generator, device, block: int = 4096) -> dict[str, np.ndarray]:
    """Sample answers at temperature 1 until ``r`` pass or ``k_max`` samples were drawn.

    Returns per instance ``samples`` (K: draws until the r-th pass, or k_max), ``passes`` (r, or
    fewer when censored) and ``censored``. Samples are drawn in blocks of ``block`` in a fixed
    order, so K is the index of the r-th pass in that order.
    """
    n, length = answers.shape
    context = _with_context(prompts)
    gold = torch.from_numpy(answers).long()
    passes = np.zeros(n, dtype=np.int64)
    samples = np.full(n, k_max, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for first in range(0, k_max, block):
        size = min(block, k_max - first)
        active = np.flatnonzero(~done)
        if not len(active):
            break
        alive = np.ones((len(active), size), dtype=bool)  # sample j still equals the answer
        for i in range(length):
            rows = np.flatnonzero(alive.any(axis=1))
            if not len(rows):
                break
            idx = active[rows]
            # every surviving sample of an instance has sampled the answer's first i tokens
            prefix = torch.cat([context[idx], gold[idx, :i]], dim=1)
            cdf = np.cumsum(next_token_distribution(model, prefix, device), axis=1)
            target = answers[idx, i]
            low = np.where(target > 0, cdf[np.arange(len(idx)), target - 1], 0.0)
            high = cdf[np.arange(len(idx)), target]
            u = rng.random((len(idx), size))
            # the inverse-CDF draw returns the answer token exactly when low ≤ u < high
            alive[rows] &= (u >= low[:, None]) & (u < high[:, None])
        found = np.cumsum(alive, axis=1)  # passes so far within the block, per sample
        for row, instance in enumerate(active):
            need = r - passes[instance]
            if found[row, -1] >= need:
                samples[instance] = first + int(np.argmax(found[row] >= need)) + 1
                passes[instance] = r
                done[instance] = True
            else:
                passes[instance] += found[row, -1]
    return {"samples": samples, "passes": passes, "censored": ~done}


@torch.no_grad()
def greedy_decode(model, prompts: np.ndarray, max_len: int, device) -> np.ndarray:
    """(n, max_len) greedy continuation; everything after the first end token is the end token."""
    sequence = _with_context(prompts).to(device)
    out = []
    for _ in range(max_len):
        token = model(sequence)[:, -1].argmax(dim=-1)
        out.append(token)
        sequence = torch.cat([sequence, token[:, None]], dim=1)
    tokens = torch.stack(out, dim=1).cpu().numpy()
    ended = np.cumsum(tokens == END, axis=1) > 0
    after = np.concatenate([np.zeros((len(tokens), 1), bool), ended[:, :-1]], axis=1)
    tokens[after] = END
    return tokens


def strip_end(tokens: np.ndarray) -> list[int]:
    """Tokens before the first end token."""
    tokens = list(tokens)
    return tokens[: tokens.index(END)] if END in tokens else tokens


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two token sequences (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def greedy_metrics(outputs: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact match (the whole answer, end token included) and token edit distance of the
    digits before the end token."""
    width = answers.shape[1]
    exact = (outputs[:, :width] == answers).all(axis=1)
    distance = np.array([edit_distance(strip_end(o), strip_end(a)) for o, a in zip(outputs, answers)])
    return exact, distance


def choice_logprobs(model, prompts: np.ndarray, choices: np.ndarray, device) -> np.ndarray:
    """(n, C) log p of each candidate answer (teacher-forced sum over its tokens)."""
    n, count, length = choices.shape
    logp = answer_logprobs(model, np.repeat(prompts, count, axis=0), choices.reshape(n * count, length),
                           device)
    return logp.sum(axis=1).reshape(n, count)


def evaluate_suite(model, test_sets: dict, r: int, k_max: int, rng: np.random.Generator,
                   device, block: int = 4096) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Every metric on every task's test instances, as arrays padded with NaN to a common
    (task, instance[, position | choice]) shape: name → (dims, values)."""
    names = list(test_sets)
    n = max(len(s) for s in test_sets.values())
    length = max(s.answer_len for s in test_sets.values())
    count = max((s.choices.shape[1] for s in test_sets.values() if s.choices is not None), default=0)
    shape = (len(names), n)
    out = {key: np.full(shape, np.nan) for key in
           ("pu_samples", "pu_passes", "pu_censored", "greedy_correct", "edit_distance")}
    out["token_logp"] = np.full(shape + (length,), np.nan)
    out["greedy_token_correct"] = np.full(shape + (length,), np.nan)
    out["choice_logp"] = np.full(shape + (max(count, 1),), np.nan)
    model.eval()
    for t, name in enumerate(names):
        inst = test_sets[name]
        m, width = len(inst), inst.answer_len
        out["token_logp"][t, :m, :width] = answer_logprobs(model, inst.prompts, inst.answers, device)
        sampled = pass_until(model, inst.prompts, inst.answers, r, k_max, rng, device, block)
        out["pu_samples"][t, :m] = sampled["samples"]
        out["pu_passes"][t, :m] = sampled["passes"]
        out["pu_censored"][t, :m] = sampled["censored"]
        greedy = greedy_decode(model, inst.prompts, width + 2, device)
        exact, distance = greedy_metrics(greedy, inst.answers)
        out["greedy_correct"][t, :m] = exact
        out["edit_distance"][t, :m] = distance
        out["greedy_token_correct"][t, :m, :width] = greedy[:, :width] == inst.answers
        if inst.choices is not None:
            out["choice_logp"][t, :m, : inst.choices.shape[1]] = choice_logprobs(
                model, inst.prompts, inst.choices, device)
    dims = {"token_logp": ("task", "instance", "position"),
            "greedy_token_correct": ("task", "instance", "position"),
            "choice_logp": ("task", "instance", "choice")}
    return {key: (dims.get(key, ("task", "instance")), value) for key, value in out.items()}
