"""The study interface: everything the workflow needs to know about one study.

The rules and the Snakefile only ever call these methods, with the study instance's name as the
``{study}`` wildcard; nothing study-specific lives in the workflow. A new study is one module
subclassing :class:`Study` (or :class:`TrainingStudy`), registered in
``scaling_atlas.studies.KINDS``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Hashable

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from scaling_atlas.claims import Claim, ClaimSpec, Measured, score
from scaling_atlas.provenance import provenance
from scaling_atlas.runs import Run, group_into_shards

if TYPE_CHECKING:  # annotations only: the analysis jobs need not import torch
    import torch


#: a study's metadata table: variable or coordinate name → (long_name, units)
Variables = dict[str, tuple[str, str]]
#: a figure's declaration: its caption and the function that draws it, ``draw(study, cube, fits)``
FigureSpec = tuple[str, Callable[..., Figure]]


class Study(ABC):
    """One study instance: a kind (the module) plus its validated config section.

    A study declares data and writes its science:

    * ``VARIABLES``: name → (long_name, units) of every variable and coordinate its cube and
      fits hold; :meth:`describe` sets them and refuses a name the table lacks. A long name may
      cite the study's settings by key (``"over t ≥ {tail_from}·T"``).
    * ``CLAIMS``: the paper's claims as :class:`~scaling_atlas.claims.ClaimSpec` rows, and one
      method :meth:`measure` that returns our number for each; :meth:`claims` scores them.
    * ``FIGURES``: name → (caption, draw); ``draw(study, cube, fits)`` returns the figure.
    """

    kind: ClassVar[str]
    title: ClassVar[str]
    VARIABLES: ClassVar[Variables | None] = None
    CLAIMS: ClassVar[tuple[ClaimSpec, ...]] = ()
    FIGURES: ClassVar[dict[str, FigureSpec]] = {}
    #: figure name → caption (from ``FIGURES``; a study may narrow it to what its settings draw)
    figures: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "FIGURES" in cls.__dict__:
            cls.figures = {name: caption for name, (caption, _) in cls.FIGURES.items()}

    def __init__(self, name: str, section: dict, config: dict):
        self.name = name
        self.settings = section
        self.workflow_config = config

    # ---- config ------------------------------------------------------------------------------
    @property
    def preset(self) -> str:
        return self.workflow_config.get("preset", "custom")

    def validate(self) -> list[str]:
        """Cross-key problems the schema cannot express, as ``key: problem (rule: …)`` lines."""
        return []

    # ---- grid ----------------------------------------------------------------------------------
    @abstractmethod
    def runs(self) -> list[Run]:
        """Every run of the grid, each with a stable id from its scientific parameters."""

    @abstractmethod
    def run_count(self) -> int:
        """How many runs ``runs()`` would return, counted without expanding the grid (config
        validation refuses a grid above ``max_runs`` before anything is built)."""

    @abstractmethod
    def shape_key(self, run: Run) -> Hashable:
        """Runs with equal keys can train together in one batched program."""

    def shard_label(self, run: Run) -> str:
        return "shard"

    def shards(self) -> dict[str, list[Run]]:
        return group_into_shards(
            self.runs(), self.shape_key, self.shard_label, self.settings.get("max_runs_per_shard", 8)
        )

    def tuning_shards(self) -> list[str]:
        """Shards whose results set a choice the other shards train with (e.g. a per-size LR
        sweep); rule choose_lr reads them. None by default."""
        return []

    def shard_inputs(self, shard: str) -> list[str]:
        """Files besides the corpus that a shard's training reads (made by earlier jobs)."""
        return []

    def manifest(self) -> pd.DataFrame:
        """One row per run: id, shard and parameters (the data-preparation product)."""
        rows = [
            {"run_id": run.run_id, "shard": shard, **run.params}
            for shard, runs in self.shards().items()
            for run in runs
        ]
        return pd.DataFrame(rows, columns=None if rows else ["run_id", "shard"])

    # ---- data ----------------------------------------------------------------------------------
    #: True for studies that train on a prepared token corpus (rule prepare_corpus)
    has_corpus: ClassVar[bool] = False

    def corpus_fingerprint(self) -> str:
        """What the prepared corpus depends on: its config and the tokens the grid needs."""
        return ""

    def datasets(self) -> list[str]:
        """Names of external datasets the study reads (each prepared by one data job)."""
        return []

    def dataset_inputs(self, name: str) -> list[str]:
        """Local files a dataset is read from (inputs of its data job); none by default."""
        return []

    def prepare_dataset(self, name: str, cache_dir: Path, log: Callable[[str], None]) -> xr.Dataset:
        """Obtain (download, verify) and tidy one dataset into a Dataset with units."""
        raise KeyError(f"study {self.name!r} has no dataset {name!r}")

    # ---- training ------------------------------------------------------------------------------
    @abstractmethod
    def train_shard(
        self, runs: list[Run], device: torch.device, ckpt_dir: Path, batching: str,
        log: Callable[[str], None],
    ) -> xr.Dataset:
        """Train the runs of one shard; return per-run results along a ``run`` dim."""

    # ---- analysis ------------------------------------------------------------------------------
    @abstractmethod
    def assemble(self, shard_results: list[xr.Dataset],
                 datasets: dict[str, xr.Dataset] | None = None) -> xr.Dataset | xr.DataTree:
        """Combine shard results (and prepared datasets) into the study's cube (named dims,
        units, long names); a DataTree when the study holds several unrelated tables."""

    @abstractmethod
    def fit_laws(self, cube: xr.Dataset | xr.DataTree, n_jobs: int | None = None) -> xr.Dataset | xr.DataTree:
        """The study's law fits, as a Dataset (or a DataTree with one group per fit).

        ``n_jobs``: worker processes for resampling and per-family fits (the fit job's threads);
        a study's own ``n_jobs`` key wins; None lets each fit use every available core."""

    def variables(self) -> Variables:
        """The study's metadata table: ``VARIABLES``, plus names that follow the settings (a
        quantity per configured budget, say) for a study that needs them."""
        return self.VARIABLES or {}

    def describe(self, ds: xr.Dataset | xr.DataTree, group: str = "") -> xr.Dataset | xr.DataTree:
        """Set ``long_name`` and ``units`` of every variable and coordinate from ``VARIABLES``
        (in place, and returned). A name the table lacks is an error: nothing is defaulted.

        ``"group/name"`` describes a name of one group of a tree (where groups use a name
        differently), or of a Dataset described as ``group`` (the fits, say, where they use a
        cube's name for another quantity); it wins over a plain ``"name"``. Long names are
        formatted with the study's settings and, for names the settings lack, the group's own
        attributes (``{tail_from}``, ``{objective_space}``), so a literal brace is written twice.
        """
        tree = isinstance(ds, xr.DataTree)
        nodes = ([("/".join(filter(None, (group, node.path.strip("/")))),
                   node.to_dataset(inherit=False)) for node in ds.subtree]
                 if tree else [(group, ds)])
        table = self.variables()

        def entry(group: str, name) -> tuple[str, str] | None:
            return table.get(f"{group}/{name}") or table.get(name)

        missing = sorted({f"{group}/{name}" if group else str(name)
                          for group, node in nodes for name in node.variables
                          if entry(group, name) is None})
        if missing:
            raise ValueError(f"study kind {self.kind!r}: {', '.join(missing)} not described in "
                             "its VARIABLES table (long_name, units)")
        settings = {**self.settings, "preset": self.preset}
        for group, node in nodes:
            for name in node.variables:
                long_name, units = entry(group, name)
                fields = {**node.attrs, **settings}  # the settings win over a string copy
                node[name].attrs.update(long_name=long_name.format_map(fields), units=units)
        if tree:
            for node, (_, described) in zip(ds.subtree, nodes):
                node.dataset = described
        return ds

    def draw_figure(self, name: str, cube: xr.Dataset, fits: xr.Dataset) -> Figure:
        if name not in self.figures:
            raise KeyError(f"study {self.name!r} has no figure {name!r}")
        return self.FIGURES[name][1](self, cube, fits)

    def claim_specs(self, cube: xr.Dataset) -> tuple[ClaimSpec, ...]:
        """The claims this study instance tests: ``CLAIMS``, or rows generated from the
        settings by a study whose claims follow its grid (one per data exponent, say) or whose
        target is a known property of its data (a corpus's exact entropy rate)."""
        return self.CLAIMS

    def claim_deviations(self, cube: xr.Dataset) -> str:
        """Where our protocol departs from the paper's, shared by every claim of the study."""
        return ""

    def measure(self, cube: xr.Dataset, fits: xr.Dataset) -> dict[str, Measured]:
        """Our value for each claim of ``CLAIMS`` the data hold (claim id → Measured)."""
        raise NotImplementedError(f"study kind {self.kind!r} measures no claims")

    def claims(self, cube: xr.Dataset, fits: xr.Dataset) -> list[Claim]:
        """The paper's claims with our values, tolerances and verdicts: ``CLAIMS`` scored on
        :meth:`measure`'s values."""
        return score(self.claim_specs(cube), self.measure(cube, fits), self.preset,
                     self.claim_deviations(cube))

    #: per-run results that must be finite in a shard unless the run is marked diverged
    #: (assembly refuses a shard that breaks this; see ``cubes.shard_problems``)
    finite_results: ClassVar[tuple[str, ...]] = ()
    #: planned parameters a shard stores as measured (e.g. tokens actually seen, rounded up to
    #: whole steps), so not compared with the manifest
    measured_in_shard: ClassVar[tuple[str, ...]] = ()

    #: cores of the fit_laws job (bootstrap workers)
    fit_threads: ClassVar[int] = 2

    #: numeric type of the study's arithmetic (recorded in every file it writes)
    compute_dtype: ClassVar[str] = "float32"

    def provenance(self, device: str = "", job: dict | None = None) -> dict[str, str]:
        seeds = sorted({run.params.get("seed") for run in self.runs()})
        workflow_config = {k: v for k, v in self.workflow_config.items() if k != "studies"}
        return provenance(self.settings, self.preset, device=device, seeds=seeds,
                          dtype=self.compute_dtype, workflow_config=workflow_config, job=job)


