"""Over-parameterised matrix sensing (Xiong, Ding & Du, ICLR 2024): GD slows down when k > r.

Grid: parameterisation (sym X Xᵀ, asym F Gᵀ, asym + one-step rebalancing) × k × α × step size ×
seed; one shard = one (parameterisation, k) block whose runs advance together as one batched
float64 program. Per run the cube keeps ‖product − M*‖²_F at log-spaced steps and the first step
at which the error falls below each decade 10⁰ … 10⁻³⁰ (dense in error, so fast and slow phases
are both resolved). Fits: the tail power law for sym k > r (paper: T⁻²), exponential rates
elsewhere, rate ∝ α² for asym k > r, rebalanced rates independent of α.
Spec: shared/reference/matrix-sensing.md.
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
from scaling_atlas.cubes import grid_from_records
from scaling_atlas.figures import new_panel
from scaling_atlas.laws import LawFit, Objective, PowerLaw
from scaling_atlas.runs import Run
from scaling_atlas.studies.base import Study

MACHINE_FLOOR = 1e-28  # below this the error is float64 round-off, not dynamics
LOG_SQUARED = Objective("mse", space="log")  # OLS of ln err: the rate / slope of the paper


class MatrixSensingStudy(Study):
    kind = "matrix_sensing"
    title = "How over-parameterization slows gradient descent in matrix sensing (Xiong, Ding & Du 2024)"
    compute_dtype = "float64"
    VARIABLES = {
        "param": ("parameterisation: sym X Xᵀ, asym F Gᵀ, asym + one-step rebalancing", "1"),
        "k": ("columns of the factors (k = r exact, k > r over-parameterised)", "1"),
        "alpha": ("initialisation scale α", "1"), "eta": ("GD step size η", "1"),
        "seed": ("seed of the problem (M*, A) and of the initialisation", "1"),
        "step": ("GD step t", "1"), "decade": ("j: error threshold 10^(−j)", "1"),
        "err_fro2": ("squared Frobenius error ‖product − M*‖²_F (NaN after a shard stopped "
                     "early because every run was below 1e-30)", "1"),
        "first_passage": ("first step at which err_fro2 ≤ 10^(−j)", "1"),
        "diverged": ("1 if the run diverged (error above diverge_above or not finite)", "1"),
        "rebalance_step": ("step of the one-step rebalancing (NaN: not applied)", "1"),
        # fits
        "tail_exponent": ("−slope of ln err vs ln t over t ≥ {tail_from}·T (paper: 2)", "1"),
        "rate": ("exponential rate r in err ∝ exp(−r t), from first passages of decades "
                 "within [{rate_window[1]:g}, {rate_window[0]:g}]", "1/step"),
        "rate_alpha_power": ("p in mean rate ∝ α^p over k > r (paper, asym: 2)", "1"),
    }
    CLAIMS = (
        ClaimSpec("sym_overparam_tail", "symmetric, k > r: error ∝ T^−2 (tail exponent)",
                  "Ω(1/T²) lower bound; reference sim −1.70 … −1.97", "paper, reference simulation",
                  1.85, 0.3),
        *(ClaimSpec(f"{param}_exact_machine_precision",
                    f"{param}, k = r: linear convergence to 1e−25 within ≈ 1e3 steps (slowest run)",
                    "exp(−Ω(T)); reference sim ≈ 1e3 steps", "paper, reference simulation", 500, 500)
          for param in ("sym", "asym")),
        ClaimSpec("asym_rate_alpha2", "asymmetric, k > r: rate ∝ α² (exponent p of α)",
                  "exp(−Ω(α² T))", "paper", 2.0, 0.5),
        ClaimSpec("asym_rate_over_alpha2_spread", "asymmetric, k > r: rate/α² constant within 2× "
                  "across α (max/min, median over k)", "Θ(α²); reference sim within ≈ 2×",
                  "reference simulation", 1.5, 1.0),
        ClaimSpec("rebalanced_alpha_independent", "rebalanced once: rate independent of α (exponent "
                  "p of rate ∝ α^p; plain GD: p ≈ 2)", "rate independent of α", "paper", 0.0, 0.5),
        ClaimSpec("rebalanced_recovers_exact_rate", "rebalanced once: rate ≈ the exact-"
                  "parameterisation rate (median ratio)", "recovers the k = r rate", "paper", 1.0, 0.5),
    )

    # ---- config ------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        cfg, problems = self.settings, []
        n, r = cfg["n"], cfg["r"]
        if r >= n:
            problems.append(f"r: rank r = {r} must be below n = {n} (rule: r < n)")
        small = [k for k in cfg["ks"] if k < r]
        if small:
            problems.append(f"ks: k = {short_list(small)} below the rank r = {r}; the factorisation cannot "
                            "represent M* (rule: k ≥ r)")
        wide = [k for k in cfg["ks"] if k > n]
        if wide:
            problems.append(f"ks: k = {short_list(wide)} exceed n = {n} (rule: k ≤ n)")
        if cfg["operator"] == "gaussian" and cfg["measurements"] < 5 * n * r:
            problems.append(
                f"measurements: m = {cfg['measurements']} is too few for n = {n}, r = {r}: "
                f"Gaussian sensing needs m ≳ 5·n·r = {5 * n * r} for restricted isometry "
                "(rule: m ≥ 5·n·r)")
        if cfg["rate_window"][0] <= cfg["rate_window"][1]:
            problems.append("rate_window: give [upper, lower] error bounds with upper > lower")
        return problems

    # ---- grid ----------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        cfg = self.settings
        return [
            Run.from_params({"param": param, "k": k, "alpha": alpha, "eta": eta, "seed": seed,
                             "n": cfg["n"], "r": cfg["r"], "operator": cfg["operator"],
                             "measurements": cfg["measurements"] if cfg["operator"] == "gaussian" else 0,
                             "steps": cfg["steps"], "log_points": cfg["log_points"],
                             "rebalance_below": cfg["rebalance_below"] if param == "asym_rebalanced" else 0.0,
                             "diverge_above": cfg["diverge_above"],
                             "seed_salt": self.workflow_config.get("seed_salt", 0)})
            for param in cfg["params"] for k in cfg["ks"] for alpha in cfg["alphas"]
            for eta in cfg["step_sizes"] for seed in cfg["seeds"]
        ]

    def run_count(self) -> int:
        cfg = self.settings
        return math.prod(len(cfg[key]) for key in ("params", "ks", "alphas", "step_sizes", "seeds"))

    def shape_key(self, run: Run) -> Hashable:
        return (run["n"], run["operator"], run["measurements"], run["steps"])

    def shard_label(self, run: Run) -> str:
        return f"n{run['n']}-{run['operator']}"

    # ---- training ------------------------------------------------------------------------------
    def train_shard(self, runs, device, ckpt_dir: Path, batching: str, log) -> xr.Dataset:
        """Runs of equal (parameterisation, k) advance together as one stacked float64 program;
        a job takes several such blocks in turn (the factors are tiny: process start-up, not
        arithmetic, would dominate one job per block)."""
        from scaling_atlas.train.matrix_sensing import train_batch

        blocks: dict[tuple, list[Run]] = {}
        for run in runs:
            blocks.setdefault((run["param"], run["k"]), []).append(run)
        results = [
            train_batch(block, device, Path(ckpt_dir) / f"{param}-k{k}", log,
                        self.settings["checkpoint_every"])
            for (param, k), block in sorted(blocks.items())
        ]
        return xr.concat(results, dim="run")

    # ---- cube ----------------------------------------------------------------------------------
    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        combined = xr.concat(shard_results, dim="run")
        table = pd.DataFrame({name: combined[name].values for name in
                              ("param", "k", "alpha", "eta", "seed", "diverged", "rebalance_step")})
        table["err_fro2"] = list(combined["err_fro2"].values)
        table["first_passage"] = list(combined["first_passage"].values)
        steps = combined["step"].values
        cube = grid_from_records(
            table, dims=["param", "k", "alpha", "eta", "seed"], scalars=["diverged", "rebalance_step"],
            arrays={"err_fro2": ("step", steps),
                    "first_passage": ("decade", combined["decade"].values)},
        )
        cube.attrs.update(title=self.title, n=self.settings["n"], r=self.settings["r"],
                          operator=self.settings["operator"], steps=self.settings["steps"])
        return self.describe(cube)

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube: xr.Dataset, n_jobs: int | None = None) -> xr.Dataset:
        cfg = self.settings
        r = cfg["r"]
        high, low = cfg["rate_window"]
        usable = cube["diverged"] == 0
        steps = cube["step"].values
        tail = steps >= cfg["tail_from"] * cfg["steps"]
        tail_exponent = xr.apply_ufunc(
            lambda err: _tail_exponent(steps[tail], err[..., tail]), cube["err_fro2"],
            input_core_dims=[["step"]], vectorize=True)
        passage = cube["first_passage"].where(usable)
        level = 10.0 ** -cube["decade"]
        # rebalanced runs: only decades passed after the modification, two below its trigger
        after_rebalance = (passage > cube["rebalance_step"]) & (level <= cfg["rebalance_below"] / 100)
        window = (level <= high) & (level >= low) & xr.where(
            cube["param"] == "asym_rebalanced", after_rebalance, True)
        rate = xr.apply_ufunc(
            _exponential_rate, passage.where(window), cube["decade"],
            input_core_dims=[["decade"], ["decade"]], vectorize=True)
        fits = xr.Dataset({"tail_exponent": tail_exponent.where(usable).sel(param="sym", drop=True)
                           if "sym" in cube["param"].values else xr.DataArray(np.nan),
                           "rate": rate.where(usable)})
        # rate ∝ α^p for asym k > r: fit p on the seed-mean rates (engine: log-log OLS)
        over = [k for k in cube["k"].values if k > r]
        alpha_power = []
        for param in [p for p in ("asym", "asym_rebalanced") if p in cube["param"].values]:
            mean_rate = fits["rate"].sel(param=param, k=over).mean("seed")
            alpha_power.append(xr.apply_ufunc(
                lambda y: PowerLaw().fit(cube["alpha"].values, y).exponent_, mean_rate,
                input_core_dims=[["alpha"]], vectorize=True).expand_dims(param=[param]))
        if alpha_power:
            # PowerLaw reports −slope; rate ∝ α^p means slope p
            fits["rate_alpha_power"] = -xr.concat(alpha_power, dim="param")
        fits.attrs.update(tail_from=cfg["tail_from"], rate_window=str(cfg["rate_window"]),
                          fit_method="scaling_atlas.laws: power_law and exponential forms, "
                                     "least squares in log space (OLS of ln err)",
                          excluded="diverged runs; errors below 1e-28 (round-off)",
                          excluded_diverged_runs=int((cube["diverged"] == 1).sum()))
        return self.describe(fits)

    # ---- figures -------------------------------------------------------------------------------
    def _pick(self, cube, **sel):
        """The error curve at the first step size, geometric mean over seeds (log plots)."""
        da = cube["err_fro2"].sel(eta=cube["eta"].values[0], **sel)
        return np.exp(np.log(da).mean("seed")) if "seed" in da.dims else da

    def _shown_k(self, cube) -> int:
        """k = 2r (the reference simulation's k = 4) when in the grid, else the largest k."""
        ks = cube["k"].values
        return 2 * self.settings["r"] if 2 * self.settings["r"] in ks else int(ks.max())

    def _figure_symmetric_tail(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        steps = cube["step"].values
        alpha = float(cube["alpha"].values[len(cube["alpha"]) // 2])
        for i, k in enumerate(cube["k"].values):
            err = self._pick(cube, param="sym", k=k, alpha=alpha).values
            ax.plot(steps[1:], err[1:], color=f"C{i}", label=f"k = {k}" + (" (= r)" if k == self.settings["r"] else ""))
        guide_t = np.array([steps[-1] / 10, steps[-1]])
        over = [k for k in cube["k"].values if k > self.settings["r"]]
        if over:
            ref = float(self._pick(cube, param="sym", k=over[-1], alpha=alpha).sel(step=steps[-1]))
            ax.plot(guide_t, 3 * ref * (guide_t / guide_t[-1]) ** -2.0, "k--", lw=1, label="∝ T⁻²")
        ax.set(xscale="log", yscale="log", ylim=(1e-31, 10), xlabel="step t",
               ylabel="‖X Xᵀ − M*‖²_F", title=f"symmetric, α = {alpha:g}")
        ax.legend(fontsize=7)
        return fig

    def _figure_asymmetric_alpha(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        k = self._shown_k(cube)
        steps = cube["step"].values
        for i, alpha in enumerate(cube["alpha"].values):
            err = self._pick(cube, param="asym", k=k, alpha=alpha)
            ax.plot(steps, err, color=f"C{i}", label=f"α = {alpha:g}")
        ax.set(yscale="log", ylim=(1e-31, 10), xlabel="step t", ylabel="‖F Gᵀ − M*‖²_F",
               title=f"asymmetric, k = {k} > r = {self.settings['r']}")
        ax.legend(fontsize=7)
        return fig

    def _figure_rate_vs_alpha2(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        alpha2 = cube["alpha"].values ** 2
        eta = cube["eta"].values[0]
        for i, k in enumerate([k for k in cube["k"].values if k > self.settings["r"]]):
            for param, marker in (("asym", "o"), ("asym_rebalanced", "^")):
                if param not in fits["param"].values:
                    continue
                rate = fits["rate"].sel(param=param, k=k, eta=eta)
                ax.plot(np.repeat(alpha2[:, None], rate.sizes["seed"], axis=1), rate.values, marker,
                        color=f"C{i}", ms=4, alpha=0.7, mfc="none" if param == "asym" else f"C{i}")
                mean = rate.mean("seed").values
                if param == "asym" and np.isfinite(mean).sum() >= 2:
                    law = PowerLaw().fit(alpha2, mean)
                    x = np.geomspace(alpha2.min(), alpha2.max(), 20)
                    ax.plot(x, law.predict(x), color=f"C{i}", lw=1,
                            label=f"k = {k}: rate ∝ (α²)^{-law.exponent_:.2f}")
                elif param == "asym_rebalanced":
                    ax.plot(alpha2, mean, "--", color=f"C{i}", lw=1, label=f"k = {k} rebalanced")
        ax.set(xscale="log", yscale="log", xlabel="α²", ylabel="rate per step",
               title="asymmetric k > r: rate vs α²")
        ax.legend(fontsize=7)
        return fig

    def _figure_rebalancing(self, cube, fits):
        fig, ax = new_panel(width=5.2, height=4.0)
        k = self._shown_k(cube)
        steps = cube["step"].values
        for i, alpha in enumerate(cube["alpha"].values):
            for param, style in (("asym", ":"), ("asym_rebalanced", "-")):
                if param in cube["param"].values:
                    ax.plot(steps, self._pick(cube, param=param, k=k, alpha=alpha), style,
                            color=f"C{i}", label=f"α = {alpha:g}" if param == "asym_rebalanced" else None)
        ax.plot([], [], "k:", label="plain GD")
        ax.plot([], [], "k-", label="rebalanced once")
        ax.set(xscale="log", yscale="log", ylim=(1e-31, 10), xlabel="step t",
               ylabel="‖F Gᵀ − M*‖²_F", title=f"one-step rebalancing, k = {k}")
        ax.legend(fontsize=7, ncols=2)
        return fig

    # ---- claims --------------------------------------------------------------------------------
    def claim_deviations(self, cube) -> str:
        cfg = self.settings
        return (f"n = {cfg['n']}, r = {cfg['r']}, {cfg['operator']} operator, T = {cfg['steps']}"
                + (" (population limit: A = identity)" if cfg["operator"] == "population" else ""))

    def measure(self, cube, fits) -> dict[str, Measured]:
        r = self.settings["r"]
        over = [k for k in cube["k"].values if k > r]
        has = set(cube["param"].values)
        out = {}
        if "sym" in has and over:
            tails = fits["tail_exponent"].sel(k=over)
            out["sym_overparam_tail"] = Measured(
                tails.median(), f"median over k, α, seeds (range {float(tails.min()):.2f}–{float(tails.max()):.2f})")
        for param in ("sym", "asym"):
            if param in has and r in cube["k"].values:
                passage = cube["first_passage"].sel(param=param, k=r, decade=25)
                out[f"{param}_exact_machine_precision"] = Measured(passage.max(), "steps to reach 1e−25")
        if "asym" in has and over:
            power = fits["rate_alpha_power"].sel(param="asym")
            out["asym_rate_alpha2"] = Measured(
                power.median(), f"median over k > r (range {float(power.min()):.2f}–{float(power.max()):.2f})")
            ratio = fits["rate"].sel(param="asym", k=over).mean("seed") / cube["alpha"] ** 2
            out["asym_rate_over_alpha2_spread"] = Measured((ratio.max("alpha") / ratio.min("alpha")).median())
        if "asym_rebalanced" in has and over:
            power = fits["rate_alpha_power"].sel(param="asym_rebalanced")
            out["rebalanced_alpha_independent"] = Measured(
                power.median(), f"median over k > r (range {float(power.min()):.2f}–{float(power.max()):.2f})")
            if "asym" in has and r in cube["k"].values:
                rates = fits["rate"].sel(param="asym_rebalanced", k=over).mean("seed")
                exact = float(fits["rate"].sel(param="asym", k=r).mean())
                out["rebalanced_recovers_exact_rate"] = Measured(
                    float(rates.median()) / exact,
                    f"(rebalanced {float(rates.min()):.3f}–{float(rates.max()):.3f} vs k = r {exact:.3f} per step)")
        return out

    FIGURES = {
        "symmetric_tail": ("Symmetric X Xᵀ: exact parameterisation (k = r) converges linearly to "
                           "machine precision; over-parameterised (k > r) runs follow T⁻² (dashed "
                           "guide).", _figure_symmetric_tail),
        "asymmetric_alpha": ("Asymmetric F Gᵀ with the imbalanced (α, α/3) start, k > r: linear "
                             "convergence whose rate shrinks with the initial scale α.",
                             _figure_asymmetric_alpha),
        "rate_vs_alpha2": ("Exponential rate of the asymmetric over-parameterised runs against α², "
                           "with the power-law fit (paper: rate ∝ α²) and the rebalanced rates.",
                           _figure_rate_vs_alpha2),
        "rebalancing": ("The one-step rebalancing F ← F B, G ← G B⁻ᵀ (B = (FᵀF)^(−1/2)) restores "
                        "the exact-parameterisation rate, whatever α.", _figure_rebalancing),
    }


def _tail_exponent(steps, err):
    keep = np.isfinite(err) & (err > MACHINE_FLOOR)
    if keep.sum() < 3:
        return np.nan
    return PowerLaw().fit(steps[keep], err[keep]).exponent_


def _exponential_rate(passage, decade):
    """Rate r of err ∝ exp(−r t) through the first-passage points (t_j, 10^−j)."""
    keep = np.isfinite(passage)
    if keep.sum() < 3 or np.ptp(passage[keep]) == 0:
        return np.nan
    fit = LawFit("exponential", LOG_SQUARED, top_k=3)
    fit.fit({"t": passage[keep]}, 10.0 ** -decade[keep].astype(float))
    return fit.natural_["rate"]
