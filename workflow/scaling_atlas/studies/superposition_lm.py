"""Superposition in the LM heads of our own transformer family (Liu, Liu & Gore 2025, §LLMs).

Grid: widths m × seeds, every model trained on the same number of tokens. For each trained
model the output matrix (n = vocabulary rows × m) gives the row norms (are all tokens
represented? the strong regime says yes) and the mean squared overlap of normalised rows, to
compare with 1/m; the corpus gives the token-frequency exponent; the final losses give the
paper's width law L = A/m^α + B (paper on 27 real LLMs: α = 0.91 ± 0.04).
``hf_checkpoints`` adds local Hugging Face checkpoints (safetensors) to the same overlap
analysis, so users with real weights can place them next to our family.
Spec: ``shared/reference/superposition.md`` §9–10.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats as scipy_stats

from scaling_atlas.claims import ClaimSpec, Measured, Premise
from scaling_atlas.cubes import without_diverged
from scaling_atlas.corpus import load_corpus
from scaling_atlas.corpus.grammar import rank_frequency_exponent
from scaling_atlas.figures import new_panel
from scaling_atlas.laws import LawFit, Objective, PowerLaw
from scaling_atlas.laws.engine import LAWFIT_VARIABLES
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

OVERLAP_VARS = ("mean_sq_overlap", "mean_abs_overlap", "represented_fraction", "norm_median",
                "norm_min", "represented_fraction_paper", "mean_direction_energy",
                "mean_sq_overlap_centred")


VARIABLES = {
    **TransformerFamilyStudy.SCALAR_META,
    "width": ("model width m (d_model)", "1"), "seed": ("training seed", "1"),
    "token": ("token id", "1"),
    "row_norm": ("L2 norm of the token's unembedding row", "1"),
    "mean_sq_overlap": ("mean of (Ŵ_i·Ŵ_j)² over pairs i < j of normalised rows", "1"),
    "mean_abs_overlap": ("mean of |Ŵ_i·Ŵ_j| over pairs i < j", "1"),
    "represented_fraction": ("fraction of rows with norm ≥ ½ median row norm", "1"),
    "norm_median": ("median row norm", "1"), "norm_min": ("smallest row norm", "1"),
    "represented_fraction_paper": ("fraction of rows that are not near zero (norm ≥ 0.1 "
                                   "median row norm; the paper's test)", "1"),
    "mean_direction_energy": ("share of the rows' squared norm along their mean direction", "1"),
    "mean_sq_overlap_centred": ("mean of (Ŵ_i·Ŵ_j)² with the rows' mean direction projected "
                                "out", "1"),
    "token_count": ("occurrences of the token in the training split", "1"),
    # released checkpoints (hf_checkpoints)
    "checkpoint": ("Hugging Face checkpoint", "1"),
    "hf_width": ("Hugging Face checkpoint: width", "1"),
    "hf_vocab": ("Hugging Face checkpoint: vocab", "1"),
    "hf_loss": ("Hugging Face checkpoint: loss", "nat/token"),
    **{f"hf_{name}": (f"Hugging Face checkpoint: {name}", "1") for name in OVERLAP_VARS},
    # fits: the width law (the law engine's dataset) and the per-width summaries
    **LAWFIT_VARIABLES,
    "width_law": ("A, α, B of L = A/m^α + B", "1"),
    "width_law_se": ("Gauss-Newton standard error", "1"),
    "overlap_times_m": ("seed-mean mean squared overlap × m (1: random/ETF-like)", "1"),
    "represented_fraction_min": ("smallest fraction over seeds of the tokens seen in "
                                 "training whose row norm is ≥ ½ their median", "1"),
    "represented_fraction_paper_min": ("smallest fraction over seeds of rows that are "
                                       "not near zero (norm ≥ 0.1 median; the paper's "
                                       "test)", "1"),
    "overlap_times_m_centred": ("seed-mean squared overlap with the mean direction "
                                "projected out, × m", "1"),
    "fits/mean_direction_energy": ("seed-mean share of the rows' squared norm along "
                                   "their mean direction", "1"),
    "fits/width": ("model width m", "1"),
}


class SuperpositionLMStudy(TransformerFamilyStudy):
    kind = "superposition_lm"
    title = "Superposition in language-model heads: our transformer family (Liu, Liu & Gore 2025)"
    VARIABLES = VARIABLES

    def tokens_of(self, width: int) -> int:
        """Training tokens of a width: ``tokens_per_parameter`` × N when set (each width in the
        same data regime D/N, issue #17), else the same ``tokens`` for every width."""
        ratio = self.settings["tokens_per_parameter"]
        if not ratio:
            return self.settings["tokens"]
        return int(math.ceil(ratio * self.model_size(width)))

    def grid(self) -> list[dict]:
        return [{"width": width, "tokens": self.tokens_of(width), "seed": seed}
                for width in self.settings["widths"] for seed in self.settings["seeds"]]

    def validate(self) -> list[str]:
        problems = super().validate()
        for i, item in enumerate(self.settings["hf_checkpoints"]):
            if not (Path(item["path"]) / "config.json").exists():
                problems.append(f"hf_checkpoints[{i}].path: {item['path']} has no config.json "
                                "(expected a local Hugging Face checkpoint folder)")
        if len(self.settings["widths"]) < 4:
            problems.append("widths: the width law A/m^α + B needs at least 4 widths")
        if not problems and self.settings["regime_checks"]:
            problems = self.regime_problems()
        return problems

    def regime_problems(self) -> list[str]:
        """Issue #17's rules for a width law that means something (``regime_checks: true``):
        widths spanning ≥ 1.5 decades of N at one fixed depth ≥ 2, each trained to D/N ≥ 100
        in ≥ 1000 steps, with the per-size LR sweep."""
        cfg, problems = self.settings, []
        depth = cfg["family"]["n_layer"]
        if depth < 2:
            problems.append("family.n_layer: 0 lets depth follow the width; the width law is "
                            "measured at one fixed depth ≥ 2 (rule: regime_checks)")
        sizes = {w: self.model_size(w) for w in cfg["widths"]}
        decades = math.log10(max(sizes.values()) / min(sizes.values()))
        if decades < 1.5 - 5e-3:
            problems.append(f"widths: N spans {decades:.2f} decades ({min(sizes.values()):,}–"
                            f"{max(sizes.values()):,}); the regime needs ≥ 1.5 (rule: regime_checks)")
        per_step = cfg["batch_size"] * cfg["seq_len"]
        for i, width in enumerate(cfg["widths"]):
            tokens = self.tokens_of(width)
            if tokens / sizes[width] < 100 - 1e-9:
                problems.append(f"widths[{i}]: width {width} trains on D/N = "
                                f"{tokens / sizes[width]:.3g}; the regime needs ≥ 100 (set "
                                "tokens_per_parameter; rule: regime_checks)")
            if tokens / per_step < 1000:
                problems.append(f"widths[{i}]: width {width} trains {tokens / per_step:.0f} steps; "
                                "every run needs ≥ 1000 (a smaller batch_size gives more; rule: "
                                "regime_checks)")
        return problems + self.sweep_rule_problems("width")

    def run_extras(self, run, model, corpus_meta) -> dict:
        from scaling_atlas.models.lm_heads import unembedding_statistics

        stats = unembedding_statistics(model.unembedding().detach().cpu())
        vocab = np.arange(stats["n_tokens"])
        extras = {"row_norm": (("token",), stats["row_norms"], {"token": vocab})}
        extras.update({k: ((), stats[k], {}) for k in OVERLAP_VARS})
        return extras

    # ---- cube ----------------------------------------------------------------------------------
    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        cube = self.cube_from_shards(shard_results, {})
        train, _, meta = load_corpus(self.corpus_dir)
        counts = np.bincount(np.asarray(train), minlength=cube.sizes["token"])[: cube.sizes["token"]]
        cube["token_count"] = ("token", counts.astype(float))
        cube.attrs["token_zipf_exponent"] = rank_frequency_exponent(counts)
        if self.settings["hf_checkpoints"]:
            cube = cube.merge(self._external(self.settings["hf_checkpoints"]))
        return self.describe(cube)

    @staticmethod
    def _external(items) -> xr.Dataset:
        """The unembeddings of released checkpoints (reading their tensors needs PyTorch)."""
        from scaling_atlas.models.lm_heads import load_hf_unembedding, unembedding_statistics

        rows = []
        for item in items:
            head = load_hf_unembedding(item["path"])
            stats = unembedding_statistics(head["matrix"])
            rows.append({"label": item.get("label") or Path(item["path"]).name,
                         "width": head["width"], "vocab": head["vocab_size"],
                         "loss": item.get("loss", math.nan),
                         **{k: stats[k] for k in OVERLAP_VARS}})
        ds = xr.Dataset({f"hf_{k}": ("checkpoint", [r[k] for r in rows])
                         for k in ("width", "vocab", "loss", *OVERLAP_VARS)},
                        coords={"checkpoint": [r["label"] for r in rows]})
        return ds

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.Dataset:
        cube, diverged = without_diverged(cube)
        m = cube["width"].values.astype(float)
        overlap = cube["mean_sq_overlap"].mean("seed").values
        slope_fit = PowerLaw().fit(1.0 / m, overlap)  # overlap ∝ (1/m)^s: s = −exponent
        centred = cube["mean_sq_overlap_centred"].mean("seed").values
        centred_fit = PowerLaw().fit(1.0 / m, centred)
        t = float(scipy_stats.t.ppf(0.975, max(len(m) - 2, 1)))  # Student t: few widths
        loss = cube["final_val_loss"]
        points = loss.to_dataframe().reset_index().dropna(subset=["final_val_loss"])
        # the paper's joint fit: squared error in linear loss space; SE from Gauss-Newton. The
        # offset B is a loss floor: no model gets below the data's entropy rate, so where it is
        # known (the grammar) B is bounded below by it; B on that bound is reported, not used
        floor = cube.attrs.get("corpus_entropy_rate_nats")
        bounded = {}
        if floor is not None and math.isfinite(float(floor)) and float(floor) > 0:
            e0 = math.log(float(floor))
            bounded = dict(bounds={"e": (e0, math.inf)},
                           starts={"a": [-2.0, 0.0, 2.0, 5.0], "alpha": [0.1, 0.5, 1.0, 2.0],
                                   "e": [e0, e0 + 0.1, e0 + 0.5, e0 + 1.0]})
        law = LawFit("power_law_offset", Objective("mse", space="linear"), **bounded)
        law.fit({"x": points["width"].to_numpy(float)}, points["final_val_loss"].to_numpy())
        fits = law.to_dataset().rename({"estimate": "width_law"})
        se = law.standard_errors_
        # delta method for A = e^a and B = e^e; α is fitted directly
        natural_se = {"A": law.natural_["A"] * se["a"], "alpha": se["alpha"], "E": law.natural_["E"] * se["e"]}
        fits["width_law_se"] = ("parameter", [natural_se[k] for k in fits["parameter"].values])
        fits["overlap_times_m"] = ("width", overlap * m)
        # represented among the tokens the model was trained on (a token that never occurs has
        # only weight decay acting on its row; the paper's LLM tokenizers cover their corpora)
        seen = cube["token_count"] > 0
        norms = cube["row_norm"].where(seen)
        represented = (norms >= 0.5 * norms.median("token")).where(seen).mean("token")
        fits["represented_fraction_min"] = ("width", represented.min("seed").values)
        paper_test = cube["represented_fraction_paper"].min("seed").values
        fits["represented_fraction_paper_min"] = ("width", paper_test)
        fits["overlap_times_m_centred"] = ("width", centred * m)
        fits["mean_direction_energy"] = ("width", cube["mean_direction_energy"].mean("seed").values)
        fits.attrs["unseen_tokens"] = int((~seen).sum())
        fits = fits.assign_coords(width=cube["width"].values)
        fits.attrs.update(
            overlap_slope=float(-slope_fit.exponent_), overlap_slope_r2=float(slope_fit.r2_),
            overlap_slope_ci_low=float(-slope_fit.exponent_ - t * slope_fit.exponent_se_),
            overlap_slope_ci_high=float(-slope_fit.exponent_ + t * slope_fit.exponent_se_),
            overlap_slope_centred=float(-centred_fit.exponent_),
            overlap_slope_centred_ci_low=float(-centred_fit.exponent_ - t * centred_fit.exponent_se_),
            overlap_slope_centred_ci_high=float(-centred_fit.exponent_ + t * centred_fit.exponent_se_),
            overlap_slope_ci_method="log-log least squares over the widths, ± t(0.975, n−2)·SE",
            width_law="L = A/m^α + B, least squares on the final validation loss of every run"
                      + (f"; B ≥ the corpus entropy rate {float(floor):.4f} nats/token" if bounded else ""),
            width_law_offset_floor=float(floor) if bounded else math.nan,
            alpha_m=float(law.natural_["alpha"]), alpha_m_se=float(se.get("alpha", math.nan)),
            # Student t with the fit's residual degrees of freedom: few points, three parameters
            alpha_m_t95=float(scipy_stats.t.ppf(0.975, max(len(points) - 3, 1))),
            token_zipf_exponent=float(cube.attrs["token_zipf_exponent"]),
            represented_rule="row norm ≥ ½ median row norm",
            excluded_diverged_runs=diverged,
        )
        return self.describe(fits, "fits")

    # ---- figures -------------------------------------------------------------------------------
    def _figure_overlap_vs_width(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        inv = 1.0 / cube["width"].values
        for seed in cube["seed"].values:
            first = seed == cube["seed"].values[0]
            ax.plot(inv, cube["mean_sq_overlap"].sel(seed=seed), "o", color="C0", alpha=0.7,
                    label="our family (raw rows)" if first else None)
            if "mean_sq_overlap_centred" in cube:
                ax.plot(inv, cube["mean_sq_overlap_centred"].sel(seed=seed), "^", color="C2",
                        alpha=0.7, label="mean direction projected out" if first else None)
        x = np.array([inv.min(), inv.max()])
        if "hf_mean_sq_overlap" in cube:
            hx = 1.0 / cube["hf_width"].values
            ax.plot(hx, cube["hf_mean_sq_overlap"], "s", color="C3", label="HF checkpoints")
            x = np.array([min(x[0], hx.min()), max(x[1], hx.max())])
        ax.plot(x, x, "k--", lw=1, label="overlap = 1/m")
        ax.set(xscale="log", yscale="log", xlabel="1/m", ylabel="mean squared overlap",
               title=f"slope {fits.attrs['overlap_slope']:.2f} raw, "
                     f"{fits.attrs.get('overlap_slope_centred', np.nan):.2f} centred (paper: ≈ 1)")
        ax.legend(fontsize=7)
        return fig

    def _figure_row_norms(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        order = np.argsort(-cube["token_count"].values)
        ranks = np.arange(1, len(order) + 1)
        for i, width in enumerate(cube["width"].values):
            norms = cube["row_norm"].sel(width=width).isel(seed=0).values[order]
            ax.plot(ranks, norms, ".", ms=2, color=f"C{i}", label=f"m = {width}")
        ax.set(xscale="log", xlabel="token frequency rank", ylabel="unembedding row norm",
               title="unembedding row norms by token frequency")
        ax.legend(fontsize=7, markerscale=4)
        return fig

    def _figure_loss_vs_width(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        m = cube["width"].values
        for seed in cube["seed"].values:
            ax.plot(m, cube["final_val_loss"].sel(seed=seed), "o", color="C0", alpha=0.7)
        est = dict(zip(fits["parameter"].values, fits["width_law"].values))
        x = np.geomspace(m.min(), m.max(), 50)
        ax.plot(x, est["A"] * x ** -est["alpha"] + est["E"], "C1-",
                label=f"A/m^α + B: α = {est['alpha']:.2f} ± {fits.attrs['alpha_m_se']:.2f}")
        ax.axhline(est["E"], color="0.5", ls=":", lw=1, label=f"B = {est['E']:.3f}")
        ax.set(xscale="log", xlabel="width m", ylabel="final validation loss (nats/token)",
               title="the width law")
        ax.legend(fontsize=7)
        return fig

    def _figure_token_frequency(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        counts = np.sort(cube["token_count"].values)[::-1]
        counts = counts[counts > 0]
        ranks = np.arange(1, len(counts) + 1)
        ax.plot(ranks, counts / counts.sum(), "C0.", ms=3, label="training tokens")
        s = fits.attrs["token_zipf_exponent"]
        ax.plot(ranks, (counts[0] / counts.sum()) * ranks ** -s, "k--", lw=1, label=f"rank^−{s:.2f}")
        ax.set(xscale="log", yscale="log", xlabel="rank", ylabel="frequency", title="token frequencies")
        ax.legend(fontsize=7)
        return fig

    # ---- claims --------------------------------------------------------------------------------
    def claim_deviations(self, cube) -> str:
        m = cube["width"].values
        data = (f"D = {self.settings['tokens_per_parameter']:g}·N training tokens per width"
                if self.settings["tokens_per_parameter"] else f"{self.settings['tokens']:,} training tokens each")
        return (f"our family: m = {m.min()}–{m.max()}, n = {cube.sizes['token']} tokens, "
                f"{data}, {self.settings['corpus']['source']} "
                "corpus (paper: 27 LLMs, m = 512–8192, n ≈ 50k–150k)")

    def shape_exponent(self, cube) -> float:
        """k of N ∝ m^k over our widths: α_m = k·α_N. The paper's 0.91 comes from LLMs with
        N ∝ m^2.5 (Chinchilla shapes); our family at fixed depth has its own k."""
        m = cube["width"].values.astype(float)
        n_params = cube["n_params"].isel(seed=0).values.astype(float)
        return float(np.polyfit(np.log(m), np.log(n_params), 1)[0])

    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        k = self.shape_exponent(cube)
        s = self.rule_spectrum_exponent()
        alpha_n = (s - 1.0) if s is not None else 0.91 / 2.5
        basis = (f"quanta model of the grammar: α_N ≈ s − 1 = {alpha_n:.2f}" if s is not None
                 else f"the paper's α_N = 0.91/2.5 = {alpha_n:.3f}")
        return (
            ClaimSpec("all_tokens_represented", "every token row has a non-zero norm (strong "
                      "regime): smallest represented fraction over widths", "all rows non-zero in "
                      "every LLM", "code", 1.0, 0.05),
            ClaimSpec("all_tokens_represented_paper", "no token row is near zero (the paper's test: "
                      "norm ≥ 0.1 median), smallest fraction over widths", "all rows non-zero in "
                      "every LLM", "code", 1.0, 0.05),
            ClaimSpec("overlap_slope", "mean squared overlap ∝ 1/m (slope against 1/m, raw rows as "
                      "the paper)", "slope ≈ 1", "fig", 1.0, 0.3),
            ClaimSpec("overlap_slope_centred", "the same slope with the rows' shared mean direction "
                      "projected out (the mechanism: near-orthogonal packing of the remaining "
                      "directions)", "slope ≈ 1 (the paper measures raw rows)", "derived", 1.0, 0.3),
            ClaimSpec("width_exponent", "loss L = A/m^α + B with α ≈ 1 (paper's LLM joint fit, "
                      "models with N ∝ m^2.5)", "α_m = 0.91 ± 0.04", "nb", 0.91, 0.25),
            ClaimSpec("width_exponent_family", "the width exponent our family's shape implies: "
                      f"α_m = k·α_N (N ∝ m^k, k = {k:.2f})", f"{basis} → α_m = {k * alpha_n:.2f}",
                      "derived", k * alpha_n, 0.25 * k * alpha_n),
            ClaimSpec("token_zipf", "token frequencies are Zipf-like with exponent ≈ 1", "α ≈ 1",
                      "code", 1.0, 0.3),
        )

    def measure(self, cube, fits) -> dict[str, Measured]:
        fitted, _ = without_diverged(cube)
        plateau = self.plateau_premise(cube, fitted["final_val_loss"].values)
        alpha, se = fits.attrs["alpha_m"], fits.attrs["alpha_m_se"]
        energy = fits["mean_direction_energy"].values
        k = self.shape_exponent(cube)
        width_premises = (plateau, self.lr_premise(cube),
                          self.bound_premise(fits.attrs, " (offset B above the entropy rate)"))
        t = fits.attrs["alpha_m_t95"]
        ci = (alpha - t * se, alpha + t * se)
        detail = f"± {se:.2f} (Gauss-Newton SE; CI ± {t:.2f} SE, Student t); our family N ∝ m^{k:.2f}"
        return {
            "all_tokens_represented": Measured(
                float(fits["represented_fraction_min"].min()),
                f"(norm ≥ ½ median, over the {cube.sizes['token'] - fits.attrs['unseen_tokens']} "
                "tokens that occur in the training data)", premises=(plateau,)),
            "all_tokens_represented_paper": Measured(
                float(fits["represented_fraction_paper_min"].min()), premises=(plateau,)),
            "overlap_slope": Measured(
                fits.attrs["overlap_slope"],
                f"(R² {fits.attrs['overlap_slope_r2']:.2f}; the rows' mean direction carries "
                f"{energy.min():.0%}–{energy.max():.0%} of their energy)",
                ci=(fits.attrs["overlap_slope_ci_low"], fits.attrs["overlap_slope_ci_high"]),
                premises=(plateau,)),
            "overlap_slope_centred": Measured(
                fits.attrs["overlap_slope_centred"],
                ci=(fits.attrs["overlap_slope_centred_ci_low"], fits.attrs["overlap_slope_centred_ci_high"]),
                premises=(plateau,)),
            "width_exponent": Measured(
                alpha, detail, ci=ci,
                premises=(*width_premises, Premise("the paper's model shapes (N ∝ m^k, k = 2.5 ± 0.3)",
                                                   abs(k - 2.5) <= 0.3, f"k = {k:.2f}"))),
            "width_exponent_family": Measured(alpha, detail, ci=ci, premises=width_premises),
            "token_zipf": Measured(
                fits.attrs["token_zipf_exponent"],
                premises=(self.set_by_construction_premise("token Zipf exponent (grammar.token_zipf)"),)),
        }

    FIGURES = {
        "overlap_vs_width": ("Mean squared overlap of the normalised unembedding rows against 1/m "
                             "(our family, raw rows as the paper and with the rows' shared mean "
                             "direction projected out, plus any local Hugging Face checkpoints); "
                             "the line is overlap = 1/m (slope 1), the strong-superposition "
                             "prediction.", _figure_overlap_vs_width),
        "row_norms": ("Row norms of the unembedding against the token's frequency rank in the "
                      "training data, per width (strong regime: every token has a clearly non-zero "
                      "norm).", _figure_row_norms),
        "loss_vs_width": ("Final validation loss against width m with the fit L = A/m^α + B "
                          "(paper on real LLMs: α = 0.91 ± 0.04).", _figure_loss_vs_width),
        "token_frequency": ("Rank-frequency of the training tokens, with the fitted Zipf exponent.",
                            _figure_token_frequency),
    }
