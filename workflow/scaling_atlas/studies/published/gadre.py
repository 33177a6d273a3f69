"""Gadre et al. 2024, "Language models scale reliably with over-training": the tied-exponent law
fitted on their five-point protocol predicts an over-trained 1.4B run and a 6.9B run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.laws import LawFit, Objective
from scaling_atlas.studies.published.common import LOSS, Obtain, by_row, in_group, table

FILE = "gadre2024_overtraining_models.csv"
#: the four shapes of the five-point protocol (all at M = 20, and the smallest at M = 320)
FIT_MODELS = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
#: our short name → the data set's name in their table
DATA = {"rpj": "rpj", "c4": "c4_original", "rw": "rw_original"}


def prepare(obtain: Obtain) -> xr.Dataset:
    meta = {
        "name": ("model run name", "1"), "dataset": ("training data", "1"),
        "model": ("model shape", "1"), "params": ("parameters incl. embeddings", "1"),
        "tokens": ("training tokens", "1"), "tokens_per_param": ("M = D/N", "1"),
        "loss_c4_val": ("C4 validation loss", "nats/token"),
        "err_avg_subset17": ("17-task average top-1 error", "1"),
        "err_avg_46": ("46-task average top-1 error", "1")}
    return table(pd.read_csv(obtain(FILE)), "run", meta,
                 source="Gadre et al. 2024 (mlfoundations/scaling@a003c49)")


DATASETS = {"gadre": prepare}

VARIABLES = in_group("gadre", {
    "training_data": ("training data set (C4 validation loss in every case)", "1"),
    "E": ("irreducible loss E of the tied-exponent law", LOSS),
    "a": ("coefficient a of the tied-exponent law (Gadre et al.'s form)", LOSS),
    "b": ("coefficient b of the tied-exponent law (Gadre et al.'s form)", LOSS),
    "eta": ("exponent η of the compute term (negative: loss falls with compute)", "1"),
    "m_1b": ("tokens per parameter of the 1B over-trained run predicted", "token/parameter"),
    "rel_error_1b": ("|predicted − observed| / observed loss of the 1B over-trained run", "1"),
    "rel_error_7b": ("|predicted − observed| / observed loss of the 7B run at 20 tokens per "
                     "parameter", "1"),
    "n_reached_best": ("refined starts that reached the best objective", "1"),
    "objective": ("least-squares objective at the best fit (sum of squared loss residuals)",
                  "(nats/token)^2")})


def fit(gadre: xr.Dataset) -> dict[str, xr.Dataset]:
    """Their five points per data set, least squares on raw loss from 128 starts."""
    df = gadre.to_dataframe()
    starts = [[math.log(a), math.log(b * 6 ** (eta / 2)), math.log(max(e, 1e-3)), -eta]
              for a in (1e2, 3e2, 1e3, 3e3) for b in (1e2, 3e2, 1e3, 3e3)
              for eta in (-0.1, -0.3) for e in (0, 1, 2, 10)]
    rows = []
    for name in DATA.values():
        d = df[df["dataset"] == name].rename(columns={"params": "N", "tokens": "D"})
        fit_rows = ((d["model"].isin(FIT_MODELS) & (d["tokens_per_param"] == 20))
                    | ((d["model"] == FIT_MODELS[0]) & (d["tokens_per_param"] == 320)))
        law = LawFit("chinchilla_tied", Objective("mse", space="linear"), starts=np.array(starts),
                     top_k=len(starts), bookkeeping={"N": "parameters incl. embeddings",
                                                     "D": "tokens", "target": "C4 val loss"})
        law.fit(d[fit_rows], d[fit_rows]["loss_c4_val"], excluded="all but the 5-point protocol")
        eta = -law.natural_["alpha"]
        one_b = d[(d["model"] == "open_lm_1b") & (d["tokens_per_param"] > 20)]
        seven_b = d[(d["model"] == "open_lm_7b") & (d["tokens_per_param"] == 20)]
        rel = {k: float(np.abs(law.predict(h) - h["loss_c4_val"]).iloc[0] / h["loss_c4_val"].iloc[0])
               for k, h in (("rel_error_1b", one_b), ("rel_error_7b", seven_b))}
        rows.append({"E": law.natural_["E"], "a": law.natural_["A"],
                     "b": law.natural_["B"] / 6 ** (eta / 2), "eta": eta,
                     "m_1b": float(one_b["tokens_per_param"].iloc[0]), **rel,
                     "n_reached_best": law.n_reached_best_, "objective": law.objective_value_})
    ds = by_row(pd.DataFrame(rows), "training_data", list(DATA))
    ds.attrs.update(protocol="Gadre et al.'s 5 points, tied-exponent law, least squares on raw "
                             "loss, 128 starts (ours: L-BFGS-B instead of Levenberg-Marquardt)")
    return {"gadre": ds}


def coverage_data(gadre: xr.Dataset) -> dict[str, pd.DataFrame]:
    """(N, D, C, loss) of each data set's runs, for the prediction-coverage table."""
    df = gadre.to_dataframe()
    data = {}
    for short, name in DATA.items():
        d = df[df["dataset"] == name]
        data[f"Gadre {short}"] = pd.DataFrame({"N": d["params"], "D": d["tokens"],
                                               "C": 6 * d["params"] * d["tokens"],
                                               "loss": d["loss_c4_val"]}).dropna()
    return data


#: no figure of its own: the five-point fits are a table (fits.nc group gadre)
FIGURES: dict = {}


# ---- claims ----------------------------------------------------------------------------------
#: short name, held-out error of the 1.4B over-trained run and of the 6.9B run [%]
ERRORS = (("rpj", 0.71, 0.73), ("c4", 1.5, 4.3), ("rw", 0.01, 1.6))


def claim_specs(cube) -> tuple[ClaimSpec, ...]:
    """The over-trained 1.4B run is named by its tokens per parameter, read from the data."""
    gadre = cube["gadre"].to_dataset().to_dataframe()
    over = gadre[(gadre["model"] == "open_lm_1b") & (gadre["tokens_per_param"] > 20)]
    m_1b = {short: int(over[over["dataset"] == name]["tokens_per_param"].iloc[0])
            for short, name in DATA.items()}
    source = {short: "recomputed" if short != "rpj" else "code" for short in DATA}
    return tuple(spec for short, one_b, seven_b in ERRORS for spec in (
        ClaimSpec(f"gadre_{short}_1b", f"Gadre 5-point fit ({short}): held-out error, 1.4B "
                  f"at M={m_1b[short]} [%]", f"{one_b} %", source[short], one_b,
                  max(0.05, 0.05 * one_b)),
        ClaimSpec(f"gadre_{short}_7b", f"Gadre 5-point fit ({short}): held-out error, 6.9B "
                  "at M=20 [%]", f"{seven_b} %", source[short], seven_b,
                  max(0.05, 0.05 * seven_b))))


def measure(cube, fits) -> dict[str, Measured]:
    gadre = fits["gadre"].to_dataset()
    out = {}
    for short, _, _ in ERRORS:
        row = gadre.sel(training_data=short)
        out[f"gadre_{short}_1b"] = Measured(100 * float(row["rel_error_1b"]))
        out[f"gadre_{short}_7b"] = Measured(100 * float(row["rel_error_7b"]))
    return out
