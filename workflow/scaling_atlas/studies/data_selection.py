"""Data selection by AttentionInfluence (Hua et al. 2025), as a labelled toy.

One shard per seed runs the whole pipeline, because each step needs the one before it:

1. a small *scorer* transformer is pretrained on a synthetic mixture of documents that need
   in-context retrieval (key–value recall, repeated segments) and documents that need only local
   (Markov) statistics (``scaling_atlas.selection.corpus``);
2. its heads get retrieval scores on a key–value probe; the top ``head_fraction`` are masked
   with uniform causal attention, and every document of the candidate pool is scored by the
   relative loss increase (``scaling_atlas.selection.heads``); the top ``select_fraction`` within
   each domain is selected. The document labels are ours, hidden from the method: the AUROC of
   the score for them says how well it finds retrieval-heavy documents;
3. weak-to-strong: larger models are trained on the pool (baseline) or on the pool with the
   selected documents upsampled to ``selected_share`` of the documents (selected), at an equal
   token budget, and compared on held-out recall accuracy and on the loss of local documents.

What the toy shows is the mechanism, not the paper's benchmark gains.
Spec: shared/reference/data-selection-and-resolution.md §1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Hashable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import Claim, ClaimList
from scaling_atlas.cubes import describe_variables, grid_from_records, without_diverged
from scaling_atlas.figures import new_figure
from scaling_atlas.models.transformer import TransformerConfig, parameter_counts
from scaling_atlas.runs import Run, group_into_shards
from scaling_atlas.selection import heads as ai
from scaling_atlas.selection.corpus import KINDS, CorpusSpec, flatten, key_value_probe, repeat_probe, \
    sample_documents
from scaling_atlas.studies.base import Study
from scaling_atlas.train.lm import LMTrainSpec, train_lm

# Streams of the corpus generator: every document set is independent of the others.
SCORER_STREAM, POOL_STREAM, VAL_STREAM, KV_STREAM, REPEAT_STREAM, LOCAL_STREAM = range(1, 7)
CONDITIONS = ("baseline", "selected")


def paired_bootstrap(hits_a: np.ndarray, hits_b: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Draws of mean(b) − mean(a) over documents resampled with replacement (the same documents
    for both models: a paired comparison). ``hits_*``: (..., documents)."""
    rng = np.random.default_rng(seed)
    n = hits_a.shape[-1]
    idx = rng.integers(n, size=(resamples, n))
    return (hits_b[..., idx] - hits_a[..., idx]).mean(-1)


def seed_and_document_bootstrap(hits_a: np.ndarray, hits_b: np.ndarray, resamples: int,
                                seed: int) -> np.ndarray:
    """Draws of the seed-mean gain mean(b) − mean(a), resampling seeds and, within each, the
    held-out documents (a two-level bootstrap: the interval covers both the pipeline's seed
    spread and the evaluation noise). ``hits_*``: (..., seed, documents) → (..., resamples)."""
    per_seed = paired_bootstrap(hits_a, hits_b, resamples, seed)  # (..., seed, resamples)
    n_seeds = per_seed.shape[-2]
    if n_seeds == 1:
        return per_seed[..., 0, :]
    rng = np.random.default_rng([seed, 1])
    chosen = rng.integers(n_seeds, size=(resamples, n_seeds))
    index = np.broadcast_to(chosen.T, per_seed.shape[:-2] + chosen.T.shape)
    return np.take_along_axis(per_seed, index, axis=-2).mean(-2)


