"""Emergence measured with PassUntil (Hu et al. 2024), with the Mirage and Elusive analyses.

Grid: widths × seeds of the transformer family, every model trained on the same number of
tokens of one task mixture (``scaling_atlas/emergence/tasks.py``: k-digit addition, a memorised
lookup table, their composite, and a two-route recall task). After training, each model is
measured on every test instance (``emergence/evaluate.py``): the teacher-forced probability of
the gold answer (the exact pass probability at temperature 1), PassUntil by sampling until r
passes or k_max draws, greedy exact match and token edit distance, and for the addition tasks
log p of four multiple-choice candidates.

Fits (``shared/reference/emergence.md``): the task law F(N) = ln(−ln PU) = c + k ln N at dataset
and instance level, fitted on all but the largest model and used to predict it; the curvature
of F (bootstrapped quadratic: convex / linear / concave); the Mirage comparison of exact match
and edit distance against N and answer length; the Elusive chain of per-sample correlations with
compute; and the agreement between sampling and the exact probability.

The study class (this module) prepares the tasks, trains and measures the grid and assembles the
cube; :mod:`.fits`, :mod:`.figures` and :mod:`.claims` hold the analysis.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.corpus import write_corpus
from scaling_atlas.emergence import passuntil as pu
from scaling_atlas.emergence.tasks import KEY_DIGITS, VOCAB, TaskError, TaskSuite, decode
from scaling_atlas.studies.emergence import claims, figures, fits
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

CUBE_META = {
    "width": ("model width d_model", "1"), "seed": ("training seed", "1"),
    "task": ("task", "1"), "instance": ("test instance index within the task", "1"),
    "position": ("answer token position (the last is the end token ;)", "1"),
    "choice": ("multiple-choice candidate (0 = the gold answer)", "1"),
    "answer_len": ("answer tokens, end token included", "token"),
    "prompt_len": ("prompt tokens", "token"),
    "n_instances": ("test instances of the task", "1"),
    "token_logp": ("teacher-forced log p of the answer token given the prompt and the earlier "
                   "answer tokens", "nat"),
    "logp_answer": ("teacher-forced log p of the whole answer (sum over its tokens)", "nat"),
    "pu_exact": ("exact pass probability at temperature 1: exp(logp_answer)", "1"),
    "token_loss": ("mean per-token loss of the answer (−log p per token)", "nat/token"),
    "pu_samples": ("samples drawn: until the r-th pass, or k_max when censored", "1"),
    "pu_passes": ("passes among the samples (r unless censored)", "1"),
    "pu_censored": ("1 if k_max samples gave fewer than r passes", "1"),
    "pu_sampled": ("PassUntil estimate: (r−1)/(K−1), or passes/k_max when censored "
                   "(unbiased for this stopping rule)", "1"),
    "pu_plugin": ("biased plug-in estimate passes/K (for comparison only)", "1"),
    "pu_ci_low": ("lower end of the exact 95 % interval of the pass probability", "1"),
    "pu_ci_high": ("upper end of the exact 95 % interval of the pass probability", "1"),
    "greedy_correct": ("1 if the greedy answer equals the gold answer (exact match)", "1"),
    "greedy_token_correct": ("1 if the greedy token at this answer position is the gold one",
                             "1"),
    "edit_distance": ("token edit distance between the greedy and the gold answer (end token "
                      "excluded)", "token"),
    "choice_logp": ("teacher-forced log p of the candidate answer", "nat"),
    "compute": ("training compute 6·N·D", "FLOP"),
    "curve_token_loss": ("teacher-forced loss of the answer position during training (mean over "
                         "the task's first 64 test instances), at each validation point",
                         "nat/token"),
}


class EmergenceStudy(TransformerFamilyStudy):
    kind = "emergence"
    #: a per-size sweep only (lr_sweep_scope: size): a per-point sweep would keep every LR's
    #: per-instance evaluations in the cube
    supports_lr_sweep = True
    title = "Emergence measured with PassUntil (Hu et al. 2024), with the Mirage and Elusive analyses"
    VARIABLES = {**TransformerFamilyStudy.SCALAR_META, **CUBE_META, **fits.VARIABLES}
    FIGURES = figures.FIGURES

    # ---- tasks and corpus ----------------------------------------------------------------------
    def corpus_config(self) -> dict:
        return self.settings["tasks"]

    @cached_property
    def suite(self) -> TaskSuite:
        return TaskSuite(self.settings["tasks"])

    def vocab_size(self) -> int:
        return len(VOCAB)

    def corpus_problems(self) -> list[str]:
        tasks, sampling = self.settings["tasks"], self.settings["passuntil"]
        problems = []
        if tasks["table_size"] > 10**KEY_DIGITS:
            problems.append(f"tasks.table_size: keys are {KEY_DIGITS}-digit codes, so at most "
                            f"{10**KEY_DIGITS} keys have distinct prompts; {tasks['table_size']} "
                            "would give one prompt several answers (answers must be unique)")
            return problems
        if sampling["k_max"] < sampling["r"]:
            problems.append(f"passuntil.k_max: K_max = {sampling['k_max']} is smaller than r = "
                            f"{sampling['r']}; sampling could never reach r passes")
        if self.settings["lr_sweep"] and self.settings["lr_sweep_scope"] != "size":
            problems.append("lr_sweep_scope: the emergence study sweeps the LR per size (scope "
                            "size: each width's sweep at its first seed, the best LR for all its "
                            f"seeds), not per point ({self.settings['lr_sweep_scope']!r})")
        if len(self.settings["widths"]) < 3:
            problems.append("widths: the task law needs at least 3 sizes (2 to fit, 1 to predict)")
        try:
            suite = self.suite
        except TaskError as error:
            return problems + [str(error)]
        if not problems and self.settings["regime_checks"]:
            problems = self.regime_problems()
        for name, instances in suite.test_sets.items():
            context = 1 + instances.prompts.shape[1] + instances.answer_len - 1
            if context > self.settings["seq_len"]:
                problems.append(f"seq_len: task {name} needs a context of {context} tokens (the "
                                f"previous document's end token, a {instances.prompts.shape[1]}-"
                                f"token prompt and a {instances.answer_len}-token answer), longer "
                                f"than seq_len = {self.settings['seq_len']}")
        return problems

    def regime_problems(self) -> list[str]:
        """Issue #18's rules for a grid that can test the task law (``regime_checks: true``, as
        in the reproduce and paper presets): ≥ 7 widths on a ladder spaced ×1.3–1.5 in N, every
        run ≥ 1000 steps, a per-size LR sweep, ≥ 2 seeds."""
        cfg, problems = self.settings, []
        sizes = [self.model_size(w) for w in cfg["widths"]]
        spacing, ratios, ok = self.ladder_spacing(sizes)
        if not ok:
            problems.append(f"widths: {len(sizes)} sizes (N {min(sizes):,}–{max(sizes):,}) spaced "
                            f"×{spacing:.2f} on average (steps {', '.join(f'{r:.2f}' for r in ratios)}); "
                            "the regime needs ≥ 7 sizes spaced ×1.3–1.5, each step ×1.15–1.75 "
                            "(rule: regime_checks)")
        steps = cfg["tokens"] / (cfg["batch_size"] * cfg["seq_len"])
        if steps < 1000:
            problems.append(f"tokens: {cfg['tokens']:,} tokens are {steps:.0f} steps of "
                            f"{cfg['batch_size']} × {cfg['seq_len']}; every run needs ≥ 1000 "
                            "(rule: regime_checks)")
        problems += self.sweep_rule_problems()
        if len(cfg["seeds"]) < 2:
            problems.append(f"seeds: {cfg['seeds']}; the regime needs ≥ 2 seeds (rule: regime_checks)")
        return problems

    def prepare_corpus(self, out_dir, cache_dir, log) -> dict:
        from pathlib import Path

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suite = self.suite
        train = suite.stream(self.tokens_needed() + self.settings["seq_len"] + 1, stream=1)
        val = suite.stream(self.settings["val_tokens"], stream=2)
        meta = {"source": "tasks", "vocab_size": len(VOCAB), "vocabulary": "".join(VOCAB),
                "end_token": VOCAB.index(";"), "tokenizer": "characters",
                "tokens_needed": int(self.tokens_needed()), "tasks": self.settings["tasks"],
                "task_weights": dict(zip(suite.tasks, suite.weights.tolist())),
                "document_lengths": {n: t.document_length() for n, t in suite.tasks.items()},
                "mean_document_length": suite.mean_document_length(),
                "table_values": suite.table.values.tolist(),
                "examples": {n: decode(np.hstack([s.prompts[0], s.answers[0]]))
                             for n, s in suite.test_sets.items()}}
        log(f"tasks: {len(train):,} training tokens ({len(train) / suite.mean_document_length():,.0f} "
            f"documents), {len(val):,} validation; weights {meta['task_weights']}")
        return write_corpus(out, train, val, meta)

    # ---- grid ----------------------------------------------------------------------------------
    #: test instances per task whose teacher-forced loss is followed during training
    CURVE_INSTANCES = 64

    def training_curve_dims(self) -> dict:
        sets = self.suite.test_sets
        length = max(s.answer_len for s in sets.values())
        return {"curve_token_loss": (("task", "position"),
                                     {"task": list(sets), "position": np.arange(length)})}

    def training_curves(self, run, device):
        """The mean teacher-forced loss of each task's answer positions at every validation
        point (the first 64 test instances): how each skill leaves its plateau in training."""
        from scaling_atlas.emergence.evaluate import answer_logprobs

        sets = self.suite.test_sets
        length = max(s.answer_len for s in sets.values())

        def measure(model) -> dict:
            model.eval()
            out = np.full((len(sets), length), np.nan)
            for t, inst in enumerate(sets.values()):
                first = slice(0, self.CURVE_INSTANCES)
                logp = answer_logprobs(model, inst.prompts[first], inst.answers[first], device)
                out[t, : inst.answer_len] = -logp.mean(axis=0)
            return {"curve_token_loss": out}

        return measure

    def run_extras(self, run, model, corpus_meta) -> dict:
        from scaling_atlas.emergence.evaluate import evaluate_suite

        sampling = self.settings["passuntil"]
        rng = np.random.default_rng([sampling["seed"], run["width"], run["seed"]])
        device = next(model.parameters()).device
        metrics = evaluate_suite(model, self.suite.test_sets, sampling["r"], sampling["k_max"], rng,
                                 device, sampling["block"])
        sizes = {"task": list(self.suite.test_sets), **{d: None for d in ("instance", "position", "choice")}}
        extras = {}
        for name, (dims, values) in metrics.items():
            coords = {d: (sizes[d] if sizes[d] is not None else np.arange(values.shape[i]))
                      for i, d in enumerate(dims)}
            extras[name] = (dims, values, coords)
        return extras

    # ---- cube ----------------------------------------------------------------------------------
    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        combined = xr.concat(shard_results, dim="run")
        sweep = None
        if self.sweeps_per_size:  # the sweep's losses per (width, LR); its losers leave the grid
            combined, sweep = self._split_size_sweep(combined)
            combined = combined.drop_vars(["peak_lr", "lr_sweep_run"])
        cube = combined.set_index(run=["width", "seed"]).unstack("run")
        order = ["width", "seed", "task", "instance", "position", "choice", "point"]
        cube = cube.transpose(*[d for d in order if d in cube.dims])
        if sweep is not None:
            cube = cube.merge(sweep)
        sets = self.suite.test_sets
        tasks = [str(t) for t in cube["task"].values]
        cube = cube.assign_coords(
            answer_len=("task", [sets[t].answer_len for t in tasks]),
            prompt_len=("task", [sets[t].prompts.shape[1] for t in tasks]),
            n_instances=("task", [len(sets[t]) for t in tasks]))
        sampling = self.settings["passuntil"]
        r, k_max = sampling["r"], sampling["k_max"]
        cube["logp_answer"] = cube["token_logp"].sum("position", min_count=1)
        cube["pu_exact"] = np.exp(cube["logp_answer"])
        cube["token_loss"] = -cube["token_logp"].mean("position")
        samples, passes = cube["pu_samples"], cube["pu_passes"]
        cube["pu_sampled"] = xr.apply_ufunc(pu.unbiased_estimate, samples, passes, r, k_max)
        cube["pu_sampled"] = cube["pu_sampled"].where(samples.notnull())
        cube["pu_plugin"] = (passes / samples).where(samples.notnull())
        low, high = pu.interval(samples.fillna(k_max).values, passes.fillna(0).values, r, k_max)
        cube["pu_ci_low"] = (samples.dims, np.where(samples.notnull(), low, np.nan))
        cube["pu_ci_high"] = (samples.dims, np.where(samples.notnull(), high, np.nan))
        cube["compute"] = cube["flops_6n"]
        cube.attrs.update(
            title=self.title, seq_len=self.settings["seq_len"], batch_size=self.settings["batch_size"],
            lr=(f"per width, from the sweep {self.settings['lr_sweep']} (variable lr)" if sweep is not None
                else self.settings["lr"]),
            schedule=self.settings["schedule"], tokens=self.settings["tokens"],
            passuntil_r=r, passuntil_k_max=k_max, temperature=1.0,
            vocabulary="".join(VOCAB), tasks=str(self.settings["tasks"]),
            family=f"pre-LN decoder, d/L = {self.settings['family']['aspect_ratio']}, head dim "
                   f"{self.settings['family']['head_dim']}",
            examples="; ".join(f"{t}: {decode(np.hstack([sets[t].prompts[0], sets[t].answers[0]]))}"
                               for t in tasks))
        return self.describe(cube)

    # ---- fits, claims --------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.DataTree:
        groups = fits.fit(cube, self.settings)
        return self.describe(xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()}))

    def claim_deviations(self, cube) -> str:
        return claims.claim_deviations(cube, self.settings)

    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        """Per task of the grid where a claim is about one task; measure() says which hold data."""
        return claims.claim_specs(cube)

    def measure(self, cube, fits_tree) -> dict[str, Measured]:
        # laws across sizes compare models trained alike: each size at its own tuned LR
        return claims.measure(cube, fits_tree, tuned=self.lr_premise(cube))
