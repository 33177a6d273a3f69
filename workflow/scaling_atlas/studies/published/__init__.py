"""Literature refits: published scaling-law data refitted with our engine, no training.

Data (``shared/reference/fitting.md``): Epoch's reconstruction of Chinchilla's Approach-3 points
(Besiroglu et al. 2024), Porian et al.'s IsoFLOP points and optimal pairs (15 configurations),
Gadre et al.'s over-training models, and Luo et al.'s Multi-Power-Law loss curves. Each is
downloaded from its repository at a pinned commit and sha256-verified (``scaling_atlas.datasets``),
tidied into one group of the cube (a NetCDF with groups), refitted, drawn and scored against the
published numbers.

One module per paper (:mod:`.chinchilla`, :mod:`.porian`, :mod:`.gadre`, :mod:`.luo`), each with
its data, fits, figures and claims, and :mod:`.coverage`, the prediction-interval test over all of
them. This module only puts them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured
from scaling_atlas.datasets import obtain
from scaling_atlas.laws.compute_optimal import FRONTIER_VARIABLES
from scaling_atlas.laws.engine import LAWFIT_VARIABLES
from scaling_atlas.studies.base import NoTrainingStudy
from scaling_atlas.studies.published import chinchilla, coverage, gadre, luo, porian
from scaling_atlas.studies.published.coverage import coverage_table
from scaling_atlas.studies.published.luo import PUBLISHED as MPL_PUBLISHED
from scaling_atlas.studies.published.porian import EXPONENTS as PORIAN_EXPONENTS

__all__ = ["FILES", "MPL_PUBLISHED", "PORIAN_EXPONENTS", "PublishedStudy", "coverage_table"]

PAPERS = (chinchilla, porian, gadre, luo, coverage)
#: every published file the study reads (validate() checks that the mirror holds the ones it needs;
#: the other pinned files feed the scaling-data registry, not this study)
FILES = (chinchilla.FILE, porian.ISOFLOP_FILE, porian.OPTIMAL_FILE, gadre.FILE,
         coverage.MISFITTING_FILE, coverage.OPENATHENA_FILE, *luo.FILES)
#: every paper's figures, and their order in the report
PAPER_FIGURES = {name: spec for paper in PAPERS for name, spec in paper.FIGURES.items()}
FIGURE_ORDER = ("chinchilla_surface", "isoflop_curves", "frontier", "residuals", "fitting_choices",
                "prediction_coverage", "mpl_curves")
#: cube group → how it is prepared from the published files
DATASETS = {name: prepare for paper in PAPERS for name, prepare in paper.DATASETS.items()}


class PublishedStudy(NoTrainingStudy):
    kind = "published"
    title = "Literature refits (Chinchilla/Epoch, Porian, Gadre, Multi-Power Law)"
    # one core: its fit is mostly the MPL refit of 3 model sizes, which on 2 workers leaves one
    # idle for the third size; serially, and started first, the other core keeps training
    fit_threads = 1
    FIGURES = {name: PAPER_FIGURES[name] for name in FIGURE_ORDER}

    def __init__(self, name: str, section: dict, config: dict):
        super().__init__(name, section, config)
        if not section.get("coverage_resamples", 1):  # the table is skipped (ci preset)
            self.figures = {k: v for k, v in self.figures.items() if k != "prediction_coverage"}

    def variables(self):
        return {**LAWFIT_VARIABLES, **FRONTIER_VARIABLES,
                **{k: v for paper in PAPERS for k, v in paper.VARIABLES.items()},
                **chinchilla.derived_variables(self.settings["budgets"])}

    def validate(self) -> list[str]:
        """The mirror folder must be there before any job: the reshaped Porian and Gadre tables
        come only from it, and with ``source: mirror`` every file does."""
        from scaling_atlas.datasets import is_verbatim

        cfg = self.settings
        mirror = cfg["mirror_dir"]
        needed = sorted(name for name in FILES if cfg["source"] == "mirror" or not is_verbatim(name))
        if not needed:
            return []
        if not mirror:
            return [f"mirror_dir: null, but {', '.join(needed)} can only come from a mirror "
                    "folder (rule: mirror needed)"]
        if not Path(mirror).is_dir():
            return [f"mirror_dir: {mirror} does not exist (from {Path.cwd()}); point it at a copy "
                    "of shared/data/published (rule: mirror needed)"]
        absent = [name for name in needed if not (Path(mirror) / name).is_file()]
        if absent:
            return [f"mirror_dir: {mirror} lacks {', '.join(absent)} (rule: mirror needed)"]
        return []

    # ---- data ----------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return list(DATASETS)

    def prepare_dataset(self, name: str, cache_dir: Path, log: Callable[[str], None] = print):
        cfg = self.settings

        def fetch(file: str) -> Path:
            return obtain(file, cfg["source"], cfg["mirror_dir"], Path(cache_dir), cfg["url_base"], log)

        return DATASETS[name](fetch)

    def assemble(self, shard_results, datasets=None) -> xr.DataTree:
        if set(datasets or {}) != set(self.datasets()):
            raise ValueError(f"expected datasets {self.datasets()}, got {sorted(datasets or {})}")
        return xr.DataTree.from_dict({f"/{name}": ds for name, ds in datasets.items()})

    # ---- fits ----------------------------------------------------------------------------------
    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.DataTree:
        workers = self.settings["n_jobs"] or n_jobs
        group = {name: cube[name].to_dataset() for name in self.datasets()}
        groups = {
            **chinchilla.fit(group["chinchilla"], self.settings, workers),
            **porian.fit(group["porian_optimal"], group["porian_isoflop"], self.settings),
            **gadre.fit(group["gadre"]),
            **luo.fit(group["mpl"], self.settings, workers),
        }
        if self.settings["coverage_resamples"]:
            groups["prediction_coverage"] = coverage_table(
                self.coverage_data(cube), self.settings["coverage_resamples"],
                self.settings["bootstrap_seed"], workers)
        return self.describe(xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()}))

    def coverage_data(self, cube) -> dict[str, pd.DataFrame]:
        """(N, D, C, loss) of every published dataset the coverage table uses."""
        epoch = chinchilla.epoch_points(cube["chinchilla"].to_dataset(),
                                        self.settings["epoch_exclude_highest"])
        tuned = porian.tuned_rw(cube["porian_isoflop"].to_dataset().to_dataframe())
        data = {"Epoch (Chinchilla)": epoch.assign(C=6 * epoch["N"] * epoch["D"]),
                **gadre.coverage_data(cube["gadre"].to_dataset()),
                "Porian tuned RW": pd.DataFrame({"N": tuned["n_params"], "D": tuned["n_tokens"],
                                                 "C": tuned["flops"], "loss": tuned["loss"]}),
                **coverage.extra_data(cube)}
        return {k: v.reset_index(drop=True) for k, v in data.items()}

    # ---- claims --------------------------------------------------------------------------------
    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        """Every claim of the four papers, with the published (or recomputed) value and the
        accepted tolerance."""
        return (*chinchilla.CLAIMS, *porian.CLAIMS, *gadre.claim_specs(cube), *luo.CLAIMS)

    def measure(self, cube, fits) -> dict[str, Measured]:
        return {k: v for paper in (chinchilla, porian, gadre, luo)
                for k, v in paper.measure(cube, fits).items()}
