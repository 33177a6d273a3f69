"""Superposition yields robust neural scaling (Liu, Liu & Gore 2025): the toy-model study.

Grid: frequency profile (dist, α) × weight decay γ × activation density E × width m × seed.
Each run trains the ReLU-output toy model of ``scaling_atlas.models.superposition_toy``; the
cube holds final losses (paper units), representation metrics, loss curves and row-norm
histograms; the fits give the width exponent α_m per (dist, α, γ, E); the claims compare α_m,
overlaps and represented fractions with ``shared/reference/superposition.md`` §10.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Hashable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.config import short_list
from scaling_atlas.cubes import grid_from_records, without_diverged
from scaling_atlas.laws import fit_power_law_over
from scaling_atlas.laws.powerlaw import FIT_FIELDS
from scaling_atlas.runs import Run
from scaling_atlas.studies.superposition import figures
from scaling_atlas.studies.superposition.figures import base_density
from scaling_atlas.studies.base import Study, group_for_device

GRID_DIMS = ["dist", "alpha", "gamma", "density", "m", "seed"]
PAPER = {"batch_size": 2048, "lr": 0.01, "seeds": 1}

#: the per-run numbers of a shard, placed on the grid (scalar per run)
SCALARS = ("loss_eval", "loss_last", "loss_last_std", "phi_half", "phi_one", "mean_sq_overlap",
           "sq_overlap_var", "mean_sq_overlap_strong", "sq_overlap_var_strong", "loss_unlearned",
           "train_seconds", "diverged")
#: the width-exponent fits of laws.fit_power_law_over, per seed and on the seed-mean loss
FITTED = {name: long_name for name, (_, long_name) in FIT_FIELDS.items()}
VARIABLES = {
    # grid
    "dist": ("feature-frequency profile", "1"),
    "alpha": ("data exponent α of p_i ∝ i^(−α) (NaN for non-power profiles)", "1"),
    "gamma": ("signed weight decay γ", "1"),
    "density": ("activation density E = Σ p_i", "1"),
    "m": ("hidden width m", "1"),
    "seed": ("replicate seed", "1"),
    "step": ("optimiser step (end of a log-spaced bin)", "1"),
    "norm_bin": ("row-norm bin centre", "1"),
    # cube
    "loss_eval": ("final loss on fresh samples, sum over features (paper units)", "1"),
    "loss_last": ("mean training loss of the last steps, sum over features (paper units)", "1"),
    "loss_last_std": ("standard deviation of the last training-step losses (paper units)", "1"),
    "phi_half": ("represented fraction φ½ = #{{‖W_i‖ > 1/2}}/n", "1"),
    "phi_one": ("strongly represented fraction φ₁ = #{{‖W_i‖ > 1}}/n", "1"),
    "mean_sq_overlap": ("mean squared overlap (Ŵ_i·Ŵ_j)², all pairs i ≠ j", "1"),
    "sq_overlap_var": ("variance of the squared overlaps, all pairs", "1"),
    "mean_sq_overlap_strong": ("mean squared overlap among rows with ‖W_i‖ > 1", "1"),
    "sq_overlap_var_strong": ("variance of the squared overlaps among rows with ‖W_i‖ > 1", "1"),
    "loss_unlearned": ("loss predicted from unlearned features, ⟨v²⟩ Σ_{{i > φ½ n}} p_i", "1"),
    "train_seconds": ("wall-clock training time of the run", "s"),
    "diverged": ("1 if the run diverged (non-finite loss or weights; left out of every fit)", "1"),
    "loss_eval_per_element": ("final loss on fresh samples, mean over features (authors' "
                              "nn.MSELoss units)", "1"),
    "loss_last_per_element": ("mean training loss of the last steps, mean over features (code "
                              "units)", "1"),
    "loss_curve": ("training loss, mean over each log-spaced bin of steps (paper units)", "1"),
    "norm_hist": ("fraction of rows per row-norm bin (bin width 0.05; last bin includes ≥ 2)", "1"),
    # fits
    "estimate": ("loss estimate fitted (eval: fresh samples; last: last training steps)", "1"),
    "form": ("fitted form (loglog: OLS of log L on log m, the paper's; offset: L = A m^−α + C)", "1"),
    **{name: (long_name, "1") for name, long_name in FITTED.items()},
    **{f"mean_{name}": (f"{long_name}, fitted to the seed-mean loss", "1")
       for name, long_name in FITTED.items()},
    "alpha_m_seed_std": ("standard deviation of per-seed α_m across seeds", "1"),
    "overlap_exponent": ("exponent β of mean squared overlap ∝ m^(−β) (seed mean)", "1"),
}


class SuperpositionStudy(Study):
    kind = "superposition"
    finite_results = ("loss_eval", "loss_last", "loss_curve")
    title = "Superposition yields robust neural scaling (Liu, Liu & Gore 2025)"
    VARIABLES = VARIABLES

    # ---- config ------------------------------------------------------------------------------
    def frequency_profiles(self) -> list[tuple[str, float]]:
        """(dist, α) pairs of the grid; α is NaN for profiles without an exponent."""
        profiles = []
        for dist in self.settings["distributions"]:
            alphas = self.settings["alphas"] if dist == "power" else [math.nan]
            profiles += [(dist, float(a)) for a in alphas]
        return profiles

    def probabilities(self, dist: str, alpha: float, density: float = 1.0):
        """Ranked activation probabilities of a profile (a float64 tensor; imports PyTorch)."""
        from scaling_atlas.models import superposition_toy as toy

        return toy.feature_probabilities(
            self.settings["n"], dist, alpha, density, exp_scale=self.settings["exp_scale"]
        )

    def validate(self) -> list[str]:
        cfg, problems = self.settings, []
        n = cfg["n"]
        too_wide = [m for m in cfg["widths"] if m > n]
        if too_wide:
            problems.append(
                f"widths: m = {short_list(too_wide)} exceed n = {n}; the toy model compresses n features "
                "into m ≤ n dimensions (rule: m ≤ n)"
            )
        fit_widths = [m for m in cfg["widths"] if m >= cfg["fit_min_m"]]
        if len(fit_widths) < 2:
            problems.append(
                f"widths: only {len(fit_widths)} width(s) ≥ fit_min_m = {cfg['fit_min_m']}; "
                "α_m needs at least 2 (rule: ≥ 2 fitted widths)"
            )
        if cfg["lr_rule"] == "width_scaled" and cfg["lr_bias"] is not None:
            problems.append(
                f"lr_bias: {cfg['lr_bias']} would be ignored: lr_rule width_scaled sets "
                "lr_b = 2/m; remove lr_bias or use lr_rule: constant (rule: lr_bias needs "
                "lr_rule constant)")
        for key in ("last_steps", "curve_points"):
            if cfg[key] > cfg["steps"]:
                problems.append(
                    f"{key}: {cfg[key]} exceeds steps = {cfg['steps']} (rule: {key} ≤ steps)"
                )
        for dist, alpha in self.frequency_profiles():
            p1 = float(self.probabilities(dist, alpha)[0])
            for density in cfg["densities"]:
                if density > 1.0 / p1 + 1e-9:
                    where = f"dist {dist}" + ("" if math.isnan(alpha) else f", α = {alpha}")
                    problems.append(
                        f"densities: E = {density} is impossible for {where} at n = {n}: the "
                        f"most frequent feature would fire with probability > 1; needs "
                        f"E ≤ 1/p_1 = {1.0 / p1:.4g} (rule: E ≤ 1/p_1)"
                    )
        return problems

    # ---- grid ----------------------------------------------------------------------------------
    def learning_rates(self, m: int) -> tuple[float, float]:
        cfg = self.settings
        if cfg["lr_rule"] == "width_scaled":  # the authors' n = 10240 rule (exp-17)
            return cfg["lr"] * (8.0 / m) ** 0.25, 2.0 / m
        return cfg["lr"], cfg["lr_bias"] if cfg["lr_bias"] is not None else cfg["lr"]

    def runs(self) -> list[Run]:
        cfg = self.settings
        runs = []
        for dist, alpha in self.frequency_profiles():
            for gamma in cfg["gammas"]:
                for density in cfg["densities"]:
                    for m in cfg["widths"]:
                        lr_W, lr_b = self.learning_rates(m)
                        for seed in cfg["seeds"]:
                            params = {
                                "n": cfg["n"], "m": int(m), "dist": dist,
                                "alpha": None if math.isnan(alpha) else alpha,
                                "exp_scale": float(cfg["exp_scale"]) if dist == "exponential" else None,
                                "gamma": float(gamma), "density": float(density),
                                "seed": int(seed), "seed_salt": self.workflow_config.get("seed_salt", 0),
                                "batch_size": cfg["batch_size"], "steps": cfg["steps"],
                                "lr_W": float(lr_W), "lr_b": float(lr_b),
                                "warmup_fraction": float(cfg["warmup_fraction"]),
                                "final_lr_fraction": float(cfg["final_lr_fraction"]),
                                "eval_samples": cfg["eval_samples"],
                                "last_steps": cfg["last_steps"], "curve_points": cfg["curve_points"],
                            }
                            runs.append(Run.from_params(params))
        return runs

    def run_count(self) -> int:
        cfg = self.settings
        return len(self.frequency_profiles()) * math.prod(
            len(cfg[key]) for key in ("gammas", "densities", "widths", "seeds"))

    def shape_key(self, run: Run) -> Hashable:
        p = run.params
        return (p["n"], p["m"], p["batch_size"], p["steps"], p["warmup_fraction"],
                p["final_lr_fraction"], p["eval_samples"], p["last_steps"], p["curve_points"])

    def shard_label(self, run: Run) -> str:
        return f"n{run['n']}-m{run['m']}"

    # ---- training ------------------------------------------------------------------------------
    def train_shard(self, runs, device, ckpt_dir: Path, batching: str, log) -> xr.Dataset:
        from scaling_atlas.train.superposition import results_to_dataset, train_group

        results = []
        for group in group_for_device(runs, device, batching):
            results += train_group(
                group, device, Path(ckpt_dir), self.probabilities, log,
                checkpoint_every=self.settings["checkpoint_every"],
            )
        return results_to_dataset(runs, results, GRID_DIMS)

    # ---- cube ----------------------------------------------------------------------------------
    def assemble(self, shard_results: list[xr.Dataset], datasets=None) -> xr.Dataset:
        records = pd.concat([_records(ds) for ds in shard_results], ignore_index=True)
        steps = shard_results[0]["step"].to_numpy()
        cube = grid_from_records(
            records, GRID_DIMS, SCALARS,
            arrays={"loss_curve": ("step", steps),
                    "norm_hist": ("norm_bin", shard_results[0]["norm_bin"].to_numpy())},
        )
        n = self.settings["n"]
        cube["loss_eval_per_element"] = cube["loss_eval"] / n
        cube["loss_last_per_element"] = cube["loss_last"] / n
        for name in ("loss_eval", "loss_last", "loss_curve"):
            cube[name].attrs["loss_convention"] = "paper: sum over the n features, mean over samples"
        cube["loss_eval_per_element"].attrs["loss_convention"] = (
            "code: mean over samples and features = paper / n")
        cube.attrs.update(
            title=self.title, study=self.name, n_features=n,
            batch_size=self.settings["batch_size"], steps=self.settings["steps"],
            reference="shared/reference/superposition.md",
        )
        return self.describe(cube)

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube: xr.Dataset, n_jobs: int | None = None) -> xr.Dataset:
        """α_m per (dist, α, γ, E): per seed and on the seed-mean loss; log-log and with offset.
        Diverged runs are left out (their cells are NaN; each fit counts its points)."""
        min_m = self.settings["fit_min_m"]
        cube, diverged = without_diverged(cube)
        parts = []
        for estimate in ("eval", "last"):
            loss = cube[f"loss_{estimate}"]
            for form, offset in (("loglog", False), ("offset", True)):
                per_seed = fit_power_law_over(loss, "m", offset=offset, min_x=min_m)
                pooled = fit_power_law_over(loss.mean("seed"), "m", offset=offset, min_x=min_m)
                pooled = pooled.rename({k: f"mean_{k}" for k in pooled.data_vars})
                part = xr.merge([per_seed, pooled])
                # ddof=1 over one seed is NaN: no spread is known then, rather than zero
                part["alpha_m_seed_std"] = per_seed["alpha_m"].std("seed", ddof=1)
                parts.append(part.expand_dims(estimate=[estimate], form=[form]))
        fits = xr.combine_by_coords(parts, combine_attrs="drop_conflicts")
        overlap = fit_power_law_over(cube["mean_sq_overlap"].mean("seed"), "m", min_x=min_m)
        fits["overlap_exponent"] = overlap["alpha_m"]
        fits.attrs.update(title=f"{self.title}: width-exponent fits", fit_min_m=min_m,
                          excluded_diverged_runs=diverged)
        return self.describe(fits)

    # ---- claims --------------------------------------------------------------------------------
    def regime_gammas(self, cube: xr.Dataset | None = None) -> tuple[float | None, float | None]:
        """The γ of the strong (most negative) and weak (most positive) regimes, if sampled."""
        gammas = np.asarray(self.settings["gammas"] if cube is None else cube["gamma"], dtype=float)
        strong = float(gammas.min()) if gammas.min() < 0 else None
        weak = float(gammas.max()) if gammas.max() > 0 else None
        return strong, weak

    def claim_deviations(self, cube) -> str:
        cfg, notes = self.settings, []
        if cfg["n"] != cfg["paper_n"]:
            notes.append(f"n = {cfg['n']} (paper {cfg['paper_n']})")
        if cfg["steps"] != cfg["paper_steps"]:
            notes.append(f"{cfg['steps']} steps (paper {cfg['paper_steps']}), schedule shortened")
        if cfg["batch_size"] != PAPER["batch_size"]:
            notes.append(f"batch {cfg['batch_size']} (paper {PAPER['batch_size']})")
        if cfg["lr_rule"] == "constant" and cfg["lr"] != PAPER["lr"]:
            notes.append(f"peak lr {cfg['lr']} (paper {PAPER['lr']})")
        if len(cfg["seeds"]) != PAPER["seeds"]:
            notes.append(f"{len(cfg['seeds'])} seeds (paper 1 replicate)")
        return "; ".join(notes)

    def power_alphas(self) -> list[float]:
        """The data exponents α of the power-law profile, ascending (none without it)."""
        cfg = self.settings
        return sorted({float(a) for a in cfg["alphas"]}) if "power" in cfg["distributions"] else []

    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        """Per data exponent α: α_m ≈ 1 (strong, α ≤ 1), α − 1 (weak, α > 1), between 1 and
        2(α − 1) (strong, α > 1); then the overlap and represented-fraction claims."""
        strong, weak = (math.nan if g is None else g for g in self.regime_gammas())
        specs = []
        for alpha in self.power_alphas():
            low, high = sorted((1.0, 2.0 * (alpha - 1.0)))
            specs += [
                ClaimSpec(f"strong_alpha_m_a{alpha:g}", f"strong regime (γ = {strong:g}), α = {alpha:g}: "
                          "α_m ≈ 1", "α_m ≈ 0.8–1.1", "paper/fig", 1.0, 0.15),
                ClaimSpec(f"weak_alpha_m_a{alpha:g}", f"weak regime (γ = {weak:g}), α = {alpha:g}: "
                          "α_m ≈ α − 1", f"α_m ≈ {alpha - 1:g}", "paper/fig", alpha - 1.0, 0.15),
                ClaimSpec(f"strong_steep_alpha_m_a{alpha:g}", f"strong regime (γ = {strong:g}), "
                          f"α = {alpha:g}: α_m between 1 and 2(α − 1)",
                          f"{low:g} ≤ α_m ≤ {high:g} (+0.15)", "fig", (low + high) / 2,
                          (high - low) / 2 + 0.15),
            ]
        return (*specs,
                ClaimSpec("overlap_exponent", f"strong regime (γ = {strong:g}): mean squared "
                          "overlap ∝ 1/m", "slope ≈ −1 against m", "fig", 1.0, 0.15),
                ClaimSpec("overlap_times_m", f"strong regime (γ = {strong:g}): m · mean squared "
                          "overlap ≈ 1", "≈ 0.1 at m = 10, ≈ 0.01 at m = 100", "fig", 1.0, 0.3),
                ClaimSpec("phi_half_strong", f"strong regime (γ = {strong:g}): φ½ ≈ 1 (all "
                          "features represented)", "φ½ ≈ 1", "fig", 1.0, 0.05),
                ClaimSpec("phi_half_weak", f"weak regime (γ = {weak:g}): φ½ ≈ m/n (top ≈ m "
                          "features represented)", "φ½ ≈ m/n", "fig", 0.0, 1.0))

    def measure(self, cube: xr.Dataset, fits: xr.Dataset) -> dict[str, Measured]:
        strong, weak = self.regime_gammas(cube)
        power = cube.sel(dist="power") if "power" in cube["dist"] else None
        density = base_density(cube)
        fit = fits.sel(estimate="eval", form="loglog", density=density)
        out = {}

        def alpha_m(gamma, alpha) -> Measured:
            row = fit.sel(dist="power", gamma=gamma, alpha=alpha)
            detail = f"± {float(row['mean_alpha_m_se']):.2f} SE"
            spread = float(row["alpha_m_seed_std"])
            if math.isfinite(spread):
                detail += f", seed sd {spread:.2f}" if spread >= 0.005 else ", seed sd < 0.01"
            return Measured(float(row["mean_alpha_m"]), detail)

        for alpha in self.power_alphas():
            if strong is not None and alpha <= 1:
                out[f"strong_alpha_m_a{alpha:g}"] = alpha_m(strong, alpha)
            if weak is not None and alpha > 1:
                out[f"weak_alpha_m_a{alpha:g}"] = alpha_m(weak, alpha)
            if strong is not None and alpha > 1:
                out[f"strong_steep_alpha_m_a{alpha:g}"] = alpha_m(strong, alpha)
        if strong is not None and power is not None:
            overlap = power.sel(gamma=strong, density=density)["mean_sq_overlap"].mean("seed")
            beta = fits["overlap_exponent"].sel(dist="power", gamma=strong, density=density)
            out["overlap_exponent"] = Measured(float(np.nanmedian(beta)), "median over α of the exponent")
            m_times = (overlap * overlap["m"]).to_numpy()
            out["overlap_times_m"] = Measured(float(np.nanmedian(m_times)), "median over α and m")
            phi = power.sel(gamma=strong, density=density)["phi_half"]
            out["phi_half_strong"] = Measured(float(phi.min()), "minimum over α, m, seeds")
        if weak is not None and power is not None:
            phi = power.sel(gamma=weak, density=density)["phi_half"]
            ratio = np.log2(phi * self.settings["n"] / phi["m"]).to_numpy()
            out["phi_half_weak"] = Measured(float(np.nanmedian(ratio)), "log2(φ½·n/m), median "
                                            "over α, m, seeds (±1 = within a factor 2)")
        return out

    FIGURES = figures.FIGURES

def _records(ds: xr.Dataset) -> pd.DataFrame:
    """Shard dataset → one row per run (scalars, grid coordinates, and array columns)."""
    frame = pd.DataFrame({name: ds[name].to_numpy() for name in [*SCALARS, *GRID_DIMS]})
    frame["loss_curve"] = list(ds["loss_curve"].to_numpy())
    frame["norm_hist"] = list(ds["norm_hist"].to_numpy())
    return frame