class TrainingStudy(Study):
    """A study whose grid is the product of lists in its settings, one run per grid point.

    Declare ``GRID`` (grid dim → the settings key that lists its values) and write
    :meth:`train_run` (one run's results, by name); the runs, their ids, the shards and the
    cube (the results on the grid, described by ``VARIABLES``) follow. A study whose runs
    share a batched program or need more than a function of their parameters overrides
    :meth:`train_shard` and :meth:`assemble`.
    """

    #: grid dim → settings key listing its values (the grid is their product)
    GRID: ClassVar[dict[str, str]] = {}

    def grid_points(self) -> list[dict]:
        dims = list(self.GRID)
        return [dict(zip(dims, values))
                for values in itertools.product(*(self.settings[self.GRID[d]] for d in dims))]

    def run_params(self) -> dict:
        """What every run shares: the settings that are not grid lists (hashed into run ids)."""
        return {key: value for key, value in self.settings.items()
                if key not in self.GRID.values() and key not in ("kind", "max_runs_per_shard")}

    def runs(self) -> list[Run]:
        shared = {**self.run_params(), "seed_salt": self.workflow_config.get("seed_salt", 0)}
        return [Run.from_params({**point, **shared}) for point in self.grid_points()]

    def run_count(self) -> int:
        return math.prod(len(self.settings[key]) for key in self.GRID.values())

    def shape_key(self, run: Run) -> Hashable:
        return ()

    @abstractmethod
    def train_run(self, run: Run, log: Callable[[str], None]) -> dict[str, float]:
        """One run's results: name → number (each described in ``VARIABLES``)."""

    def train_shard(self, runs, device, ckpt_dir, batching, log) -> xr.Dataset:
        rows = [{"run": run.run_id, **{d: run[d] for d in self.GRID}, **self.train_run(run, log)}
                for run in runs]
        return xr.Dataset.from_dataframe(pd.DataFrame(rows).set_index("run"))

    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        """The shards' per-run results placed on the grid (``GRID``'s dims), described."""
        from scaling_atlas.cubes import grid_from_records

        combined = xr.concat(shard_results, dim="run")
        table = combined.to_dataframe().reset_index(drop=True)
        results = [name for name in combined.data_vars if name not in self.GRID]
        cube = grid_from_records(table, dims=list(self.GRID), scalars=results)
        cube.attrs["title"] = self.title
        return self.describe(cube)


class NoTrainingStudy(Study):
    """A study that trains nothing (refits of published data, a user's finished runs): no grid,
    no shards; its data come from ``datasets()``."""

    compute_dtype: ClassVar[str] = "float64 (numpy)"

    def runs(self) -> list[Run]:
        return []

    def run_count(self) -> int:
        return 0

    def shape_key(self, run: Run) -> Hashable:  # pragma: no cover - no runs
        return ()

    def train_shard(self, runs, device, ckpt_dir, batching, log):  # pragma: no cover
        raise RuntimeError(f"study {self.name!r} ({self.kind}) trains nothing")

    def provenance(self, device: str = "", job: dict | None = None) -> dict[str, str]:
        return super().provenance(device or "none (no training)", job)


def group_for_device(runs: list[Run], device: torch.device, batching: str) -> list[list[Run]]:
    """How a shard's runs are trained: all at once (GPU) or one after another (CPU).

    On a CPU the toy step is memory-bound, so stacking models only adds traffic (benchmarks/);
    on a GPU one batched program keeps the device busy. ``batching`` overrides the choice.
    """
    batched = batching == "batched" or (batching == "auto" and device.type == "cuda")
    return [runs] if batched else [[run] for run in runs]
