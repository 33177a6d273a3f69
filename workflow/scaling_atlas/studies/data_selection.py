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

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.cubes import grid_from_records, without_diverged
from scaling_atlas.figures import new_figure
from scaling_atlas.laws.resampling import (percentile_interval, resample_seeds,
                                           seed_and_document_bootstrap, statistic_bootstrap)
from scaling_atlas.runs import Run, group_into_shards
from scaling_atlas.selection import scores
from scaling_atlas.selection.corpus import KINDS, CorpusSpec
from scaling_atlas.studies.base import Study

CONDITIONS = ("baseline", "selected")
#: bootstrap draws of the AUROC per seed (each ranks the whole candidate pool)
AUROC_RESAMPLES = 200


class DataSelectionStudy(Study):
    kind = "data_selection"
    finite_results = ("final_val_loss",)
    title = "Data selection by AttentionInfluence: a toy of Hua et al. (2025)"

    # ---- config ------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        c, problems = self.settings, []
        problems += [f"corpus: {p}" for p in CorpusSpec.from_settings(c["corpus"], 0).problems()]
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
        c = self.settings
        shared = {"corpus": c["corpus"], "scorer": c["scorer"], "retrieval_fraction":
                  c["retrieval_fraction"], "head_fraction": c["head_fraction"],
                  "select_fraction": c["select_fraction"], "batch_size": c["batch_size"],
                  "lr": c["lr"], "seed_salt": self.workflow_config.get("seed_salt", 0)}
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
        c = self.settings
        return len(c["seeds"]) * (1 + len(c["strong"]["widths"]) * len(CONDITIONS))

    def shape_key(self, run: Run) -> Hashable:
        return run["seed"]

    def shard_label(self, run: Run) -> str:
        return f"seed{run['seed']}"

    def shards(self) -> dict[str, list[Run]]:
        # the scorer and the strong models of one seed depend on each other: one job per seed
        return group_into_shards(self.runs(), self.shape_key, self.shard_label, max_runs=10**6)

    # ---- training ------------------------------------------------------------------------------
    def train_shard(self, runs, device, ckpt_dir: Path, batching: str, log) -> xr.Dataset:
        """One seed's whole pipeline (``scaling_atlas.selection.pipeline``)."""
        from scaling_atlas.selection.pipeline import train_seed

        return train_seed(self.settings, self.workflow_config.get("seed_salt", 0), self.name, runs, device,
                          Path(ckpt_dir), log)

    # ---- cube ----------------------------------------------------------------------------------
    VARIABLES = {
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
            VARIABLES[f"scorer_{probe}_{state}"] = (f"scorer's {probe} recall accuracy, {what}", "1")
    VARIABLES.update({
        "auroc": ("AUROC of AttentionInfluence for the hidden retrieval-heavy label, mean over "
                  "seeds", "1"),
        "auroc_low": ("AUROC 2.5 % bootstrap quantile (seeds, then the pool's documents within "
                      "each)", "1"),
        "auroc_high": ("AUROC 97.5 % bootstrap quantile", "1"),
        "selected_precision": ("fraction of retrieval-heavy documents among the selected", "1"),
        "pool_base_rate": ("fraction of retrieval-heavy documents in the pool", "1"),
        "recall_kv_mean": ("held-out key–value recall, mean over seeds", "1"),
        "local_loss_mean": ("held-out local-document loss, mean over seeds", "nat"),
        "recall_gain": ("recall accuracy, selected − baseline (mean over seeds)", "1"),
        "recall_gain_low": ("recall gain 2.5 % quantile (bootstrap over seeds and held-out "
                            "documents)", "1"),
        "recall_gain_high": ("recall gain 97.5 % quantile", "1"),
        "local_loss_change": ("local-document loss, selected − baseline (mean over seeds)", "nat"),
        "gain_slope": ("d(recall gain) / d log10(parameters), least squares over the strong "
                       "sizes", "1"),
        "gain_slope_low": ("gain slope 2.5 % quantile", "1"),
        "gain_slope_high": ("gain slope 97.5 % quantile", "1"),
    })

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
        c = self.settings
        cube.attrs.update(title=self.title, kinds=", ".join(KINDS),
                          pool_retrieval_fraction=c["retrieval_fraction"],
                          scorer_retrieval_fraction=c["scorer"]["retrieval_fraction"],
                          head_fraction=c["head_fraction"], select_fraction=c["select_fraction"],
                          selected_share=c["selected_share"], seq_len=c["corpus"]["seq_len"],
                          vocab_size=c["corpus"]["vocab_size"], recall_chance=1.0 / (c["corpus"]["vocab_size"] - 3))
        return self.describe(cube)

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.Dataset:
        c = self.settings
        usable, excluded = without_diverged(cube)
        resamples = c["bootstrap_resamples"]
        seeds = cube["seed"].values
        # AUROC per seed; its interval by a two-level bootstrap like the gains': the pool's
        # documents within each seed (at most AUROC_RESAMPLES draws: each ranks the whole pool),
        # then the seeds
        aurocs, per_seed = [], []
        for i, seed in enumerate(seeds):
            score, label = cube["influence"].sel(seed=seed).values, cube["doc_label"].sel(seed=seed).values
            aurocs.append(scores.auroc(score, label))
            per_seed.append(statistic_bootstrap(scores.auroc, (score, label),
                                                min(resamples, AUROC_RESAMPLES),
                                                np.random.default_rng([0, i])))
        draws = resample_seeds(np.stack(per_seed), 0)
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
        auroc_low, auroc_high = percentile_interval(draws)
        gain_low, gain_high = percentile_interval(gain_draws, axis=1)
        slope_low, slope_high = percentile_interval(slope_draws)
        fits = xr.Dataset({
            "auroc": float(np.mean(aurocs)), "auroc_low": auroc_low, "auroc_high": auroc_high,
            "selected_precision": float(np.mean(precision)),
            "pool_base_rate": float(cube["doc_label"].mean()),
            "recall_kv_mean": usable["recall_kv"].mean("seed"),
            "local_loss_mean": local.mean("seed"),
            "recall_gain": gain, "recall_gain_low": ("width", gain_low),
            "recall_gain_high": ("width", gain_high), "local_loss_change": local_change,
            "gain_slope": slope, "gain_slope_low": slope_low, "gain_slope_high": slope_high,
        })
        fits.attrs.update(fit_method="AUROC by ranks, its interval by a two-level bootstrap "
                                     f"(≤ {AUROC_RESAMPLES} resamples): seeds, then the pool's "
                                     "documents; recall gains by a two-level bootstrap "
                                     f"({resamples} resamples): seeds, then held-out documents "
                                     "paired between the conditions; the gain's slope by least "
                                     "squares against log10 N",
                          excluded_diverged_runs=excluded)
        return self.describe(fits)

    # ---- figures -------------------------------------------------------------------------------
    def _figure_head_scores(self, cube, fits):
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

    def _figure_influence(self, cube, fits):
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

    def _figure_weak_to_strong(self, cube, fits):
        fig, axes = new_figure(ncols=2, width=4.2, height=3.4)
        n = cube["n_params"].mean(("condition", "seed"))
        ax = axes[0, 0]
        hits = cube["kv_hits"]
        for i, condition in enumerate(CONDITIONS):
            acc = fits["recall_kv_mean"].sel(condition=condition)
            values = hits.sel(condition=condition).values  # (width, seed, probe_doc)
            draws = seed_and_document_bootstrap(np.zeros_like(values), values, 200, i)
            low, high = percentile_interval(draws, axis=-1)
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
    CLAIMS = (
        ClaimSpec("scorer_has_retrieval_heads", "the scorer recalls values from its context "
                  "(held-out key–value recall; accepted ≥ 0.5)", "the 1.3B scorer solves the "
                  "3-shot key–value probe", "paper (App. C)", 0.75, 0.25),
        ClaimSpec("masking_collapses_recall", "recall with the retrieval heads masked, relative to "
                  "intact (accepted ≤ 0.2)", "ICL probe 0.41 → 0.0001 with retrieval heads masked",
                  "paper (Table 6)", 0.0, 0.2),
        ClaimSpec("control_heads_barely_matter", "recall with as many other heads masked (mean "
                  "over the control sets), relative to intact (accepted ≥ 0.8)",
                  "masking random non-retrieval heads barely changes scores", "paper (Table 6)",
                  1.0, 0.2),
        ClaimSpec("score_finds_retrieval_documents", "AUROC of AttentionInfluence for the hidden "
                  "retrieval-heavy label (accepted ≥ 0.8)", "selected data is reasoning- and "
                  "retrieval-heavy (qualitative)", "paper (§4)", 1.0, 0.2),
        ClaimSpec("weak_to_strong_gain", "larger models trained with the selected data recall "
                  "better at equal tokens: the smallest gain over the strong sizes, lower 95 % "
                  "bound (accepted ≥ 0.001)", "+1.4 to +3.5 pp on MMLU, GSM8K, HumanEval … (7B, "
                  "1T tokens)", "paper (Table 2)", 0.5005, 0.4995),
        ClaimSpec("gain_grows_with_size", "the recall gain does not shrink with the strong "
                  "model's size: gain at the largest minus at the smallest size (accepted ≥ 0)",
                  "gain appears early and persists (7B); the 7B scorer beats the 1.3B one",
                  "paper (§4, Fig. 3)", 0.5, 0.5),
        ClaimSpec("general_ability_kept", "loss of local documents, selected − baseline, at the "
                  "largest size (accepted within ± 0.05 nat)", "no loss on general benchmarks "
                  "(MMLU +1.4 pp)", "paper (Table 2)", 0.0, 0.05),
    )

    def claim_deviations(self, cube) -> str:
        c = self.settings
        s = c["scorer"]
        return (f"toy: synthetic documents of {c['corpus']['seq_len']} tokens; scorer d = {s['width']}, "
                f"{s['n_layer']} layers × {s['n_head']} heads, pretrained on a "
                f"{s['retrieval_fraction']:.0%} retrieval-heavy mixture ({s['steps']} steps); strong "
                f"widths {c['strong']['widths']}, {c['strong']['steps']} steps, {len(c['seeds'])} "
                "seed(s); the paper scores a web corpus with a 1.3B LM and trains a 7B model")

    def measure(self, cube, fits) -> dict[str, Measured]:
        intact = float(cube["scorer_kv_intact"].mean())
        masked, control = float(cube["scorer_kv_masked"].mean()), float(cube["scorer_kv_control"].mean())
        worst = float(cube["scorer_kv_control_min"].mean())
        gains = fits["recall_gain"]
        smallest = int(np.argmin(gains.values))
        widths = gains["width"].values
        change = fits["local_loss_change"]
        return {
            "scorer_has_retrieval_heads": Measured(intact),
            "masking_collapses_recall": Measured(masked / intact if intact > 0 else np.nan,
                                                 f"({intact:.3f} → {masked:.3f})"),
            "control_heads_barely_matter": Measured(
                control / intact if intact > 0 else np.nan,
                f"({intact:.3f} → {control:.3f}; the most harmful other head(s): {worst:.3f})"),
            "score_finds_retrieval_documents": Measured(
                float(fits["auroc"]),
                f"[{float(fits['auroc_low']):.3f}, {float(fits['auroc_high']):.3f}]; selected "
                f"{float(fits['selected_precision']):.1%} retrieval-heavy vs "
                f"{float(fits['pool_base_rate']):.1%} in the pool",
                ci=(float(fits["auroc_low"]), float(fits["auroc_high"]))),
            "weak_to_strong_gain": Measured(
                float(fits["recall_gain_low"][smallest]),
                "; ".join(f"w{w}: {float(g):+.3f} [{float(lo):+.3f}, {float(hi):+.3f}]"
                          for w, g, lo, hi in zip(widths, gains.values, fits["recall_gain_low"].values,
                                                  fits["recall_gain_high"].values))),
            "gain_grows_with_size": Measured(
                float(gains[-1] - gains[0]) if len(widths) >= 2 else np.nan,
                f"(slope {float(fits['gain_slope']):+.3f} per decade of N "
                f"[{float(fits['gain_slope_low']):+.3f}, {float(fits['gain_slope_high']):+.3f}])"),
            "general_ability_kept": Measured(
                float(change.isel(width=-1)),
                "; ".join(f"w{w}: {float(v):+.4f}" for w, v in zip(change["width"].values, change.values))),
        }

    FIGURES = {
        "head_scores": ("Scorer heads: retrieval score on the key–value probe (left; the masked "
                        "heads are outlined) and recall accuracy of the intact scorer, with its "
                        "retrieval heads masked (uniform attention) and with as many other heads "
                        "masked (right).", _figure_head_scores),
        "influence": ("AttentionInfluence of the candidate documents, by their hidden kind "
                      "(left), and the ROC curve of the score for the retrieval-heavy label "
                      "(right).", _figure_influence),
        "weak_to_strong": ("Weak-to-strong: larger models trained on the pool (baseline) or on "
                           "the pool with the selected documents upsampled, at equal tokens: "
                           "held-out key–value recall (left) and loss of local documents (right) "
                           "against parameters. Bars: 95 % bootstrap intervals over held-out "
                           "documents (and seeds).", _figure_weak_to_strong),
    }
