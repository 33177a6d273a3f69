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
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured, Premise
from scaling_atlas.cubes import without_diverged
from scaling_atlas.corpus import write_corpus
from scaling_atlas.emergence import passuntil as pu
from scaling_atlas.emergence.tasks import KEY_DIGITS, VOCAB, TaskError, TaskSuite, decode
from scaling_atlas.figures import new_figure, new_panel, size_colours
from scaling_atlas.laws.resampling import percentile_interval
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

ESTIMATES = ("exact", "sampled")

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


#: the fit groups' variables (described as ``group/name``: the groups reuse the cube's names
#: for dataset-level quantities)
FIT_META = {
    "curves": {
        "pu_exact_ci_low": ("2.5th bootstrap percentile of the dataset-level exact pass "
                            "probability (instances resampled)", "1"),
        "pu_exact_ci_high": ("97.5th bootstrap percentile of the dataset-level exact pass "
                             "probability", "1"),
        "pu_sampled_ci_low": ("2.5th bootstrap percentile of the dataset-level PassUntil "
                              "estimate (instances resampled)", "1"),
        "pu_sampled_ci_high": ("97.5th bootstrap percentile of the dataset-level PassUntil "
                               "estimate", "1"),
        "pu_exact": ("dataset-level exact pass probability", "1"),
        "pu_sampled": ("dataset-level PassUntil estimate", "1"),
        "pu_plugin": ("dataset-level plug-in r/K (biased)", "1"),
        "greedy_accuracy": ("greedy exact match", "1"),
        "edit_distance": ("mean token edit distance of the greedy answer", "token"),
        "token_accuracy": ("per-token greedy accuracy over answer digits", "1"),
        "token_probability": ("geometric-mean teacher-forced probability of an answer digit", "1"),
        "censored_fraction": ("fraction of instances censored at k_max", "1"),
        "n_params": ("parameters N", "1"), "compute": ("training compute 6ND", "FLOP"),
        "sharpness_exact_match": ("sharpness of greedy exact match against N", "1"),
        "sharpness_edit_distance": ("sharpness of the greedy edit distance against N", "1"),
        "sharpness_log_pu": ("sharpness of log10 of the exact pass probability against N", "1")},
    "task_law": {
        "c": ("intercept of F fitted on the smaller models", "1"),
        "k": ("slope of F in ln N (−α)", "1"),
        "r2_small": ("R² of the linear law on the smaller models", "1"),
        "r2_all": ("R² of a linear law on all models", "1"),
        "pu_predicted": ("dataset-level prediction for the largest model", "1"),
        "pu_observed": ("dataset-level pass probability of the largest model", "1"),
        "relative_error": ("|predicted/observed − 1|, dataset-level", "1"),
        "ipu_predicted": ("instance-level prediction for the largest model (mean of per-instance laws)", "1"),
        "ipu_relative_error": ("|predicted/observed − 1|, instance-level", "1"),
        "instances_used": ("instances with an instance-level law", "1"),
        "instances_excluded": ("instances excluded from the instance-level fit", "1"),
        "curvature": ("quadratic coefficient of F(ln N)", "1"),
        "curvature_ci_low": ("2.5th bootstrap percentile of the curvature", "1"),
        "curvature_ci_high": ("97.5th bootstrap percentile of the curvature", "1"),
        "curvature_class": ("convex (sub-scaling), linear, or concave (accelerated emergence)", "1"),
        "curvature_draws": ("bootstrap draws of the curvature (resampled instances)", "1"),
        "estimate": ("exact: teacher-forced probabilities; sampled: PassUntil", "1")},
    "mirage": {
        "exact_match": ("greedy exact match", "1"),
        "edit_distance": ("greedy token edit distance", "token"),
        "token_accuracy": ("per-token greedy accuracy p over the answer digits", "1"),
        "exact_match_predicted": ("p^L", "1"),
        "edit_distance_predicted": ("L·(1 − p)", "token"),
        "answer_digits": ("answer digits L (end token excluded)", "token"),
        "n_params": ("parameters N", "1")},
    "elusive": {
        "correlation": ("per-sample Spearman correlation with log compute", "1"),
        "median_correlation": ("median over the group's samples", "1"),
        "q25_correlation": ("25th percentile over the group's samples", "1"),
        "q75_correlation": ("75th percentile over the group's samples", "1"),
        "defined_fraction": ("fraction of the group's samples whose score varies across models", "1"),
        "step": ("step of the transformation chain", "1"),
        "group": ("multiple-choice task group (addition: near-miss distractors; lookup: other "
                  "keys' values)", "1"),
        "sample": ("multiple-choice sample (task × instance)", "1"),
        "sample_group": ("the sample's task group", "1")},
    "sampling": {
        "coverage": ("fraction of (model, instance) whose exact probability lies in the "
                     "sampled 95 % interval", "1"),
        "sampled_over_exact": ("mean PassUntil estimate / mean exact probability", "1"),
        "plugin_over_exact": ("mean plug-in r/K / mean exact probability", "1"),
        "reached_fraction": ("fraction of evaluations that reached r passes", "1")},
}