class DataSelectionStudy(Study):
    kind = "data_selection"
    finite_results = ("final_val_loss",)
    title = "Data selection by AttentionInfluence: a toy of Hua et al. (2025)"
    figures = {
        "head_scores": "Scorer heads: retrieval score on the key–value probe (left; the masked "
                       "heads are outlined) and recall accuracy of the intact scorer, with its "
                       "retrieval heads masked (uniform attention) and with as many other heads "
                       "masked (right).",
        "influence": "AttentionInfluence of the candidate documents, by their hidden kind (left), "
                     "and the ROC curve of the score for the retrieval-heavy label (right).",
        "weak_to_strong": "Weak-to-strong: larger models trained on the pool (baseline) or on the "
                          "pool with the selected documents upsampled, at equal tokens: held-out "
                          "key–value recall (left) and loss of local documents (right) against "
                          "parameters. Bars: 95 % bootstrap intervals over held-out documents "
                          "(and seeds).",
    }

    # ---- config ------------------------------------------------------------------------------
    def corpus_spec(self, seed: int) -> CorpusSpec:
        c = self.cfg["corpus"]
        return CorpusSpec(seq_len=c["seq_len"], vocab_size=c["vocab_size"], domains=c["domains"],
                          records=c["records"], successors=c["successors"], zipf=c["zipf"],
                          seed=seed + 1000 * self.config.get("seed_salt", 0))

    def model_config(self, width: int, n_layer: int, n_head: int) -> TransformerConfig:
        return TransformerConfig(vocab_size=self.cfg["corpus"]["vocab_size"], d_model=width,
                                 n_layer=n_layer, n_head=n_head, seq_len=self.cfg["corpus"]["seq_len"])

    def validate(self) -> list[str]:
        c, problems = self.cfg, []
        problems += [f"corpus: {p}" for p in self.corpus_spec(0).problems()]
        s = c["scorer"]
        if s["width"] % s["n_head"] or (s["width"] // s["n_head"]) % 2:
            problems.append(f"scorer.n_head: width {s['width']} / {s['n_head']} heads must be an "
                            "even whole head dimension (rotary positions)")
        for i, width in enumerate(c["strong"]["widths"]):
            if width % c["strong"]["head_dim"] or c["strong"]["head_dim"] % 2:
                problems.append(f"strong.widths[{i}]: {width} is not a multiple of the even "
                                f"head_dim {c['strong']['head_dim']}")
        heads = s["n_layer"] * s["n_head"]
        if math.ceil(c["head_fraction"] * heads - 1e-9) >= heads:
            problems.append(f"head_fraction: {c['head_fraction']} of the scorer's {heads} heads "
                            "masks all of them (no control heads left)")
        return problems

    # ---- grid ----------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        c = self.cfg
        shared = {"corpus": c["corpus"], "scorer": c["scorer"], "retrieval_fraction":
                  c["retrieval_fraction"], "head_fraction": c["head_fraction"],
                  "select_fraction": c["select_fraction"], "batch_size": c["batch_size"],
                  "lr": c["lr"], "seed_salt": self.config.get("seed_salt", 0)}
        runs = []
        for seed in c["seeds"]:
            runs.append(Run.from_params({"role": "scorer", "seed": seed, **shared}))
            for width in c["strong"]["widths"]:
                for condition in CONDITIONS:
                    runs.append(Run.from_params({
                        "role": "strong", "seed": seed, "width": width, "condition": condition,
                        "n_layer": c["strong"]["n_layer"], "head_dim": c["strong"]["head_dim"],
                        "steps": c["strong"]["steps"], "selected_share": c["selected_share"],
                        **shared}))
        return runs

    def run_count(self) -> int:
        c = self.cfg
        return len(c["seeds"]) * (1 + len(c["strong"]["widths"]) * len(CONDITIONS))

    def shape_key(self, run: Run) -> Hashable:
        return run["seed"]

    def shard_label(self, run: Run) -> str:
        return f"seed{run['seed']}"

    def shards(self) -> dict[str, list[Run]]:
        # the scorer and the strong models of one seed depend on each other: one job per seed
        return group_into_shards(self.runs(), self.shape_key, self.shard_label, max_runs=10**6)

    # ---- training ------------------------------------------------------------------------------
    def train_spec(self, steps: int, seed: int) -> LMTrainSpec:
        c = self.cfg
        return LMTrainSpec(tokens=steps * c["batch_size"] * c["corpus"]["seq_len"],
                           batch_size=c["batch_size"], lr=c["lr"], eval_points=8,
                           # the paper's WSD schedule: 0.1 % warmup, 75 % stable, 25 % decay
                           schedule="wsd", warmup_fraction=0.001, decay_fraction=0.25,
                           eval_tokens=16384, seed=seed + 1000 * self.config.get("seed_salt", 0),
                           checkpoint_every=self.cfg["checkpoint_every"])

    def train_shard(self, runs, device, ckpt_dir: Path, batching: str, log) -> xr.Dataset:
        c = self.cfg
        seed = runs[0]["seed"]
        spec = self.corpus_spec(seed)
        B = c["batch_size"]
        val = sample_documents(spec, c["eval_documents"], c["retrieval_fraction"], VAL_STREAM)
        kv, kv_mask = key_value_probe(spec, c["eval_documents"], KV_STREAM)
        rep, rep_mask = repeat_probe(spec, c["eval_documents"], REPEAT_STREAM)
        local = sample_documents(spec, c["eval_documents"], 0.0, LOCAL_STREAM)

        # 1. the scorer, pretrained on the mixture
        s = c["scorer"]
        scorer_docs = sample_documents(spec, s["steps"] * B, s["retrieval_fraction"], SCORER_STREAM)
        scorer_cfg = self.model_config(s["width"], s["n_layer"], s["n_head"])
        scorer_run = next(r for r in runs if r["role"] == "scorer")
        log(f"seed {seed}: scorer {parameter_counts(scorer_cfg)['total']:,} parameters, "
            f"{s['steps']} steps on documents {s['retrieval_fraction']:.0%} retrieval-heavy")
        scorer, result = train_lm(scorer_cfg, self.train_spec(s["steps"], seed),
                                  flatten(scorer_docs.tokens), flatten(val.tokens), device,
                                  Path(ckpt_dir) / f"{scorer_run.run_id}.pt", log, label="scorer")
        if result["status"] == "diverged":
            raise RuntimeError(f"seed {seed}: the scorer diverged at step "
                               f"{result['diverged_at_step']}; lower lr (studies.{self.name}.lr)")

        # 2. retrieval heads, masking, AttentionInfluence of the pool, selection
        head_score = ai.retrieval_scores(scorer, kv, kv_mask)
        masked = ai.top_heads(head_score, c["head_fraction"])
        controls = ai.control_head_sets(head_score, len(masked), seed)
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
        influence = ai.attention_influence(base_loss, ai.document_losses(scorer, pool.tokens, masked))
        chosen = ai.select_within_domains(influence, pool.domain, c["select_fraction"])
        log(f"seed {seed}: AUROC {ai.auroc(influence, pool.label):.3f}; selected "
            f"{chosen.sum():,} documents, {pool.label[chosen].mean():.1%} retrieval-heavy "
            f"(pool {pool.label.mean():.1%})")

        # 3. weak-to-strong: baseline vs selected-upsampled corpora at an equal token budget
        corpora = {"baseline": pool.tokens,
                   "selected": self.upsampled(pool.tokens, chosen, c["selected_share"], seed)}
        rows, kv_hits = [], []
        for run in runs:
            if run["role"] != "strong":
                continue
            cfg = self.model_config(run["width"], run["n_layer"], run["width"] // run["head_dim"])
            log(f"seed {seed}: strong width {run['width']} ({parameter_counts(cfg)['total']:,} "
                f"parameters) on {run['condition']}")
            model, res = train_lm(cfg, self.train_spec(run["steps"], seed),
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
                "retrieval_share": float(self.retrieval_share(pool, chosen, run["condition"],
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
            "head_masked": (("seed", "layer", "head"), self._head_mask(head_score.shape, masked)[None]),
            "head_control": (("seed", "layer", "head"),
                             self._head_mask(head_score.shape, sum(controls, []))[None]),
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

    @staticmethod
    def _head_mask(shape, heads) -> np.ndarray:
        mask = np.zeros(shape, dtype=np.int8)
        for layer, head in heads:
            mask[layer, head] = 1
        return mask

    @staticmethod
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

    @staticmethod
    def retrieval_share(pool, chosen, condition: str, share: float) -> float:
        """Expected fraction of retrieval-heavy documents in a condition's training corpus."""
        if condition == "baseline":
            return float(pool.label.mean())
        return (1 - share) * float(pool.label.mean()) + share * float(pool.label[chosen].mean())

    # ---- cube ----------------------------------------------------------------------------------
    META = {
        "width": ("d_model of the strong model", "1"),
        "condition": ("training data: baseline (the pool) or selected (the pool with the selected "
                      "documents upsampled), equal tokens", "1"),
        "seed": ("seed of the whole pipeline (corpus, scorer, strong models)", "1"),
        "n_params": ("parameters of the strong model (embeddings included)", "1"),
        "recall_kv": ("teacher-forced top-1 accuracy on the queried values of held-out key–value "
                      "documents", "1"),
        "recall_repeat": ("top-1 accuracy on the second copy of held-out repeat documents", "1"),
        "local_loss": ("mean next-token loss of held-out local (Markov) documents", "nat"),
        "mixture_loss": ("mean next-token loss of held-out documents of the pool's mixture", "nat"),
        "final_val_loss": ("trainer's last validation loss (pool mixture)", "nat"),
        "tokens": ("training tokens", "token"),
        "retrieval_share": ("fraction of retrieval-heavy documents in the training corpus", "1"),
        "diverged": ("1 if training produced a non-finite loss (left out of the fits)", "1"),
        "kv_hits": ("recall accuracy of each held-out key–value document", "1"),
        "probe_doc": ("held-out key–value document", "1"),
        "layer": ("scorer layer", "1"),
        "head": ("attention head within the layer", "1"),
        "doc": ("candidate document of the pool", "1"),
        "head_score": ("retrieval score: fraction of recall targets the head copies while the "
                       "scorer predicts them", "1"),
        "head_masked": ("1 for the retrieval heads masked by AttentionInfluence", "1"),
        "head_control": ("1 for heads in a control set (as many heads as masked, among the "
                         "others; every other head in turn when one is masked)", "1"),
        "influence": ("AttentionInfluence (L_masked − L_intact) / L_intact of the document", "1"),
        "doc_label": ("hidden label: 1 retrieval-heavy, 0 local", "1"),
        "doc_kind": ("hidden kind: 0 local, 1 key–value, 2 repeat", "1"),
        "doc_domain": ("domain (Markov source) of the document", "1"),
        "doc_selected": ("1 if selected (top fraction within its domain)", "1"),
        "scorer_final_val_loss": ("scorer's last validation loss", "nat"),
        "scorer_local_loss_intact": ("scorer's loss on held-out local documents", "nat"),
        "scorer_local_loss_masked": ("the same with the retrieval heads masked", "nat"),
    }
    for probe in ("kv", "repeat"):
        for state, what in (("intact", "intact"), ("masked", "retrieval heads masked"),
                            ("control", "control heads masked, mean over the control sets"),
                            ("control_min", "control heads masked, the most harmful set")):
            META[f"scorer_{probe}_{state}"] = (f"scorer's {probe} recall accuracy, {what}", "1")

    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        runs = xr.concat([r.drop_dims(["seed", "layer", "head", "doc"]) for r in shard_results],
                         dim="run")
        strong = runs.isel(run=runs["condition"].values != "scorer")
        names = ("n_params", "recall_kv", "recall_repeat", "local_loss", "mixture_loss",
                 "final_val_loss", "tokens", "retrieval_share", "diverged")
        table = pd.DataFrame({name: strong[name].values
                              for name in ("width", "condition", "run_seed", *names)})
        table = table.rename(columns={"run_seed": "seed"})
        table["kv_hits"] = list(strong["kv_hits"].values)
        cube = grid_from_records(table, dims=["width", "condition", "seed"], scalars=names,
                                 arrays={"kv_hits": ("probe_doc", np.arange(strong.sizes["probe_doc"]))})
        per_seed = xr.concat([r.drop_dims("run") for r in shard_results], dim="seed").sortby("seed")
        cube = xr.merge([cube, per_seed.reindex(seed=cube["seed"].values)])
        cube = cube.assign_coords(layer=np.arange(cube.sizes["layer"]),
                                  head=np.arange(cube.sizes["head"]), doc=np.arange(cube.sizes["doc"]))
        describe_variables(cube, self.META)
        c = self.cfg
        cube.attrs.update(title=self.title, kinds=", ".join(KINDS),
                          pool_retrieval_fraction=c["retrieval_fraction"],
                          scorer_retrieval_fraction=c["scorer"]["retrieval_fraction"],
                          head_fraction=c["head_fraction"], select_fraction=c["select_fraction"],
                          selected_share=c["selected_share"], seq_len=c["corpus"]["seq_len"],
                          vocab_size=c["corpus"]["vocab_size"], recall_chance=1.0 / (c["corpus"]["vocab_size"] - 3))
        return cube

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.Dataset:
        c = self.cfg
        usable, excluded = without_diverged(cube)
        resamples = c["bootstrap_resamples"]
        seeds = cube["seed"].values
        # AUROC per seed, with a bootstrap over the pool's documents
        aurocs, draws = [], []
        rng = np.random.default_rng(0)
        for seed in seeds:
            score, label = cube["influence"].sel(seed=seed).values, cube["doc_label"].sel(seed=seed).values
            aurocs.append(ai.auroc(score, label))
            for _ in range(min(resamples, 200)):
                idx = rng.integers(len(score), size=len(score))
                draws.append(ai.auroc(score[idx], label[idx]))
        selected = cube["doc_selected"] == 1
        precision = (cube["doc_label"].where(selected).sum("doc") / selected.sum("doc")).values
        # weak-to-strong: paired bootstrap over probe documents, seeds averaged
        hits = usable["kv_hits"]  # (width, condition, seed, probe_doc)
        gain_draws = seed_and_document_bootstrap(hits.sel(condition="baseline").values,
                                                 hits.sel(condition="selected").values, resamples, 1)
        gain = (hits.sel(condition="selected") - hits.sel(condition="baseline")).mean(("seed", "probe_doc"))
        log_n = np.log10(usable["n_params"].mean(("condition", "seed")).values)
        slope_draws = (np.polyfit(log_n, gain_draws, 1)[0] if len(log_n) >= 2
                       else np.full(resamples, np.nan))
        slope = np.polyfit(log_n, gain.values, 1)[0] if len(log_n) >= 2 else np.nan
        local = usable["local_loss"]
        local_change = (local.sel(condition="selected") - local.sel(condition="baseline")).mean("seed")
        q = np.nanpercentile
        fits = xr.Dataset({
            "auroc": ((), float(np.mean(aurocs)), {"long_name": "AUROC of AttentionInfluence for "
                                                   "the hidden retrieval-heavy label, mean over seeds",
                                                   "units": "1"}),
            "auroc_low": ((), q(draws, 2.5), {"long_name": "AUROC 2.5 % bootstrap quantile (documents "
                                                           "and seeds)", "units": "1"}),
            "auroc_high": ((), q(draws, 97.5), {"long_name": "AUROC 97.5 % bootstrap quantile",
                                                "units": "1"}),
            "selected_precision": ((), float(np.mean(precision)), {
                "long_name": "fraction of retrieval-heavy documents among the selected", "units": "1"}),
            "pool_base_rate": ((), float(cube["doc_label"].mean()), {
                "long_name": "fraction of retrieval-heavy documents in the pool", "units": "1"}),
            "recall_kv_mean": usable["recall_kv"].mean("seed").assign_attrs(
                long_name="held-out key–value recall, mean over seeds", units="1"),
            "local_loss_mean": local.mean("seed").assign_attrs(
                long_name="held-out local-document loss, mean over seeds", units="nat"),
            "recall_gain": gain.assign_attrs(long_name="recall accuracy, selected − baseline "
                                                       "(mean over seeds)", units="1"),
            "recall_gain_low": ("width", q(gain_draws, 2.5, axis=1), {
                "long_name": "recall gain 2.5 % quantile (bootstrap over seeds and held-out documents)",
                "units": "1"}),
            "recall_gain_high": ("width", q(gain_draws, 97.5, axis=1), {
                "long_name": "recall gain 97.5 % quantile", "units": "1"}),
            "local_loss_change": local_change.assign_attrs(
                long_name="local-document loss, selected − baseline (mean over seeds)", units="nat"),
            "gain_slope": ((), slope, {"long_name": "d(recall gain) / d log10(parameters), least "
                                                    "squares over the strong sizes", "units": "1"}),
            "gain_slope_low": ((), q(slope_draws, 2.5), {"long_name": "gain slope 2.5 % quantile",
                                                         "units": "1"}),
            "gain_slope_high": ((), q(slope_draws, 97.5), {"long_name": "gain slope 97.5 % quantile",
                                                           "units": "1"}),
        })
        fits.attrs.update(fit_method="AUROC by ranks; recall gains by a two-level bootstrap "
                                     f"({resamples} resamples): seeds, then held-out documents "
                                     "paired between the conditions; the gain's slope by least "
                                     "squares against log10 N",
                          excluded_diverged_runs=excluded)
        return fits

    # ---- figures -------------------------------------------------------------------------------
    def figure_head_scores(self, cube, fits):
        fig, axes = new_figure(ncols=2, width=4.2, height=3.4)
        ax = axes[0, 0]
        seed = cube["seed"].values[0]
        score = cube["head_score"].sel(seed=seed)
        image = ax.imshow(score.values, cmap="viridis", vmin=0, aspect="auto")
        ax.grid(False)
        for layer, head in zip(*np.nonzero(cube["head_masked"].sel(seed=seed).values)):
            ax.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle(
                (head - 0.5, layer - 0.5), 1, 1, fill=False, ec="red", lw=2))
        ax.set(xlabel="head", ylabel="layer", title=f"retrieval score (seed {seed})",
               xticks=range(score.sizes["head"]), yticks=range(score.sizes["layer"]))
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax = axes[0, 1]
        states = ("intact", "masked", "control")
        x = np.arange(len(states))
        for i, probe in enumerate(("kv", "repeat")):
            values = [float(cube[f"scorer_{probe}_{s}"].mean()) for s in states]
            ax.bar(x + (i - 0.5) * 0.38, values, 0.38,
                   label="key–value recall" if probe == "kv" else "repeat copy")
        ax.axhline(cube.attrs["recall_chance"], color="grey", ls=":", label="chance")
        ax.set_xticks(x, ["intact", "retrieval heads\nmasked", "other heads\nmasked (mean)"])
        ax.set(ylabel="accuracy", ylim=(0, 1.05), title="scorer on held-out probes")
        ax.legend(fontsize=7)
        return fig

    def figure_influence(self, cube, fits):
        fig, axes = new_figure(ncols=2, width=4.2, height=3.4)
        ax = axes[0, 0]
        score, kind = cube["influence"].values.ravel(), cube["doc_kind"].values.ravel()
        bins = np.linspace(np.nanpercentile(score, 0.5), np.nanpercentile(score, 99.5), 50)
        for k, name in enumerate(KINDS):
            ax.hist(score[kind == k], bins=bins, histtype="step", density=True, lw=1.5,
                    label=name.replace("_", "–"))
        threshold = np.nanmin(np.where(cube["doc_selected"].values.ravel() == 1, score, np.nan))
        ax.axvline(threshold, color="k", ls="--", lw=1, label="selection threshold (lowest)")
        ax.set(xlabel="AttentionInfluence (relative loss increase)", ylabel="density")
        ax.legend(fontsize=7)
        ax = axes[0, 1]
        label = cube["doc_label"].values.ravel()
        order = np.argsort(-score, kind="stable")
        tpr = np.cumsum(label[order] == 1) / max(1, (label == 1).sum())
        fpr = np.cumsum(label[order] == 0) / max(1, (label == 0).sum())
        ax.plot(np.r_[0, fpr], np.r_[0, tpr], color="C3",
                label=f"AUROC {float(fits['auroc']):.3f} [{float(fits['auroc_low']):.3f}, "
                      f"{float(fits['auroc_high']):.3f}]")
        ax.plot([0, 1], [0, 1], color="grey", ls=":")
        ax.set(xlabel="false-positive rate", ylabel="true-positive rate",
               title="finding retrieval-heavy documents")
        ax.legend(fontsize=7, loc="lower right")
        return fig

    def figure_weak_to_strong(self, cube, fits):
        fig, axes = new_figure(ncols=2, width=4.2, height=3.4)
        n = cube["n_params"].mean(("condition", "seed"))
        ax = axes[0, 0]
        hits = cube["kv_hits"]
        for i, condition in enumerate(CONDITIONS):
            acc = fits["recall_kv_mean"].sel(condition=condition)
            values = hits.sel(condition=condition).values  # (width, seed, probe_doc)
            draws = seed_and_document_bootstrap(np.zeros_like(values), values, 200, i)
            low, high = np.nanpercentile(draws, [2.5, 97.5], axis=-1)
            ax.errorbar(n, acc, yerr=[acc - low, high - acc], fmt="o-", capsize=3,
                        label=f"{condition} ({float(cube['retrieval_share'].sel(condition=condition).mean()):.0%} "
                              "retrieval-heavy)")
        ax.axhline(cube.attrs["recall_chance"], color="grey", ls=":", label="chance")
        ax.set(xscale="log", xlabel="parameters N", ylabel="held-out key–value recall",
               ylim=(0, 1.05))
        ax.legend(fontsize=7)
        self._size_ticks(ax, n)
        ax = axes[0, 1]
        for condition in CONDITIONS:
            ax.plot(n, fits["local_loss_mean"].sel(condition=condition), "o-", label=condition)
        ax.set(xscale="log", xlabel="parameters N", ylabel="local-document loss (nat/token)")
        ax.legend(fontsize=7)
        self._size_ticks(ax, n)
        return fig

    @staticmethod
    def _size_ticks(ax, n_params):
        """One tick per strong model (log ticks crowd over a factor of two)."""
        ax.set_xticks(n_params.values, [f"d={w}\n{v / 1e3:.0f}k" for w, v in
                                        zip(n_params["width"].values, n_params.values)])
        ax.minorticks_off()

    # ---- claims --------------------------------------------------------------------------------
    def claims(self, cube, fits) -> list[Claim]:
        c = self.cfg
        s = c["scorer"]
        toy = (f"toy: synthetic documents of {c['corpus']['seq_len']} tokens; scorer d = {s['width']}, "
               f"{s['n_layer']} layers × {s['n_head']} heads, pretrained on a "
               f"{s['retrieval_fraction']:.0%} retrieval-heavy mixture ({s['steps']} steps); strong "
               f"widths {c['strong']['widths']}, {c['strong']['steps']} steps, {len(c['seeds'])} "
               "seed(s); the paper scores a web corpus with a 1.3B LM and trains a 7B model")
        out = ClaimList(self.preset, toy)

        add = out.add

        intact = float(cube["scorer_kv_intact"].mean())
        masked, control = float(cube["scorer_kv_masked"].mean()), float(cube["scorer_kv_control"].mean())
        add("scorer_has_retrieval_heads", "the scorer recalls values from its context "
            "(held-out key–value recall; accepted ≥ 0.5)", "the 1.3B scorer solves the "
            "3-shot key–value probe", "paper (App. C)", 0.75, 0.25, intact)
        add("masking_collapses_recall", "recall with the retrieval heads masked, relative to "
            "intact (accepted ≤ 0.2)", "ICL probe 0.41 → 0.0001 with retrieval heads masked",
            "paper (Table 6)", 0.0, 0.2, masked / intact if intact > 0 else np.nan,
            f"({intact:.3f} → {masked:.3f})")
        worst = float(cube["scorer_kv_control_min"].mean())
        add("control_heads_barely_matter", "recall with as many other heads masked (mean over "
            "the control sets), relative to intact (accepted ≥ 0.8)",
            "masking random non-retrieval heads barely changes scores", "paper (Table 6)", 1.0, 0.2,
            control / intact if intact > 0 else np.nan,
            f"({intact:.3f} → {control:.3f}; the most harmful other head(s): {worst:.3f})")
        add("score_finds_retrieval_documents", "AUROC of AttentionInfluence for the hidden "
            "retrieval-heavy label (accepted ≥ 0.8)", "selected data is reasoning- and "
            "retrieval-heavy (qualitative)", "paper (§4)", 1.0, 0.2, float(fits["auroc"]),
            f"[{float(fits['auroc_low']):.3f}, {float(fits['auroc_high']):.3f}]; selected "
            f"{float(fits['selected_precision']):.1%} retrieval-heavy vs "
            f"{float(fits['pool_base_rate']):.1%} in the pool",
            ci=(float(fits["auroc_low"]), float(fits["auroc_high"])))
        gains = fits["recall_gain"]
        smallest = int(np.argmin(gains.values))
        widths = gains["width"].values
        add("weak_to_strong_gain", "larger models trained with the selected data recall better at "
            "equal tokens: the smallest gain over the strong sizes, lower 95 % bound "
            "(accepted ≥ 0.001)", "+1.4 to +3.5 pp on MMLU, GSM8K, HumanEval … (7B, 1T tokens)",
            "paper (Table 2)", 0.5005, 0.4995, float(fits["recall_gain_low"][smallest]),
            "; ".join(f"w{w}: {float(g):+.3f} [{float(lo):+.3f}, {float(hi):+.3f}]"
                      for w, g, lo, hi in zip(widths, gains.values, fits["recall_gain_low"].values,
                                              fits["recall_gain_high"].values)))
        add("gain_grows_with_size", "the recall gain does not shrink with the strong model's size: "
            "gain at the largest minus at the smallest size (accepted ≥ 0)", "gain appears early "
            "and persists (7B); the 7B scorer beats the 1.3B one", "paper (§4, Fig. 3)", 0.5, 0.5,
            float(gains[-1] - gains[0]) if len(widths) >= 2 else np.nan,
            f"(slope {float(fits['gain_slope']):+.3f} per decade of N "
            f"[{float(fits['gain_slope_low']):+.3f}, {float(fits['gain_slope_high']):+.3f}])")
        change = fits["local_loss_change"]
        add("general_ability_kept", "loss of local documents, selected − baseline, at the largest "
            "size (accepted within ± 0.05 nat)", "no loss on general benchmarks (MMLU +1.4 pp)",
            "paper (Table 2)", 0.0, 0.05, float(change.isel(width=-1)),
            "; ".join(f"w{w}: {float(v):+.4f}" for w, v in zip(change["width"].values, change.values)))
        return out
