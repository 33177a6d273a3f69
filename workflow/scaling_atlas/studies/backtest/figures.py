"""The backtest's figures: the leaderboard, the error and N* heatmaps (families × procedures per
split), the spread of allocations and the prediction intervals' coverage."""

from __future__ import annotations

import numpy as np


def _heatmap(fits, variable, splits, procedures, families, label):
    """One panel per split: families (rows) × procedures (columns), log colour scale."""
    import matplotlib
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import NullFormatter

    from scaling_atlas.figures import new_figure

    scores = fits["scores"].to_dataset()
    fig, axes = new_figure(ncols=len(splits), width=0.9 + 0.42 * len(procedures),
                           height=1.6 + 0.3 * len(families))
    values = scores[variable].sel(family=families, procedure=procedures)
    finite = values.values[np.isfinite(values.values) & (values.values > 0)]
    norm = LogNorm(vmin=max(finite.min(), 1e-4), vmax=finite.max()) if finite.size else None
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("0.88")
    image = None
    for ax, split in zip(axes[0], splits):
        grid = values.sel(split=split).transpose("family", "procedure").values
        image = ax.imshow(np.ma.masked_invalid(np.where(grid > 0, grid, np.nan)),
                          aspect="auto", cmap=cmap, norm=norm)
        ax.set_xticks(range(len(procedures)), procedures, rotation=55, ha="right", fontsize=6.5)
        ax.set_yticks(range(len(families)),
                      families if ax is axes[0][0] else [""] * len(families), fontsize=6.5)
        ax.set_title(split, fontsize=8)
        ax.grid(False)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=5,
                            color="white")
    if image is not None:
        bar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
        bar.set_label(label, fontsize=7)
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
        bar.ax.tick_params(which="both", labelsize=6)
    return fig


