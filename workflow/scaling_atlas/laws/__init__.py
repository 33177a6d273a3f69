"""The law-fitting engine, usable on its own from a notebook.

>>> from scaling_atlas.laws import LawFit, Objective, chinchilla_derived
>>> fit = LawFit("chinchilla").fit(df, df["loss"], columns={"N": "params", "D": "tokens"})
>>> fit.natural_, fit.objective_value_, fit.n_reached_best_
>>> fit.bootstrap(4000, seed=42, derived=chinchilla_derived([5.88e23])).to_dataset()

Forms (``forms.REGISTRY``): power_law, power_law_offset, broken_power_law, exponential,
task_law, chinchilla, chinchilla_tied, kaplan, lr_annealing (Tissue), multi_power (Luo).
"""

from scaling_atlas.laws.compute_optimal import (
    IsoFlopResult,
    chinchilla_derived,
    envelope_optima,
    fit_isoflop,
    isoflop_optima,
    optimal_allocation,
    weighted_power_law,
)
from scaling_atlas.laws.engine import FitDataError, FitWarning, LawFit
from scaling_atlas.laws.groups import (
    GroupedForm,
    crossover_compute,
    effective_multiplier,
    fit_shared,
)
from scaling_atlas.laws.forms import REGISTRY, LawForm, Param, get_form, grid, register_form
from scaling_atlas.laws.objectives import Objective
from scaling_atlas.laws.powerlaw import PowerLaw, fit_power_law_over
from scaling_atlas.laws.schedules import MultiPowerLawForm, lr_areas
from scaling_atlas.laws.validation import (
    compute_cut_score,
    holdout_score,
    interval_coverage,
    leave_largest_out,
    residual_summary,
)

__all__ = [
    "FitDataError", "FitWarning", "GroupedForm", "crossover_compute", "effective_multiplier",
    "fit_shared", "IsoFlopResult", "LawFit", "LawForm", "MultiPowerLawForm", "Objective", "Param",
    "PowerLaw", "REGISTRY", "chinchilla_derived", "compute_cut_score", "envelope_optima",
    "fit_isoflop", "fit_power_law_over", "get_form", "grid", "holdout_score", "interval_coverage", "isoflop_optima",
    "leave_largest_out", "lr_areas", "optimal_allocation", "register_form",
    "residual_summary", "weighted_power_law",
]