def sharpness(values) -> float:
    """Largest rise between consecutive sizes as a fraction of the whole range: 1 for a step
    ("emergent"), 1/(n−1) for a straight line."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    span = np.ptp(values) if len(values) > 1 else 0.0
    return float(np.max(np.abs(np.diff(values))) / span) if span > 0 else math.nan


class EmergenceStudy(TransformerFamilyStudy):
    kind = "emergence"
    #: a per-size sweep only (lr_sweep_scope: size): a per-point sweep would keep every LR's
    #: per-instance evaluations in the cube
    supports_lr_sweep = True
    title = "Emergence measured with PassUntil (Hu et al. 2024), with the Mirage and Elusive analyses"
    VARIABLES = {**TransformerFamilyStudy.SCALAR_META, **CUBE_META,
                 **{f"{group}/{name}": entry for group, table in FIT_META.items()
                    for name, entry in table.items()}}
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

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.DataTree:
        cube, diverged = without_diverged(cube)
        n_params = cube["n_params"].mean("seed")
        groups = {"curves": self._curves(cube), "task_law": self._task_law(cube, n_params),
                  "mirage": self._mirage(cube), "elusive": self._elusive(cube),
                  "sampling": self._sampling_check(cube)}
        for ds in groups.values():
            ds.attrs["excluded_diverged_runs"] = diverged
        return self.describe(xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()}))

    def _bootstrap_instances(self, values: xr.DataArray, statistic) -> np.ndarray:
        """``statistic`` of instance-resampled data: (resamples, …) draws (seeded)."""
        rng = np.random.default_rng(self.settings["bootstrap_seed"])
        n = values.sizes["instance"]
        valid = np.flatnonzero(values.notnull().any([d for d in values.dims if d != "instance"]).values)
        draws = []
        for _ in range(self.settings["bootstrap_resamples"]):
            pick = rng.choice(valid, size=len(valid), replace=True) if len(valid) else np.arange(n)
            draws.append(statistic(values.isel(instance=pick)))
        return np.array(draws)

    def _curves(self, cube) -> xr.Dataset:
        """Dataset-level metrics per (task, width): means over seeds and instances."""
        mean = ["seed", "instance"]
        digits = cube["position"] < cube["answer_len"] - 1  # answer digits, end token excluded
        ds = xr.Dataset({
            "pu_exact": cube["pu_exact"].mean(mean),
            "pu_sampled": cube["pu_sampled"].mean(mean),
            "pu_plugin": cube["pu_plugin"].mean(mean),
            "greedy_accuracy": cube["greedy_correct"].mean(mean),
            "edit_distance": cube["edit_distance"].mean(mean),
            "token_accuracy": cube["greedy_token_correct"].where(digits).mean(mean + ["position"]),
            "token_probability": np.exp(cube["token_logp"].where(digits).mean(mean + ["position"])),
            "censored_fraction": cube["pu_censored"].mean(mean),
            "n_params": cube["n_params"].mean("seed"),
            "compute": cube["compute"].mean("seed"),
        }).transpose("task", "width")
        for metric, values in (("exact_match", ds["greedy_accuracy"]), ("edit_distance", ds["edit_distance"]),
                               ("log_pu", np.log10(ds["pu_exact"]))):
            ds[f"sharpness_{metric}"] = ("task", [sharpness(values.sel(task=t)) for t in ds["task"].values])
        for name in ("pu_exact", "pu_sampled"):
            draws = self._bootstrap_instances(
                cube[name], lambda v: v.mean(mean).transpose("task", "width").values)
            ds[f"{name}_ci_low"] = (("task", "width"), np.nanpercentile(draws, 2.5, axis=0))
            ds[f"{name}_ci_high"] = (("task", "width"), np.nanpercentile(draws, 97.5, axis=0))
        ds.attrs.update(aggregation="mean over seeds and test instances (Hu et al.'s dataset-level "
                                    "PU); CIs: 95 % percentile bootstrap over instances",
                        bootstrap_resamples=self.settings["bootstrap_resamples"],
                        sharpness="largest change between consecutive sizes / total range (1: a step)")
        return ds

    def _task_law(self, cube, n_params) -> xr.Dataset:
        """Per task and estimate: the law on the smaller models, its prediction of the largest,
        instance-level predictions, and the curvature of F over all sizes."""
        widths = cube["width"].values
        small, largest = widths[:-1], widths[-1]
        log_n = np.log(n_params.values)
        sampling = self.settings["passuntil"]
        rows = {key: np.full((cube.sizes["task"], 2), np.nan) for key in (
            "c", "k", "r2_small", "r2_all", "pu_predicted", "pu_observed", "relative_error",
            "ipu_predicted", "ipu_relative_error", "instances_used", "instances_excluded",
            "curvature", "curvature_ci_low", "curvature_ci_high")}
        classes = np.full((cube.sizes["task"], 2), "", dtype=object)
        curvature_draws = np.full((cube.sizes["task"], 2, self.settings["bootstrap_resamples"]), np.nan)
        for t, task in enumerate(cube["task"].values):
            for e, estimate in enumerate(ESTIMATES):
                values = cube[f"pu_{estimate}"].sel(task=task)
                dataset = values.mean(["seed", "instance"])
                F = pu.loglog(dataset.values)
                law = pu.fit_line(log_n[:-1], F[:-1])
                rows["c"][t, e], rows["k"][t, e], rows["r2_small"][t, e] = law["c"], law["k"], law["r2"]
                rows["r2_all"][t, e] = pu.fit_line(log_n, F)["r2"]
                observed = float(dataset.sel(width=largest))
                predicted = float(pu.task_law(law["c"], law["k"], n_params.sel(width=largest)))
                rows["pu_predicted"][t, e], rows["pu_observed"][t, e] = predicted, observed
                rows["relative_error"][t, e] = abs(predicted / observed - 1) if observed > 0 else math.nan
                ipu, used, excluded = (self._instance_prediction_exact(values, n_params, small, largest)
                                       if estimate == "exact" else
                                       self._instance_prediction_sampled(cube.sel(task=task), n_params,
                                                                         small, largest))
                rows["ipu_predicted"][t, e] = ipu
                rows["ipu_relative_error"][t, e] = abs(ipu / observed - 1) if observed > 0 else math.nan
                rows["instances_used"][t, e], rows["instances_excluded"][t, e] = used, excluded
                rows["curvature"][t, e] = pu.quadratic_curvature(log_n, F)
                draws = self._bootstrap_instances(
                    values, lambda v: pu.quadratic_curvature(log_n, pu.loglog(v.mean(["seed", "instance"]).values)))
                curvature_draws[t, e] = draws
                low, high = (np.nanpercentile(draws, [2.5, 97.5]) if np.isfinite(draws).any()
                             else (math.nan, math.nan))
                rows["curvature_ci_low"][t, e], rows["curvature_ci_high"][t, e] = low, high
                classes[t, e] = pu.classify_curvature(low, high)
        ds = xr.Dataset({k: (("task", "estimate"), v) for k, v in rows.items()},
                        coords={"task": cube["task"].values, "estimate": list(ESTIMATES)})
        ds["curvature_class"] = (("task", "estimate"), classes.astype(str))
        ds["curvature_draws"] = (("task", "estimate", "draw"), curvature_draws)
        ds.attrs.update(
            form="F = ln(−ln PU) = c + k·ln N (Hu et al. eq. 4; k = −α)",
            fitted_on=f"widths {list(map(int, small))} (all but the largest); predicted: width {int(largest)}",
            dataset_level="least squares on F of the mean pass probability over seeds and instances",
            instance_level_exact="least squares on each instance's F, predictions averaged (IPU); "
                                 "instances with P = 0 or 1 at a fitted size excluded and counted",
            instance_level_sampled="maximum likelihood per instance on the sampled counts, censored "
                                   "draws entering as p^S (1 − p)^F; instances with no pass at any "
                                   "fitted size excluded and counted",
            curvature="quadratic coefficient of F in centred ln N over all sizes; 95 % CI from a "
                      "bootstrap over instances; convex if the CI is above 0, concave if below",
            passuntil_r=sampling["r"], passuntil_k_max=sampling["k_max"])
        return ds

    @staticmethod
    def _instance_prediction_exact(values, n_params, small, largest):
        per_instance = values.mean("seed").sel(width=list(small))  # (width, instance)
        F = pu.loglog(per_instance.values)
        ok = np.isfinite(F).all(axis=0) & per_instance.notnull().all("width").values
        log_n = np.log(n_params.sel(width=list(small)).values)
        if not ok.any():
            return math.nan, 0, int(values.sizes["instance"])
        k, c = np.polyfit(log_n, F[:, ok], 1)
        predicted = pu.task_law(c, k, float(n_params.sel(width=largest)))
        present = values.notnull().any(["width", "seed"]).values
        return float(predicted.mean()), int(ok.sum()), int((present & ~ok).sum())

    def _instance_prediction_sampled(self, task_cube, n_params, small, largest):
        sel = task_cube.sel(width=list(small))
        successes = sel["pu_passes"].transpose("instance", "width", "seed").values
        failures = (sel["pu_samples"] - sel["pu_passes"]).transpose("instance", "width", "seed").values
        n = np.broadcast_to(n_params.sel(width=list(small)).values[:, None], successes.shape[1:])
        predictions, excluded = [], 0
        for s in range(successes.shape[0]):
            keep = np.isfinite(successes[s])
            if not keep.any():
                continue  # padding: the task has fewer instances
            fit = pu.censored_task_law(n[keep], successes[s][keep], failures[s][keep])
            if not math.isfinite(fit["c"]):
                excluded += 1
                continue
            predictions.append(pu.task_law(fit["c"], fit["k"], float(n_params.sel(width=largest))))
        if not predictions:
            return math.nan, 0, excluded
        return float(np.mean(predictions)), len(predictions), excluded

    def _mirage(self, cube) -> xr.Dataset:
        """Exact match and edit distance of the same greedy outputs, per addition task and width,
        with the independent-token predictions p^L and L·(1 − p) from the per-token accuracy."""
        tasks = [t for t in cube["task"].values if str(t).startswith("add")]
        sub = cube.sel(task=tasks)
        digits_count = sub["answer_len"] - 1
        in_answer = sub["position"] < digits_count
        mean = ["seed", "instance"]
        token_accuracy = sub["greedy_token_correct"].where(in_answer).mean(mean + ["position"])
        ds = xr.Dataset({
            "exact_match": sub["greedy_correct"].mean(mean),
            "edit_distance": sub["edit_distance"].mean(mean),
            "token_accuracy": token_accuracy,
            "exact_match_predicted": pu.mirage_exact_match(token_accuracy, digits_count),
            "edit_distance_predicted": pu.mirage_edit_distance(token_accuracy, digits_count),
            "answer_digits": digits_count,
            "n_params": cube["n_params"].mean("seed"),
        }).transpose("task", "width")
        ds.attrs.update(model="Schaeffer et al. 2023: Acc ≈ p^L, ED ≈ L·(1 − p) with p the "
                              "per-token accuracy of the greedy answer and L its digits")
        return ds

    @staticmethod
    def choice_groups(tasks) -> dict[str, list[str]]:
        """The multiple-choice tasks in Elusive's two groups: the addition tasks (an algorithm)
        and lookup (a memorised skill)."""
        groups = {"addition": [t for t in tasks if t.startswith("add")],
                  "lookup": [t for t in tasks if t == "lookup"]}
        return {g: ts for g, ts in groups.items() if ts}

    def _elusive(self, cube) -> xr.Dataset:
        """Per-sample Spearman correlation of each chain score with log compute across models,
        for each group of multiple-choice tasks (addition, lookup)."""
        has_choices = cube["choice_logp"].notnull().any(["width", "seed", "instance", "choice"])
        with_choices = [str(t) for t, ok in zip(cube["task"].values, has_choices.values) if ok]
        log_compute = np.log(cube["compute"].stack(model=["width", "seed"]).transpose("model").values)
        trained = np.isfinite(log_compute)  # diverged models are masked out
        groups = self.choice_groups(with_choices)
        correlations, sample_group = [], []
        for group, tasks in groups.items():
            logp = cube["choice_logp"].sel(task=tasks).stack(model=["width", "seed"],
                                                             sample=["task", "instance"])
            logp = logp.transpose("model", "sample", "choice").isel(model=trained)
            valid = logp.notnull().all("choice").all("model").values
            chain = pu.choice_chain(logp.values[:, valid], np.zeros(valid.sum(), dtype=int))
            correlations.append(np.array([pu.per_sample_correlations(chain[step], log_compute[trained])
                                          for step in pu.CHAIN]))
            sample_group += [group] * int(valid.sum())
        correlation = (np.concatenate(correlations, axis=1) if correlations
                       else np.empty((len(pu.CHAIN), 0)))
        sample_group = np.array(sample_group, dtype=str)
        names = list(groups)

        def per_group(statistic):
            return (("group", "step"), np.array([
                [statistic(row[sample_group == g]) if (sample_group == g).any() else math.nan
                 for row in correlation] for g in names]))

        finite = lambda f: (lambda row: f(row[np.isfinite(row)]) if np.isfinite(row).any()
                            else math.nan)
        ds = xr.Dataset({
            "correlation": (("step", "sample"), correlation),
            "median_correlation": per_group(finite(np.median)),
            "q25_correlation": per_group(finite(lambda r: np.percentile(r, 25))),
            "q75_correlation": per_group(finite(lambda r: np.percentile(r, 75))),
            "defined_fraction": per_group(lambda row: float(np.isfinite(row).mean())),
        }, coords={"step": list(pu.CHAIN), "group": names,
                   "sample": np.arange(correlation.shape[1]), "sample_group": ("sample", sample_group)})
        ds.attrs.update(tasks="; ".join(f"{g}: {', '.join(ts)}" for g, ts in groups.items()),
                        models=int(trained.sum()),
                        chain="log p_vocab(correct) → p_vocab → p_choice = p_vocab/Σ_choices → "
                              "accuracy, −Brier (Schaeffer et al. 2024)",
                        correlation="Spearman across models (widths × seeds) against ln(6ND); "
                                    "undefined (NaN) where a sample's score is constant")
        return ds

    def _sampling_check(self, cube) -> xr.Dataset:
        exact, low, high = cube["pu_exact"], cube["pu_ci_low"], cube["pu_ci_high"]
        present = cube["pu_samples"].notnull()
        inside = ((exact >= low) & (exact <= high)).where(present)
        reached = (cube["pu_censored"] == 0).where(present)
        ratio = lambda v: float(v.where(present).sum() / exact.where(present).sum())
        ds = xr.Dataset({
            "coverage": ("task", inside.mean(["width", "seed", "instance"]).values),
            "sampled_over_exact": ("task", (cube["pu_sampled"].mean(["width", "seed", "instance"])
                                            / exact.mean(["width", "seed", "instance"])).values),
            "plugin_over_exact": ("task", (cube["pu_plugin"].mean(["width", "seed", "instance"])
                                           / exact.mean(["width", "seed", "instance"])).values),
            "reached_fraction": ("task", reached.mean(["width", "seed", "instance"]).values),
        }, coords={"task": cube["task"].values})
        ds.attrs.update(coverage_all=float(inside.mean()), sampled_over_exact_all=ratio(cube["pu_sampled"]),
                        plugin_over_exact_all=ratio(cube["pu_plugin"]),
                        evaluations=int(present.sum()), censored=int((cube["pu_censored"] == 1).sum()),
                        interval="exact 95 % interval: Beta quantiles for inverse sampling, "
                                 "Clopper–Pearson when censored")
        return ds

    # ---- figures -------------------------------------------------------------------------------
    def _figure_pass_rates(self, cube, fits):
        curves = fits["curves"].to_dataset()
        tasks = list(curves["task"].values)
        ncols = 3
        fig, axes = new_figure(ncols=ncols, nrows=math.ceil(len(tasks) / ncols), width=3.6, height=3.0)
        n = curves["n_params"].values
        for ax, task in zip(axes.flat, tasks):
            c = curves.sel(task=task)
            ax.plot(n, c["pu_exact"], "C0-", label="exact (teacher-forced)")
            err = np.array([c["pu_sampled"] - c["pu_sampled_ci_low"], c["pu_sampled_ci_high"] - c["pu_sampled"]])
            ax.errorbar(n, c["pu_sampled"], yerr=np.clip(err, 0, None), fmt="o", color="C1", ms=4,
                        label="PassUntil (sampled)")
            ax.set(xscale="log", yscale="log", title=str(task), xlabel="parameters N")
            twin = ax.twinx()
            twin.plot(n, c["greedy_accuracy"], "s--", color="C2", ms=4, label="greedy exact match")
            twin.set_ylim(-0.05, 1.05)
            twin.tick_params(axis="y", colors="C2")
        for ax in axes.flat[len(tasks):]:
            ax.set_visible(False)
        axes[0, 0].set_ylabel("pass probability")
        handles = axes[0, 0].get_legend_handles_labels()
        axes[0, 0].legend(handles[0] + [twin.lines[0]], handles[1] + ["greedy exact match (right)"],
                          fontsize=6, loc="lower right")
        return fig

    def _figure_task_law(self, cube, fits):
        law = fits["task_law"].to_dataset().sel(estimate="exact")
        curves = fits["curves"].to_dataset()
        tasks = list(law["task"].values)
        ncols = 3
        fig, axes = new_figure(ncols=ncols, nrows=math.ceil(len(tasks) / ncols), width=3.6, height=3.0)
        log_n = np.log(curves["n_params"].values)
        for ax, task in zip(axes.flat, tasks):
            F = pu.loglog(curves["pu_exact"].sel(task=task).values)
            row = law.sel(task=task)
            ax.plot(log_n[:-1], F[:-1], "o", color="C0", label="fitted sizes")
            ax.plot(log_n[-1:], F[-1:], "o", color="C3", label="held out")
            x = np.linspace(log_n[0], log_n[-1], 50)
            ax.plot(x, float(row["c"]) + float(row["k"]) * x, "C0-", lw=1, label="task law")
            predicted = pu.loglog(float(row["pu_predicted"]))
            ax.plot(log_n[-1], predicted, "*", color="C3", ms=11, mec="k", label="prediction")
            keep = np.isfinite(F)
            if keep.sum() >= 4:
                centre = log_n[keep].mean()
                coef = np.polyfit(log_n[keep] - centre, F[keep], 2)
                ax.plot(x, np.polyval(coef, x - centre), ":", color="0.3", lw=1, label="quadratic")
            ax.set(title=f"{task}: {str(row['curvature_class'].values).split(' ')[0]}",
                   xlabel="ln N", ylabel="F = ln(−ln PU)")
        for ax in axes.flat[len(tasks):]:
            ax.set_visible(False)
        axes[0, 0].legend(fontsize=6)
        return fig

    def _figure_mirage(self, cube, fits):
        m = fits["mirage"].to_dataset()
        fig, axes = new_figure(ncols=2, width=4.4, height=3.4)
        left, right = axes[0]
        n = m["n_params"].values
        for i, task in enumerate(m["task"].values):
            row = m.sel(task=task)
            label = f"L = {int(row['answer_digits'])}"
            left.plot(n, row["exact_match"], "o-", color=f"C{i}", label=f"exact match, {label}")
            left.plot(n, row["edit_distance"] / float(row["answer_digits"]), "s--", color=f"C{i}",
                      ms=4, label=f"edit distance / L, {label}")
        left.set(xscale="log", xlabel="parameters N", ylabel="metric", ylim=(-0.05, 1.05),
                 title="same greedy outputs, two metrics")
        left.legend(fontsize=6)
        largest = m.isel(width=-1)
        L = largest["answer_digits"].values
        right.plot(L, largest["exact_match"], "o", color="C0", label="exact match")
        right.plot(L, largest["exact_match_predicted"], "C0--", label="p^L")
        right.plot(L, largest["edit_distance"], "s", color="C1", label="edit distance")
        right.plot(L, largest["edit_distance_predicted"], "C1--", label="L·(1 − p)")
        right.set(xlabel="answer digits L", ylabel="metric",
                  title=f"against answer length (N = {int(m['n_params'].values[-1]):,})")
        right.legend(fontsize=7)
        return fig

    def _figure_elusive(self, cube, fits):
        e = fits["elusive"].to_dataset()
        groups = [str(g) for g in e["group"].values]
        fig, axes = new_figure(ncols=max(1, len(groups)), width=4.6, height=3.8)
        for ax, group in zip(axes.flat, groups):
            rows = e["correlation"].values[:, e["sample_group"].values == group]
            data = [row[np.isfinite(row)] for row in rows]
            ax.boxplot(data, tick_labels=[str(s) for s in e["step"].values], showfliers=False)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set(ylabel="Spearman ρ(score, log compute) per sample", ylim=(-1.05, 1.05),
                   title=f"{group} ({rows.shape[1]} samples, {e.attrs['models']} models)")
            ax.tick_params(axis="x", labelsize=7)
        return fig

    def _figure_sampling_check(self, cube, fits):
        fig, ax = new_panel(width=5.0, height=4.2)
        exact = cube["pu_exact"].values.ravel()
        sampled = cube["pu_sampled"].values.ravel()
        low, high = cube["pu_ci_low"].values.ravel(), cube["pu_ci_high"].values.ravel()
        censored = cube["pu_censored"].values.ravel() == 1
        ok = np.isfinite(sampled) & (sampled > 0)
        reached = ok & ~censored
        ax.plot(exact[reached], sampled[reached], ".", ms=2, color="C0", alpha=0.4,
                label="reached r passes")
        ax.plot(exact[ok & censored], sampled[ok & censored], ".", ms=2, color="0.6", label="censored")
        shown = np.random.default_rng(0).permutation(np.flatnonzero(reached))[:300]  # legible bars
        ax.errorbar(exact[shown], sampled[shown], yerr=[sampled[shown] - low[shown], high[shown] - sampled[shown]],
                    fmt="none", lw=0.5, color="C1", alpha=0.6, label="95 % interval (300 shown)")
        span = [np.nanmin(exact[ok]) / 2, 1.0] if ok.any() else [1e-6, 1]
        ax.plot(span, span, "k--", lw=1)
        check = fits["sampling"].to_dataset().attrs
        ax.set(xscale="log", yscale="log", xlabel="exact pass probability (teacher-forced)",
               ylabel="PassUntil estimate",
               title=f"exact p inside the 95 % interval: {check['coverage_all']:.1%}")
        ax.legend(fontsize=7)
        return fig

    def _figure_token_loss(self, cube, fits):
        tasks = [str(t) for t in cube["task"].values]
        ncols = 3
        fig, axes = new_figure(ncols=ncols, nrows=math.ceil(len(tasks) / ncols), width=3.6, height=3.0)
        n = cube["n_params"].mean("seed").values
        loss = -cube["token_logp"].mean(["seed", "instance"])
        for ax, task in zip(axes.flat, tasks):
            length = int(cube["answer_len"].sel(task=task))
            for i in range(length):
                label = "end ;" if i == length - 1 else f"token {i + 1}"
                ax.plot(n, loss.sel(task=task, position=i), "o-", ms=3, color=f"C{i}", label=label)
            ax.axhline(math.log(10), color="0.4", ls=":", lw=1)
            ax.set(xscale="log", title=task, xlabel="parameters N", ylabel="loss (nats)")
            ax.legend(fontsize=6)
        for ax in axes.flat[len(tasks):]:
            ax.set_visible(False)
        return fig

    def _figure_token_loss_curves(self, cube, fits):
        tasks = [str(t) for t in cube["task"].values]
        ncols = 4
        fig, axes = new_figure(ncols=ncols, nrows=math.ceil(len(tasks) / ncols), width=3.2, height=2.7)
        widths = cube["width"].values
        colours = size_colours(len(widths))
        tokens = cube["curve_tokens"].mean("seed")
        for ax, task in zip(axes.flat, tasks):
            digits = int(cube["answer_len"].sel(task=task)) - 1
            loss = cube["curve_token_loss"].sel(task=task).isel(position=slice(0, digits))
            loss = loss.mean(["position", "seed"])
            for i, width in enumerate(widths):
                ax.plot(tokens.sel(width=width), loss.sel(width=width), "-", color=colours[i], lw=1.2,
                        label=f"d = {int(width)}")
            ax.axhline(math.log(10), color="0.4", ls=":", lw=1)
            ax.set(xscale="log", title=task, xlabel="tokens seen", ylabel="digit loss (nats)")
        for ax in axes.flat[len(tasks):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=6)
        return fig

    # ---- claims --------------------------------------------------------------------------------
    @staticmethod
    def _largest_digit_loss(cube, task: str) -> float:
        """The largest model's mean loss on the task's answer digits (the closing ``;`` aside)."""
        length = int(cube["answer_len"].sel(task=task))
        loss = -cube["token_logp"].sel(task=task).isel(position=slice(0, max(length - 1, 1)))
        return float(loss.isel(width=-1).mean())

    @classmethod
    def _learned_premise(cls, cube, task: str) -> Premise:
        """A skill exists only if the largest model's answer tokens (the closing ``;`` aside) are
        predicted well below a uniform guess over the 10 digits."""
        largest = cls._largest_digit_loss(cube, task)
        return Premise(f"{task} learned by the largest model (answer-digit loss < ½ ln 10)",
                       largest < 0.5 * math.log(10),
                       f"{largest:.2f} nats/token; a uniform guess is {math.log(10):.2f}")

    #: the pass probability must grow at least this much over the sizes for a task law to say
    #: anything: a flat PU (a skill at chance everywhere) is fitted and "predicted" trivially
    RISE_FACTOR = 2.0

    @classmethod
    def _rises_premise(cls, curves, task: str) -> Premise:
        pu_exact = curves["pu_exact"].sel(task=task).values
        rise = float(pu_exact[-1] / pu_exact[0]) if pu_exact[0] > 0 else math.inf
        return Premise(f"{task}'s pass probability rises over the sizes (largest / smallest ≥ "
                       f"{cls.RISE_FACTOR:g})", rise >= cls.RISE_FACTOR,
                       f"{pu_exact[0]:.3g} → {pu_exact[-1]:.3g}, ×{rise:.3g}")

    @classmethod
    def _above_chance_premise(cls, cube, task: str) -> Premise:
        """PassUntil predicts a skill before it emerges, but only from models that know something
        of it: the largest model's answer digits must beat a uniform guess (ln 10 nats), or
        the rising PU measures the digits' marginal frequencies (the unigram plateau)."""
        largest = cls._largest_digit_loss(cube, task)
        return Premise(f"{task} above chance at the largest size (answer-digit loss < ln 10)",
                       largest < math.log(10), f"{largest:.2f} nats/token")

    FIGURES = {
        "pass_rates": (
            'Pass probability against N per task: exact (teacher-forced, lines), PassUntil '
            'estimates (markers, 95 % bootstrap CI over instances) and greedy exact match '
            '(squares, right axis).', _figure_pass_rates),
        "task_law": (
            'F(N) = ln(−ln PU) against ln N per task (exact probabilities): the task law '
            'fitted on the smaller models (line), its prediction of the largest (star), and '
            'the bootstrapped quadratic that classifies the curvature (dotted).', _figure_task_law),
        "mirage": (
            "Schaeffer et al.'s Mirage on the same outputs: greedy exact match and token edit "
            'distance against N for each answer length (left), and against the answer length '
            'at the largest model with the independent-token predictions p^L and L·(1 − p) '
            '(right).', _figure_mirage),
        "elusive": (
            'Per-sample Spearman correlation between score and log compute across models, for '
            'each step of the multiple-choice chain log p → p → p_choice → accuracy / −Brier: '
            "addition (near-miss distractors) and lookup (other keys' values).", _figure_elusive),
        "sampling_check": (
            "PassUntil's sampled estimate against the exact pass probability for every "
            '(model, instance) with its 95 % interval; grey: censored.', _figure_sampling_check),
        "token_loss": (
            'Teacher-forced loss of each answer position against N (mean over instances and '
            'seeds; dotted: ln 10, a uniform guess among digits). Flat stretches followed by '
            'drops are plateaus of the loss itself: emergence that no metric choice removes.', _figure_token_loss),
        "token_loss_curves": (
            'Teacher-forced loss of the answer digits during training (mean over digits, the '
            'first 64 test instances and seeds) against tokens seen, one line per width '
            '(dotted: ln 10, a uniform guess): where each skill leaves its plateau, and '
            'whether training stopped on it.', _figure_token_loss_curves),
    }

    SIGN_NOTE = ("sign of the curvature of F in ln N (−1 concave, +1 convex), its CI the signs "
                 "of the bootstrap 95 % CI's ends")
    ROUTES = ("two_route", "two_route_copy", "two_route_recall")

    def claim_deviations(self, cube) -> str:
        widths = cube["width"].values
        sampling = self.settings["passuntil"]
        return (f"our scale: widths {widths.min()}–{widths.max()} "
                f"(N = {int(cube['n_params'].min()):,}–{int(cube['n_params'].max()):,}), "
                f"{self.settings['tokens']:,} tokens of a synthetic task mixture, "
                f"{cube.sizes['seed']} seed(s), r = {sampling['r']}, K_max = {sampling['k_max']:,} "
                "(paper: 0.03B–2.4B models, K_max 1e5)")

    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        """Per task of the grid where a claim is about one task; measure() says which hold data."""
        tasks = [str(t) for t in cube["task"].values]
        adds = [t for t in tasks if t.startswith("add")]
        mirage_task = "add2" if "add2" in adds else (adds[-1] if adds else "add")
        return (
            ClaimSpec("sampling_matches_exact", "PassUntil's sampled estimate agrees with the exact "
                      "(teacher-forced) pass probability: coverage of its exact 95 % intervals (≥ "
                      "0.95; exact intervals are conservative)",
                      "PU estimates the pass rate at any resolution", "paper", 0.975, 0.025),
            ClaimSpec("mvue_unbiased", "the estimator (r−1)/(K−1) is unbiased where r/K is not: mean "
                      "sampled / mean exact", "r/K overstates small p (6.9× at p = 1e−3, r = 1)",
                      "derived", 1.0, 0.1),
            *(ClaimSpec(f"task_law_linear_{task}", f"{task}: F(N) = ln(−ln PU) is linear in ln N "
                        "(R² over all sizes)", "F linear in ln N for single-skill tasks", "paper",
                        1.0, 0.1) for task in ("add2", "lookup")),
            *(ClaimSpec(f"prediction_{task}", f"{task}: the task law fitted on the smaller models "
                        "predicts the largest (relative error of PU, dataset level)",
                        "HumanEval 2.4B: 0.05 % (dataset); Emoji Movie: 9 % (dataset), 19 % "
                        "(instance)", "secondary", 0.0, 0.25) for task in tasks),
            ClaimSpec("greedy_sharper_than_pu", "lookup: greedy exact match looks emergent while PU "
                      "is smooth (sharpness of greedy accuracy − sharpness of log PU; ≥ 0.1)",
                      "emergence is an artefact of low-resolution metrics", "paper", 0.55, 0.45),
            ClaimSpec("mirage_edit_distance_smoother", f"{mirage_task}: on the same outputs, edit "
                      "distance is smoother than exact match (sharpness difference; ≥ 0.1)",
                      "nonlinear metrics induce emergence", "paper", 0.55, 0.45),
            ClaimSpec("mirage_length", "exact match of the largest model against answer length "
                      "follows p^L (largest |Acc − p^L| over L)", "Acc ≈ p^L: geometric in L",
                      "paper", 0.0, 0.1),
            ClaimSpec("curvature_composite", "the composite task (addition → lookup) bends convex "
                      f"(Thm 2: a chain of steps that each follow the law is sub-scaling); "
                      f"{self.SIGN_NOTE}", "sub-scaling (convex F)", "paper", 1.0, 0.5),
            ClaimSpec("curvature_two_route", "where copying from the context and recalling from the "
                      "table can each answer, F bends more concave than along the better single "
                      f"route (Thm 3: two circuits give super-scaling); {self.SIGN_NOTE} of "
                      "curvature(both) − curvature(better route)",
                      "super-scaling (concave F) can occur: 4 of 8 BIG-bench Unnatural ICL subtasks",
                      "paper", -1.0, 0.5),
            *(ClaimSpec(f"elusive_chain_{group}", f"{group} multiple choice: per-sample correlation "
                        "with compute falls along the chain: median ρ of log p_vocab minus median ρ "
                        "of accuracy (> 0)", "each transformation degrades the correlation", "paper",
                        0.5, 0.5) for group in self.choice_groups(tasks)),
        )

    def measure(self, cube, fits) -> dict[str, Measured]:
        out = {}
        check = fits["sampling"].to_dataset()
        out["sampling_matches_exact"] = Measured(
            check.attrs["coverage_all"], f"over {check.attrs['evaluations']:,} (model, instance) "
            f"pairs, {check.attrs['censored']:,} censored")
        out["mvue_unbiased"] = Measured(check.attrs["sampled_over_exact_all"],
                                        f"(plug-in r/K: {check.attrs['plugin_over_exact_all']:.2f})")
        law = fits["task_law"].to_dataset().sel(estimate="exact")
        mirage = fits["mirage"].to_dataset()
        # laws across sizes compare models trained alike: each size at its own tuned LR
        tuned = self.lr_premise(cube)
        curves = fits["curves"].to_dataset()
        for task in ("add2", "lookup"):
            if task in law["task"].values:
                row = law.sel(task=task)
                out[f"task_law_linear_{task}"] = Measured(
                    float(row["r2_all"]), f"(slope k = {float(row['k']):.2f} on the smaller sizes)",
                    premises=(self._above_chance_premise(cube, task),
                              self._rises_premise(curves, task), tuned))
        largest_width = cube["width"].values[-1]
        for task in law["task"].values:
            row = law.sel(task=task)
            at_largest = cube["pu_censored"].sel(task=task, width=largest_width)
            censored = f"{int((at_largest == 1).sum())} of {int(at_largest.notnull().sum())}"
            out[f"prediction_{task}"] = Measured(
                float(row["relative_error"]),
                f"(predicted {float(row['pu_predicted']):.3g}, observed {float(row['pu_observed']):.3g}; "
                f"instance level {float(row['ipu_relative_error']):.2f}; PassUntil censored at "
                f"K_max for {censored} (instance, seed) evaluations of the largest model)",
                premises=(self._above_chance_premise(cube, str(task)),
                          self._rises_premise(curves, str(task)), tuned))
        if "lookup" in curves["task"].values:
            row = curves.sel(task="lookup")
            out["greedy_sharper_than_pu"] = Measured(
                float(row["sharpness_exact_match"] - row["sharpness_log_pu"]),
                f"(greedy {float(row['sharpness_exact_match']):.2f}, log PU "
                f"{float(row['sharpness_log_pu']):.2f}; 1 = a step)",
                premises=(self._learned_premise(cube, "lookup"),))
        adds = [str(t) for t in curves["task"].values if str(t).startswith("add")]
        if adds:
            # Schaeffer et al.'s argument needs answer tokens that are right or wrong
            # independently: an algorithm's digits (addition), not a memorised value's
            task = "add2" if "add2" in adds else adds[-1]
            row = curves.sel(task=task)
            out["mirage_edit_distance_smoother"] = Measured(
                float(row["sharpness_exact_match"] - row["sharpness_edit_distance"]),
                f"(exact match {float(row['sharpness_exact_match']):.2f}, edit distance "
                f"{float(row['sharpness_edit_distance']):.2f})",
                premises=(self._learned_premise(cube, task),))
        out["mirage_length"] = self._mirage_length(mirage)
        classes = {str(t): str(v) for t, v in zip(law["task"].values, law["curvature_class"].values)}
        if "composite" in classes:
            out["curvature_composite"] = self._curvature_composite(cube, law, classes, tuned)
        if set(self.ROUTES) <= set(classes):
            out["curvature_two_route"] = self._curvature_two_route(cube, law, curves, tuned)
        elusive = fits["elusive"].to_dataset()
        groups = self.choice_groups([str(t) for t in cube["task"].values])
        for group in elusive["group"].values:
            med = dict(zip(elusive["step"].values,
                           elusive["median_correlation"].sel(group=group).values))
            last = med["accuracy"] if math.isfinite(med["accuracy"]) else med["p_choice"]
            out[f"elusive_chain_{group}"] = Measured(
                float(med["log_p_vocab"] - last),
                "(" + ", ".join(f"{k} {v:.2f}" for k, v in med.items()) + ")",
                premises=tuple(self._learned_premise(cube, t) for t in groups[str(group)]))
        return out

    @staticmethod
    def _mirage_length(mirage) -> Measured:
        largest = mirage.isel(width=-1)
        gap = float(np.abs(largest["exact_match"] - largest["exact_match_predicted"]).max())
        best = float(largest["exact_match"].max())
        # where no answer length is ever right, p^L ≈ 0 ≈ Acc says nothing (a vacuous pass)
        measurable = Premise("exact match measurable (the largest model's ≥ 0.05 at some length)",
                             best >= 0.05, f"largest exact match {best:.3f}")
        # p^L says something only where p does: every compared length's digits must be right
        # at least half the time at some size
        reached = mirage["token_accuracy"].max("width")
        tokens_learned = Premise(
            "per-token accuracy ≥ 0.5 at some size, for every answer length compared",
            bool((reached >= 0.5).all()),
            ", ".join(f"L={int(d)}: {float(a):.2f}" for d, a in zip(
                mirage["answer_digits"].values, reached.values)))
        return Measured(float(gap), "(" + ", ".join(
            f"L={int(d)}: {float(a):.2f} vs {float(p):.2f}" for d, a, p in zip(
                largest["answer_digits"].values, largest["exact_match"].values,
                largest["exact_match_predicted"].values)) + ")",
            premises=(measurable, tokens_learned))

    def _curvature_composite(self, cube, law, classes, tuned) -> Measured:
        row = law.sel(task="composite")
        # Theorem 2's premise: both sub-skills are learned and follow the task law
        adds = [str(t) for t in law["task"].values if str(t).startswith("add")]
        sub = [t for t in ("add3" if "add3" in adds else (adds[-1] if adds else None), "lookup") if t]
        premises = [self._learned_premise(cube, t) for t in sub]
        r2 = {t: float(law.sel(task=t)["r2_all"]) for t in sub}
        premises.append(Premise("both sub-skills follow the task law (R² ≥ 0.9)",
                                all(v >= 0.9 for v in r2.values()),
                                ", ".join(f"{t} R² {v:.2f}" for t, v in r2.items())))
        premises.append(tuned)
        low, high = float(row["curvature_ci_low"]), float(row["curvature_ci_high"])
        return Measured(float(np.sign(row["curvature"])),
                        f"({classes['composite']}: curvature {float(row['curvature']):.3f}, 95 % CI "
                        f"{low:.3f} … {high:.3f})", ci=(float(np.sign(low)), float(np.sign(high))),
                        premises=tuple(premises))

    def _curvature_two_route(self, cube, law, curves, tuned) -> Measured:
        # Thm 3: with two circuits −log PU = min_i c_i N^(−α_i), so F = min of lines: concave.
        # Compared with the better single route, on the same sizes.
        routes = self.ROUTES
        curves_pu = curves["pu_exact"]
        better = max(routes[1:], key=lambda t: float(np.log(curves_pu.sel(task=t)).mean()))
        draws = (law["curvature_draws"].sel(task="two_route")
                 - law["curvature_draws"].sel(task=better)).values
        point = float(law["curvature"].sel(task="two_route") - law["curvature"].sel(task=better))
        low, high = percentile_interval(draws) if np.isfinite(draws).any() else (math.nan,) * 2
        both_pu = float(curves_pu.sel(task="two_route").isel(width=-1))
        single = {t: float(curves_pu.sel(task=t).isel(width=-1)) for t in routes[1:]}
        return Measured(
            float(np.sign(point)),
            f"(better single route: {better}; curvature difference {point:.3f}, 95 % CI "
            f"{low:.3f} … {high:.3f}; largest model's PU: both {both_pu:.3g}, "
            + ", ".join(f"{t.split('_')[-1]} {v:.3g}" for t, v in single.items()) + ")",
            ci=(float(np.sign(low)), float(np.sign(high))),
            premises=(self._learned_premise(cube, "two_route_copy"),
                      self._learned_premise(cube, "two_route_recall"), tuned))
