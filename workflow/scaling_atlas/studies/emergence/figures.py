"""Emergence's figures: pass rates, the task law, Mirage, Elusive, the sampling check and the
answer tokens' losses against size and during training."""

from __future__ import annotations

import math

import numpy as np

from scaling_atlas.emergence import passuntil as pu
from scaling_atlas.figures import new_figure, new_panel, size_colours


def draw_pass_rates(study, cube, fits):
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


def draw_task_law(study, cube, fits):
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


def draw_mirage(study, cube, fits):
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


def draw_elusive(study, cube, fits):
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


def draw_sampling_check(study, cube, fits):
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


def draw_token_loss(study, cube, fits):
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


def draw_token_loss_curves(study, cube, fits):
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


FIGURES = {
    "pass_rates": (
        'Pass probability against N per task: exact (teacher-forced, lines), PassUntil '
        'estimates (markers, 95 % bootstrap CI over instances) and greedy exact match '
        '(squares, right axis).', draw_pass_rates),
    "task_law": (
        'F(N) = ln(−ln PU) against ln N per task (exact probabilities): the task law '
        'fitted on the smaller models (line), its prediction of the largest (star), and '
        'the bootstrapped quadratic that classifies the curvature (dotted).', draw_task_law),
    "mirage": (
        "Schaeffer et al.'s Mirage on the same outputs: greedy exact match and token edit "
        'distance against N for each answer length (left), and against the answer length '
        'at the largest model with the independent-token predictions p^L and L·(1 − p) '
        '(right).', draw_mirage),
    "elusive": (
        'Per-sample Spearman correlation between score and log compute across models, for '
        'each step of the multiple-choice chain log p → p → p_choice → accuracy / −Brier: '
        "addition (near-miss distractors) and lookup (other keys' values).", draw_elusive),
    "sampling_check": (
        "PassUntil's sampled estimate against the exact pass probability for every "
        '(model, instance) with its 95 % interval; grey: censored.', draw_sampling_check),
    "token_loss": (
        'Teacher-forced loss of each answer position against N (mean over instances and '
        'seeds; dotted: ln 10, a uniform guess among digits). Flat stretches followed by '
        'drops are plateaus of the loss itself: emergence that no metric choice removes.', draw_token_loss),
    "token_loss_curves": (
        'Teacher-forced loss of the answer digits during training (mean over digits, the '
        'first 64 test instances and seeds) against tokens seen, one line per width '
        '(dotted: ln 10, a uniform guess): where each skill leaves its plateau, and '
        'whether training stopped on it.', draw_token_loss_curves),
}