def draw_leaderboard(study, cube, fits):
    from scaling_atlas.figures import new_figure

    board = fits["leaderboard"].to_dataset().to_dataframe().reset_index()
    scores = fits["scores"].to_dataset()
    n_families = scores.sizes["family"]
    columns = [("rank", "rank", "{:d}"), ("procedure", "procedure", "{}"),
               ("mean_rank", "mean\nrank", "{:.2f}"),
               ("median_error", "median\nrel. error", "{:.4f}"),
               ("wins", "cells\nwon", "{:d}"), ("cells", "cells", "{:d}"),
               ("mean_rank_nstar", "mean rank\nN*", "{:.2f}"),
               ("median_nstar_log_error", "median\n|Δ ln N*|", "{:.3f}"),
               ("wins_nstar", "won\nN*", "{:d}"), ("cells_nstar", "cells\nN*", "{:d}"),
               ("failed", "failed", "{:d}"), ("not_identified", "not\nidentified", "{:d}")]
    columns = [c for c in columns if c[0] in board]

    def text(value, fmt):
        if isinstance(value, float) and not np.isfinite(value):
            return "—"
        return fmt.format(int(value) if fmt == "{:d}" else value)

    cells = [[text(row[c], fmt) for c, _, fmt in columns] for _, row in board.iterrows()]
    fig, axes = new_figure(width=9.0, height=1.1 + 0.24 * max(len(cells), 1))
    ax = axes[0][0]
    ax.axis("off")
    if cells:
        widths = [0.05 if c == "rank" else 0.2 if c == "procedure" else 0.075
                  for c, _, _ in columns]
        table = ax.table(cellText=cells, colLabels=[label for _, label, _ in columns],
                         colWidths=widths, loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(6.5)
        unit = min(0.09, 0.9 / (len(cells) + 2))
        for (r, _), cell in table.get_celld().items():
            cell.set_height(2 * unit if r == 0 else unit)
    ax.set_title(f"{n_families} families × splits {', '.join(s for s in scores['split'].values.astype(str) if s != 'all')}",
                 fontsize=8)
    return fig


def draw_error_heatmap(study, cube, fits):
    from scaling_atlas.laws.backtest import PROCEDURES

    scores = fits["scores"].to_dataset()
    procedures = [p for p in scores["procedure"].values.astype(str)
                  if PROCEDURES[p].kind == "parametric"]
    splits = [s for s in scores["split"].values.astype(str) if s != "all"]
    return _heatmap(fits, "median_relative_error", splits, procedures,
                         list(scores["family"].values.astype(str)),
                         "held-out median relative error of the loss")


def draw_nstar_heatmap(study, cube, fits):
    from scaling_atlas.laws.backtest import PROCEDURES

    scores = fits["scores"].to_dataset()
    fam = fits["families"].to_dataset()
    families = [str(f) for f in fam["family"].values if int(fam["isoflop"].sel(family=f))]
    from scaling_atlas.laws import get_form

    # the procedures with an N*(C): Approach 2 and the forms with an allocation
    procedures = [p for p in scores["procedure"].values.astype(str)
                  if PROCEDURES[p].kind == "approach2"
                  or get_form(PROCEDURES[p].form).has_allocation]
    splits = [s for s in ("largest_C", "compute_cut") if s in scores["split"].values]
    if not families:
        from scaling_atlas.figures import new_figure

        fig, axes = new_figure()
        axes[0][0].text(0.5, 0.5, "no IsoFLOP family in this run", ha="center")
        return fig
    return _heatmap(fits, "nstar_log_error", splits, procedures, families,
                         "mean |ln N* predicted − ln N* observed|")


def draw_allocation_spread(study, cube, fits):
    from scaling_atlas.figures import new_figure

    scores = fits["scores"].to_dataset()
    if "all" not in scores["split"].values:
        fig, axes = new_figure()
        axes[0][0].text(0.5, 0.5, "the split 'all' was not run", ha="center")
        return fig
    ratio = scores["D_over_N"].sel(split="all")
    families = list(scores["family"].values.astype(str))
    procedures = [p for p in scores["procedure"].values.astype(str)
                  if np.isfinite(ratio.sel(procedure=p).values).any()]
    fig, axes = new_figure(width=6.0, height=1.2 + 0.28 * len(families))
    ax = axes[0][0]
    markers = "osD^v<>ph*X"
    for k, p in enumerate(procedures):
        values = ratio.sel(procedure=p, family=families).values
        ax.scatter(values, np.arange(len(families)), marker=markers[k % len(markers)], s=16,
                   label=p, alpha=0.8)
    ax.axvline(20, color="0.5", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(families)), families, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("compute-optimal D/N at 5.88e23 FLOP (dotted: 20)")
    ax.legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def draw_coverage(study, cube, fits):
    from scaling_atlas.figures import new_figure

    cov = fits["coverage"].to_dataset()
    splits = list(cov["split"].values.astype(str))
    fig, axes = new_figure(ncols=len(splits), width=3.4, height=3.4)
    for ax, split in zip(axes[0], splits):
        for family in cov["family"].values.astype(str):
            sel = cov["coverage"].sel(family=family, split=split)
            if np.isfinite(sel.values).any():
                ax.plot(cov["nominal"].values, sel.values, marker="o", ms=3, lw=0.8, alpha=0.7,
                        label=family)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1.02)
        ax.set_title(split, fontsize=8)
        ax.set_xlabel("nominal coverage")
    axes[0][0].set_ylabel("held-out points inside the interval")
    axes[0][-1].legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


FIGURES = {
    "leaderboard": (
        'Leaderboard: procedures ranked by their mean rank of held-out loss error over '
        '(family, split) cells (1 = best in a cell), then those that predict no loss '
        '(Approach 2) by their mean rank of the ln N* error at held-out IsoFLOP budgets; with '
        'the median errors, cells won, and the fits that failed or were not identified '
        '(counted, not dropped). fits.nc group leaderboard holds the table; group scores '
        'every cell.', draw_leaderboard),
    "error_heatmap": (
        'Held-out loss error (median relative error, colour on a log scale) of each procedure '
        '(rows) on each family (columns), per split. Grey: the procedure does not predict '
        'loss, failed, or the split was not run.', draw_error_heatmap),
    "nstar_heatmap": (
        "Error in ln N* at held-out IsoFLOP budgets (observed N*: each budget's raw-loss "
        'parabola vertex), per procedure and IsoFLOP family.', draw_nstar_heatmap),
    "allocation_spread": (
        'Compute-optimal tokens per parameter at 5.88e23 FLOP from every procedure fitted on '
        'all points of each family; the spread across procedures on the same data.', draw_allocation_spread),
    "coverage": (
        'Prediction intervals of the reference procedure (Chinchilla, log-Huber) on the '
        'held-out points: empirical against nominal coverage per family and split (dashed: '
        'equality).', draw_coverage),
}
