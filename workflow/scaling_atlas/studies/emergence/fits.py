"""Emergence's fits: dataset-level curves with bootstrap intervals, the task law and the
curvature of F per task and estimate, the Mirage comparison, the Elusive chain and the check of
PassUntil's sampling against the exact probability (``shared/reference/emergence.md``)."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from scaling_atlas.cubes import without_diverged
from scaling_atlas.emergence import passuntil as pu

ESTIMATES = ("exact", "sampled")

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
#: the same, keyed ``group/name`` (the study's VARIABLES)
VARIABLES = {f"{group}/{name}": entry for group, table in FIT_META.items()
             for name, entry in table.items()}


def sharpness(values) -> float:
    """Largest rise between consecutive sizes as a fraction of the whole range: 1 for a step
    ("emergent"), 1/(n−1) for a straight line."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    span = np.ptp(values) if len(values) > 1 else 0.0
    return float(np.max(np.abs(np.diff(values))) / span) if span > 0 else math.nan


def bootstrap_instances(values: xr.DataArray, statistic, settings: dict) -> np.ndarray:
    """``statistic`` of instance-resampled data: (resamples, …) draws (seeded)."""
    rng = np.random.default_rng(settings["bootstrap_seed"])
    n = values.sizes["instance"]
    valid = np.flatnonzero(values.notnull().any([d for d in values.dims if d != "instance"]).values)
    draws = []
    for _ in range(settings["bootstrap_resamples"]):
        pick = rng.choice(valid, size=len(valid), replace=True) if len(valid) else np.arange(n)
        draws.append(statistic(values.isel(instance=pick)))
    return np.array(draws)


def curves(cube, settings: dict) -> xr.Dataset:
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
        draws = bootstrap_instances(
            cube[name], lambda v: v.mean(mean).transpose("task", "width").values, settings)
        ds[f"{name}_ci_low"] = (("task", "width"), np.nanpercentile(draws, 2.5, axis=0))
        ds[f"{name}_ci_high"] = (("task", "width"), np.nanpercentile(draws, 97.5, axis=0))
    ds.attrs.update(aggregation="mean over seeds and test instances (Hu et al.'s dataset-level "
                                "PU); CIs: 95 % percentile bootstrap over instances",
                    bootstrap_resamples=settings["bootstrap_resamples"],
                    sharpness="largest change between consecutive sizes / total range (1: a step)")
    return ds


def task_law(cube, n_params, settings: dict) -> xr.Dataset:
    """Per task and estimate: the law on the smaller models, its prediction of the largest,
    instance-level predictions, and the curvature of F over all sizes."""
    widths = cube["width"].values
    small, largest = widths[:-1], widths[-1]
    log_n = np.log(n_params.values)
    sampling = settings["passuntil"]
    rows = {key: np.full((cube.sizes["task"], 2), np.nan) for key in (
        "c", "k", "r2_small", "r2_all", "pu_predicted", "pu_observed", "relative_error",
        "ipu_predicted", "ipu_relative_error", "instances_used", "instances_excluded",
        "curvature", "curvature_ci_low", "curvature_ci_high")}
    classes = np.full((cube.sizes["task"], 2), "", dtype=object)
    curvature_draws = np.full((cube.sizes["task"], 2, settings["bootstrap_resamples"]), np.nan)
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
            ipu, used, excluded = (_instance_prediction_exact(values, n_params, small, largest)
                                   if estimate == "exact" else
                                   _instance_prediction_sampled(cube.sel(task=task), n_params,
                                                                     small, largest))
            rows["ipu_predicted"][t, e] = ipu
            rows["ipu_relative_error"][t, e] = abs(ipu / observed - 1) if observed > 0 else math.nan
            rows["instances_used"][t, e], rows["instances_excluded"][t, e] = used, excluded
            rows["curvature"][t, e] = pu.quadratic_curvature(log_n, F)
            draws = bootstrap_instances(
                values, lambda v: pu.quadratic_curvature(log_n, pu.loglog(v.mean(["seed", "instance"]).values)),
                settings)
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


def _instance_prediction_sampled(task_cube, n_params, small, largest):
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


def mirage(cube) -> xr.Dataset:
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


def choice_groups(tasks) -> dict[str, list[str]]:
    """The multiple-choice tasks in Elusive's two groups: the addition tasks (an algorithm)
    and lookup (a memorised skill)."""
    groups = {"addition": [t for t in tasks if t.startswith("add")],
              "lookup": [t for t in tasks if t == "lookup"]}
    return {g: ts for g, ts in groups.items() if ts}


def elusive(cube) -> xr.Dataset:
    """Per-sample Spearman correlation of each chain score with log compute across models,
    for each group of multiple-choice tasks (addition, lookup)."""
    has_choices = cube["choice_logp"].notnull().any(["width", "seed", "instance", "choice"])
    with_choices = [str(t) for t, ok in zip(cube["task"].values, has_choices.values) if ok]
    log_compute = np.log(cube["compute"].stack(model=["width", "seed"]).transpose("model").values)
    trained = np.isfinite(log_compute)  # diverged models are masked out
    groups = choice_groups(with_choices)
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


def sampling_check(cube) -> xr.Dataset:
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


def fit(cube, settings: dict) -> dict[str, xr.Dataset]:
    """Every fit group, the diverged runs left out (and named in each group's attributes)."""
    cube, diverged = without_diverged(cube)
    n_params = cube["n_params"].mean("seed")
    groups = {"curves": curves(cube, settings), "task_law": task_law(cube, n_params, settings),
              "mirage": mirage(cube), "elusive": elusive(cube), "sampling": sampling_check(cube)}
    for ds in groups.values():
        ds.attrs["excluded_diverged_runs"] = diverged
    return groups
