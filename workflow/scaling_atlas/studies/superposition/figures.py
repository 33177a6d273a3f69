"""The superposition study's figures: loss against width, the fitted exponents against α,
φ½ against γ, overlaps, the exponent heatmap and the norms' histogram."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from scaling_atlas.figures import label_widths, new_figure


def base_density(cube: xr.Dataset) -> float:
    """The activation density the headline claims and figures use: the lowest in the grid."""
    return float(cube["density"].min())


def _power(cube):
    return cube.sel(dist="power", density=base_density(cube)) if "power" in cube["dist"] else None


def draw_loss_vs_m(study, cube, fits):
    strong, weak = study.regime_gammas(cube)
    regimes = [(g, label) for g, label in ((strong, "strong"), (weak, "weak")) if g is not None]
    fig, axes = new_figure(ncols=len(regimes), sharey=True)
    density = base_density(cube)
    fit = fits.sel(estimate="eval", form="loglog", density=density)
    for ax, (gamma, label) in zip(axes[0], regimes):
        for dist, alpha in study.frequency_profiles():
            sel = {"dist": dist, "alpha": alpha, "gamma": gamma}
            loss = cube["loss_eval"].sel({**sel, "density": density})
            mean, sd = loss.mean("seed"), loss.std("seed")
            name = dist if math.isnan(alpha) else f"α = {alpha:g}"
            row = fit.sel(sel)
            line = ax.errorbar(cube["m"], mean, yerr=sd, marker="o", ms=4, capsize=2,
                               label=f"{name}: α_m = {float(row['mean_alpha_m']):.2f}")
            fitted = float(row["mean_prefactor"]) * cube["m"] ** -float(row["mean_alpha_m"])
            ax.plot(cube["m"], fitted, "--", color=line[0].get_color(), lw=1)
        ax.set(xscale="log", yscale="log", xlabel="width m",
               title=f"{label} superposition (γ = {gamma:g})")
        label_widths(ax, cube["m"].to_numpy())
        ax.legend()
    axes[0][0].set_ylabel("final loss (sum over features)")
    return fig


def draw_alpha_m_vs_alpha(study, cube, fits):
    fig, axes = new_figure(width=5.2, height=3.8)
    ax = axes[0][0]
    fit = fits.sel(estimate="eval", form="loglog", dist="power",
                   density=base_density(cube)) if "power" in cube["dist"] else None
    alphas = np.array([a for a in cube["alpha"].to_numpy() if np.isfinite(a)])
    if fit is not None and len(alphas):
        colours = _gamma_colours(cube["gamma"].to_numpy())
        for gamma in cube["gamma"].to_numpy():
            row = fit.sel(gamma=gamma, alpha=alphas)
            ax.errorbar(alphas, row["mean_alpha_m"], yerr=row["mean_alpha_m_se"], marker="o",
                        ms=4, capsize=2, color=colours[gamma], label=f"γ = {gamma:g}")
        grid = np.linspace(0, max(2.0, alphas.max()), 50)
        ax.plot(grid, np.ones_like(grid), "k-", lw=0.8, label="1 (strong)")
        ax.plot(grid, grid - 1, "k--", lw=0.8, label="α − 1 (weak)")
        ax.plot(grid, 2 * (grid - 1), "k:", lw=0.8, label="2(α − 1)")
        ax.set_ylim(-0.2, max(2.5, float(np.nanmax(fit["mean_alpha_m"])) + 0.2))
    ax.set(xlabel="data exponent α", ylabel="width exponent α_m")
    ax.legend(ncol=2)
    return fig


def draw_phi_half_vs_gamma(study, cube, fits):
    power = _power(cube)
    alphas = [] if power is None else [a for a in power["alpha"].to_numpy() if np.isfinite(a)]
    fig, axes = new_figure(ncols=max(1, len(alphas)), sharey=True, width=3.4)
    n = study.settings["n"]
    colours = _width_colours(cube["m"].to_numpy())
    for ax, alpha in zip(axes[0], alphas):
        for m in cube["m"].to_numpy():
            phi = power["phi_half"].sel(alpha=alpha, m=m)
            ax.errorbar(cube["gamma"], phi.mean("seed"), yerr=phi.std("seed"), marker="o",
                        ms=3, capsize=2, color=colours[m], label=f"m = {m}")
            ax.axhline(m / n, color=colours[m], ls=":", lw=0.8)
        ax.set(xlabel="weight decay γ", yscale="log", title=f"α = {alpha:g}")
    axes[0][0].set_ylabel("represented fraction φ½")
    axes[0][-1].legend()
    return fig


def draw_overlap_vs_m(study, cube, fits):
    fig, axes = new_figure(width=5.0, height=3.8)
    ax = axes[0][0]
    strong, _ = study.regime_gammas(cube)
    power = _power(cube)
    m = cube["m"].to_numpy()
    if strong is not None and power is not None:
        for alpha in [a for a in power["alpha"].to_numpy() if np.isfinite(a)]:
            sel = power.sel(gamma=strong, alpha=alpha)
            line, = ax.plot(m, sel["mean_sq_overlap"].mean("seed"), "o-", ms=4, label=f"α = {alpha:g}")
            ax.plot(m, sel["mean_sq_overlap_strong"].mean("seed"), ":", color=line.get_color())
        ax.set_title(f"strong regime (γ = {strong:g})")
    ax.plot(m, 1.0 / m, "k--", lw=1, label="1/m")
    ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="mean squared overlap")
    label_widths(ax, m)
    ax.legend()
    return fig


def draw_alpha_m_heatmap(study, cube, fits):
    fig, axes = new_figure(width=5.4, height=4.0)
    ax = axes[0][0]
    if "power" in cube["dist"]:
        alphas = np.array([a for a in cube["alpha"].to_numpy() if np.isfinite(a)])
        grid = fits["mean_alpha_m"].sel(
            estimate="eval", form="loglog", dist="power", density=base_density(cube),
            alpha=alphas).transpose("alpha", "gamma")
        gammas = cube["gamma"].to_numpy()
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis",
                          vmin=0, vmax=max(2.0, float(np.nanmax(grid))))
        ax.set_xticks(range(len(gammas)), [f"{g:g}" for g in gammas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if value < 1.2 else "black")
        fig.colorbar(image, ax=ax, label="α_m")
    ax.grid(False)
    ax.set(xlabel="weight decay γ", ylabel="data exponent α")
    return fig


def draw_norm_histogram(study, cube, fits):
    strong, weak = study.regime_gammas(cube)
    fig, axes = new_figure(width=5.0, height=3.4)
    ax = axes[0][0]
    power = _power(cube)
    if power is not None:
        alphas = [a for a in power["alpha"].to_numpy() if np.isfinite(a)]
        alpha = alphas[len(alphas) // 2]
        m = int(cube["m"].max())
        width = float(cube["norm_bin"][1] - cube["norm_bin"][0])
        for gamma, label in ((strong, "strong"), (weak, "weak")):
            if gamma is None:
                continue
            hist = power["norm_hist"].sel(gamma=gamma, alpha=alpha, m=m).mean("seed")
            ax.bar(cube["norm_bin"], hist, width=width, alpha=0.6, label=f"{label} (γ = {gamma:g})")
        ax.set_title(f"α = {alpha:g}, m = {m}")
    ax.axvline(0.5, color="k", ls=":", lw=0.8)
    ax.axvline(1.0, color="k", ls="--", lw=0.8)
    ax.set(xlabel="row norm ‖W_i‖", ylabel="fraction of rows")
    ax.legend()
    return fig


def _gamma_colours(gammas) -> dict:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("coolwarm")
    span = max(abs(gammas.min()), abs(gammas.max()), 1e-9)
    return {g: cmap(0.5 + 0.5 * g / span) for g in gammas}


def _width_colours(widths) -> dict:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    return {m: cmap(i / max(1, len(widths) - 1)) for i, m in enumerate(widths)}


FIGURES = {
    "loss_vs_m": ("Final loss (paper units, fresh samples) against width m in the strong (most "
                  "negative γ) and weak (most positive γ) regimes, one line per α, mean ± sd "
                  "over seeds; dashed: the log-log power-law fit whose exponent α_m is in the "
                  "legend.", draw_loss_vs_m),
    "alpha_m_vs_alpha": ("Width exponent α_m (log-log fit of the seed-mean loss, ± standard "
                         "error) against the data exponent α for each γ, with the theory lines "
                         "α_m = 1 (strong), α − 1 (weak) and the conjectured upper line 2(α − 1).",
                         draw_alpha_m_vs_alpha),
    "phi_half_vs_gamma": ("Represented fraction φ½ against weight decay γ, one line per width; "
                          "dotted: m/n, the weak-regime expectation. φ½ ≈ 1 means strong "
                          "superposition.", draw_phi_half_vs_gamma),
    "overlap_vs_m": ("Mean squared overlap of normalised rows against m in the strong regime, "
                     "one line per α (solid: all rows; dotted: rows with norm > 1), with the "
                     "1/m line.", draw_overlap_vs_m),
    "alpha_m_heatmap": ("α_m over (γ, α): strong superposition (γ < 0) gives α_m near 1 "
                        "whatever α; weak superposition tracks α − 1.", draw_alpha_m_heatmap),
    "norm_histogram": ("Distribution of row norms ‖W_i‖ at the largest width, strong vs weak "
                       "regime: bimodal, near 0 (not represented) and near 1 (represented).",
                       draw_norm_histogram),
}
