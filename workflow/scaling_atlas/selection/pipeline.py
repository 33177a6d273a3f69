"""The AttentionInfluence pipeline of the data-selection toy (Hua et al. 2025), one seed at a time.

Each step needs the one before it, so one training job runs a seed's whole pipeline: pretrain the
scorer on the mixture; score its heads on a key–value probe and mask the top ones; score every
candidate document by the relative loss increase and select the top fraction within each domain;
train the strong models on the pool (baseline) and on the pool with the selected documents
upsampled (selected) at equal tokens, and evaluate them on held-out probes. The study that plans
the grid and reads the results is :mod:`scaling_atlas.studies.data_selection`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.models.shape import TransformerConfig, parameter_counts
from scaling_atlas.runs import Run
from scaling_atlas.selection import heads as ai
from scaling_atlas.selection import scores
from scaling_atlas.selection.corpus import CorpusSpec, flatten, key_value_probe, repeat_probe, \
    sample_documents
from scaling_atlas.train.lm import LMTrainSpec, train_lm

# Streams of the corpus generator: every document set is independent of the others.
SCORER_STREAM, POOL_STREAM, VAL_STREAM, KV_STREAM, REPEAT_STREAM, LOCAL_STREAM = range(1, 7)


def model_config(c: dict, width: int, n_layer: int, n_head: int) -> TransformerConfig:
    return TransformerConfig(vocab_size=c["corpus"]["vocab_size"], d_model=width,
                             n_layer=n_layer, n_head=n_head, seq_len=c["corpus"]["seq_len"])


def train_spec(c: dict, steps: int, seed: int, seed_salt: int) -> LMTrainSpec:
    """The trainer's settings of one model of the pipeline (``c``: the study's settings)."""
    return LMTrainSpec(tokens=steps * c["batch_size"] * c["corpus"]["seq_len"],
                       batch_size=c["batch_size"], lr=c["lr"], eval_points=8,
                       # the paper's WSD schedule: 0.1 % warmup, 75 % stable, 25 % decay
                       schedule="wsd", warmup_fraction=0.001, decay_fraction=0.25,
                       eval_tokens=16384, seed=seed + 1000 * seed_salt,
                       checkpoint_every=c["checkpoint_every"])

def train_seed(c: dict, seed_salt: int, name: str, runs: list[Run], device, ckpt_dir: Path,
               log) -> xr.Dataset:
    """The whole pipeline of one seed (the scorer, its heads and scores, the selection, the
    strong models of both conditions): per-run numbers along ``run``, per-seed ones along
    ``seed``. ``c``: the study's settings; ``name``: the study (named in errors)."""
    seed = runs[0]["seed"]
    spec = CorpusSpec.from_settings(c["corpus"], seed + 1000 * seed_salt)
    B = c["batch_size"]
    val = sample_documents(spec, c["eval_documents"], c["retrieval_fraction"], VAL_STREAM)
    kv, kv_mask = key_value_probe(spec, c["eval_documents"], KV_STREAM)
    rep, rep_mask = repeat_probe(spec, c["eval_documents"], REPEAT_STREAM)
    local = sample_documents(spec, c["eval_documents"], 0.0, LOCAL_STREAM)

    # 1. the scorer, pretrained on the mixture
    s = c["scorer"]
    scorer_docs = sample_documents(spec, s["steps"] * B, s["retrieval_fraction"], SCORER_STREAM)
    scorer_cfg = model_config(c, s["width"], s["n_layer"], s["n_head"])
    scorer_run = next(r for r in runs if r["role"] == "scorer")
    log(f"seed {seed}: scorer {parameter_counts(scorer_cfg)['total']:,} parameters, "
        f"{s['steps']} steps on documents {s['retrieval_fraction']:.0%} retrieval-heavy")
    scorer, result = train_lm(scorer_cfg, train_spec(c, s["steps"], seed, seed_salt),
                              flatten(scorer_docs.tokens), flatten(val.tokens), device,
                              Path(ckpt_dir) / f"{scorer_run.run_id}.pt", log, label="scorer")
    if result["status"] == "diverged":
        raise RuntimeError(f"seed {seed}: the scorer diverged at step "
                           f"{result['diverged_at_step']}; lower lr (studies.{name}.lr)")

    # 2. retrieval heads, masking, AttentionInfluence of the pool, selection
    head_score = ai.retrieval_scores(scorer, kv, kv_mask)
    masked = scores.top_heads(head_score, c["head_fraction"])
    controls = scores.control_head_sets(head_score, len(masked), seed)
    check = {}
    for probe, (docs, mask) in (("kv", (kv, kv_mask)), ("repeat", (rep, rep_mask))):
        check[f"scorer_{probe}_intact"] = ai.recall_accuracy(scorer, docs, mask)
        check[f"scorer_{probe}_masked"] = ai.recall_accuracy(scorer, docs, mask, masked)
        control = [ai.recall_accuracy(scorer, docs, mask, heads) for heads in controls]
        check[f"scorer_{probe}_control"] = float(np.mean(control))
        check[f"scorer_{probe}_control_min"] = float(np.min(control))
    check["scorer_local_loss_intact"] = float(ai.document_losses(scorer, local.tokens).mean())
    check["scorer_local_loss_masked"] = float(ai.document_losses(scorer, local.tokens, masked).mean())
    log(f"seed {seed}: masked heads {masked}; key–value recall {check['scorer_kv_intact']:.3f} "
        f"intact, {check['scorer_kv_masked']:.3f} masked, {check['scorer_kv_control']:.3f} "
        "with control heads masked")

    n_docs = c["strong"]["steps"] * B  # the pool is one epoch of the baseline's budget
    pool = sample_documents(spec, n_docs, c["retrieval_fraction"], POOL_STREAM)
    base_loss = ai.document_losses(scorer, pool.tokens)
    influence = scores.attention_influence(base_loss, ai.document_losses(scorer, pool.tokens, masked))
    chosen = scores.select_within_domains(influence, pool.domain, c["select_fraction"])
    log(f"seed {seed}: AUROC {scores.auroc(influence, pool.label):.3f}; selected "
        f"{chosen.sum():,} documents, {pool.label[chosen].mean():.1%} retrieval-heavy "
        f"(pool {pool.label.mean():.1%})")

    # 3. weak-to-strong: baseline vs selected-upsampled corpora at an equal token budget
    corpora = {"baseline": pool.tokens,
               "selected": upsampled(pool.tokens, chosen, c["selected_share"], seed)}
    rows, kv_hits = [], []
    for run in runs:
        if run["role"] != "strong":
            continue
        cfg = model_config(c, run["width"], run["n_layer"], run["width"] // run["head_dim"])
        log(f"seed {seed}: strong width {run['width']} ({parameter_counts(cfg)['total']:,} "
            f"parameters) on {run['condition']}")
        model, res = train_lm(cfg, train_spec(c, run["steps"], seed, seed_salt),
                              flatten(corpora[run["condition"]]), flatten(val.tokens), device,
                              Path(ckpt_dir) / f"{run.run_id}.pt", log,
                              label=f"{run['condition']} w{run['width']}")
        ok = res["status"] == "finished"
        hits = ai.recall_per_document(model, kv, kv_mask) if ok else np.full(len(kv), np.nan)
        kv_hits.append(hits)
        rows.append({
            "run": run.run_id, "width": run["width"], "condition": run["condition"],
            "run_seed": seed, "n_params": float(parameter_counts(cfg)["total"]),
            "recall_kv": float(hits.mean()),
            "recall_repeat": ai.recall_accuracy(model, rep, rep_mask) if ok else np.nan,
            "local_loss": float(ai.document_losses(model, local.tokens).mean()) if ok else np.nan,
            "mixture_loss": float(ai.document_losses(model, val.tokens).mean()) if ok else np.nan,
            "final_val_loss": res["final_val_loss"], "tokens": float(res["tokens_seen"]),
            "retrieval_share": float(retrieval_share(pool, chosen, run["condition"],
                                                          c["selected_share"])),
            "diverged": float(not ok)})
        log(f"  recall {rows[-1]['recall_kv']:.3f}, local loss {rows[-1]['local_loss']:.4f}")

    # the scorer is a run of the shard too (the manifest lists it); its numbers are per seed
    rows.append({"run": scorer_run.run_id, "width": s["width"], "condition": "scorer",
                 "run_seed": seed, "n_params": float(parameter_counts(scorer_cfg)["total"]),
                 "recall_kv": check["scorer_kv_intact"],
                 "recall_repeat": check["scorer_repeat_intact"],
                 "local_loss": check["scorer_local_loss_intact"], "mixture_loss": np.nan,
                 "final_val_loss": result["final_val_loss"], "tokens": float(result["tokens_seen"]),
                 "retrieval_share": s["retrieval_fraction"], "diverged": 0.0})
    kv_hits.append(ai.recall_per_document(scorer, kv, kv_mask))
    del scorer
    table = pd.DataFrame(rows).set_index("run")
    out = xr.Dataset.from_dataframe(table)
    out["kv_hits"] = (("run", "probe_doc"), np.stack(kv_hits))
    per_seed = {
        "head_score": (("seed", "layer", "head"), head_score[None]),
        "head_masked": (("seed", "layer", "head"), head_mask(head_score.shape, masked)[None]),
        "head_control": (("seed", "layer", "head"),
                         head_mask(head_score.shape, sum(controls, []))[None]),
        "influence": (("seed", "doc"), influence[None].astype(np.float32)),
        "doc_label": (("seed", "doc"), pool.label[None].astype(np.int8)),
        "doc_kind": (("seed", "doc"), pool.kind[None].astype(np.int8)),
        "doc_domain": (("seed", "doc"), pool.domain[None].astype(np.int8)),
        "doc_selected": (("seed", "doc"), chosen[None].astype(np.int8)),
        "scorer_final_val_loss": (("seed",), [result["final_val_loss"]]),
        **{name: (("seed",), [value]) for name, value in check.items()},
    }
    return out.assign({name: xr.Variable(*v) for name, v in per_seed.items()}).assign_coords(
        seed=[seed])

def head_mask(shape, heads) -> np.ndarray:
    """(layer, head) pairs as a 0/1 mask of the given shape."""
    mask = np.zeros(shape, dtype=np.int8)
    for layer, head in heads:
        mask[layer, head] = 1
    return mask

def upsampled(tokens: np.ndarray, chosen: np.ndarray, share: float, seed: int) -> np.ndarray:
    """As many documents as the pool: ``share`` of them the selected documents, repeated in
    turn (upsampled), the rest the pool's first documents; shuffled together."""
    rng = np.random.default_rng([seed, 99])
    n = len(tokens)
    n_selected = int(round(share * n))
    picked = np.flatnonzero(chosen)
    repeats = np.resize(rng.permutation(picked), n_selected)
    mixed = np.concatenate([tokens[: n - n_selected], tokens[repeats]])
    return mixed[rng.permutation(n)]

def retrieval_share(pool, chosen, condition: str, share: float) -> float:
    """Expected fraction of retrieval-heavy documents in a condition's training corpus."""
    if condition == "baseline":
        return float(pool.label.mean())
    return (1 - share) * float(pool.label.mean()) + share * float(pool.label[chosen].mean())
