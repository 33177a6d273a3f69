"""Your own runs: a table (or a folder of tables) of finished runs, mapped by the config, through
the same fit → figures → claims → report stages as every study. Nothing is trained.

A config section (every key is documented in workflow/schemas/config.schema.yaml)::

    my_runs:
      kind: runs
      data: runs.csv                       # a file (CSV, TSV, parquet, JSONL, W&B export) or a folder
      columns: {N: params, D: tokens, target: loss, run: name, step: step}
      counting: {N: "non-embedding parameters", D: "tokens seen", C: "6·N·D"}
      law: chinchilla
      expectations:
        - {id: a_half, quantity: a, between: [0.45, 0.55], statement: "N_opt ∝ C^a with a ≈ 0.5"}

Expectations are the user's claims, judged with the four verdicts: the fit must be identified,
converged and off its bounds (premises), and the bootstrap CI decides pass, fail or
inconclusive.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured, Premise
from scaling_atlas.cubes import describe_variables
from scaling_atlas.studies.runs import figures
from scaling_atlas.studies.base import NoTrainingStudy

#: long name and unit of the variables the study knows; any other law variable needs its unit
#: in the config (``units``)
KNOWN = {"N": ("model parameters", "1"), "D": ("training tokens", "token"),
         "C": ("training compute", "FLOP")}


class RunsStudy(NoTrainingStudy):
    kind = "runs"
    title = "Your own runs (a law fitted to a table of finished runs)"
    fit_threads = 2

    def __init__(self, name: str, section: dict, config: dict):
        super().__init__(name, section, config)
        from scaling_atlas.laws import get_form

        self._table_cache = None
        # the captions name the user's file; the frontier needs a law with an allocation
        self.figures = {"fit": self.figures["fit"].format(data=section.get("data"))}
        try:
            form = get_form(section.get("law", "chinchilla"))
        except ValueError:
            return  # validate() names the problem
        if form.has_allocation and not section.get("columns", {}).get("group"):
            self.figures["frontier"] = type(self).figures["frontier"]

    # ---- config ----------------------------------------------------------------------------------
    @property
    def form(self):
        from scaling_atlas.laws import get_form

        return get_form(self.settings["law"])

    def columns(self) -> dict[str, str | None]:
        columns = {"target": "loss", "run": None, "step": None, "group": None, "C": None}
        columns.update({v: v for v in self.form.variables})
        columns.update(self.settings["columns"])
        if "D" in self.form.variables and "D" not in self.settings["columns"] and columns["C"]:
            columns["D"] = None  # D = C/(6N)
        return columns

    def _derived(self):
        from scaling_atlas.laws import chinchilla_derived

        if self.columns()["group"] or not self.form.has_allocation:
            return None
        return chinchilla_derived(self.settings["budgets"])

    def quantity_names(self) -> list[str]:
        """What an expectation may name: the law's parameters, derived quantities and, with
        groups, the compute multiplier of each group over the reference."""
        form = self.form
        columns = self.columns()
        if columns["group"]:
            labels = sorted(self._table()[columns["group"]].astype(str).unique())
            from scaling_atlas.laws import GroupedForm

            grouped = GroupedForm(form, labels, self.settings["shared"])
            names = list(grouped.natural(np.zeros((1, len(grouped.params)))))
            reference = self._reference(labels)
            names += [f"multiplier[{g}]@{c:.3g}".replace("+", "") for g in labels
                      if g != reference for c in self.settings["budgets"]]
            return names
        natural = form.natural(np.zeros((1, len(form.params))))
        names = list(natural)
        derived = self._derived()
        if derived is not None:
            with np.errstate(all="ignore"):
                names += list(derived({k: np.array([1.0]) for k in natural}))
        return names

    def _reference(self, labels):
        return self.settings["reference_group"] if self.settings["reference_group"] else labels[0]

    def validate(self) -> list[str]:
        """The data are read and checked before any job: the file, each mapped column, the
        values (as the fit will see them), the units and every expectation's quantity."""
        from scaling_atlas.laws import FitDataError, LawFit
        from scaling_atlas.tables import InputError

        try:
            form = self.form
        except ValueError as error:
            return [f"law: {error}"]
        problems = []
        for variable in form.variables:
            if variable not in KNOWN and variable not in self.settings["units"]:
                problems.append(f"units.{variable}: give the unit of law variable "
                                f"{variable!r} (e.g. units: {{{variable}: step}})")
        try:
            table = self._table()
        except InputError as error:
            return problems + [f"data: {error}"]
        except KeyError as error:
            return problems + [f"columns: {error.args[0]}"]
        columns = self.columns()
        if columns["group"]:
            labels = table[columns["group"]].astype(str).unique()
            if len(labels) < 2:
                problems.append(f"columns.group: column {columns['group']!r} has one value "
                                f"({labels[0]!r}); a grouped fit needs at least 2")
            elif self.settings["reference_group"] and self.settings["reference_group"] not in labels:
                problems.append(f"reference_group: {self.settings['reference_group']!r} is not "
                                f"a value of column {columns['group']!r} ({', '.join(labels)})")
        # checked as the fit will see them, under the file's column names
        names = {v: columns.get(v) or v for v in form.variables}
        if "D" in names and columns.get("D") is None and columns["C"]:
            names["D"] = f"{columns['C']}/(6·{columns['N']})"
        check = table[list(form.variables)].rename(columns=names)
        target = table["__target__"].rename(columns["target"])
        try:
            LawFit(form, nan_policy=self.settings["nan_policy"])._prepare(check, target, columns=names)
        except FitDataError as error:
            problems.append(f"data: {self.settings['data']}: {error}")
        if problems:
            return problems
        names = self.quantity_names()
        for i, expectation in enumerate(self.settings["expectations"]):
            low, high = expectation["between"]
            if not low < high:
                problems.append(f"expectations[{i}].between: [{low}, {high}] is empty")
            if expectation["quantity"] not in names:
                problems.append(f"expectations[{i}].quantity: {expectation['quantity']!r} "
                                f"is not a quantity of this fit ({', '.join(names)})")
        ids = [e["id"] for e in self.settings["expectations"]]
        if len(set(ids)) < len(ids):
            problems.append(f"expectations: ids repeat ({', '.join(ids)})")
        for i, point in enumerate(self.settings["predict_at"]):
            allowed = [{"C"}, set(form.variables)] if form.has_allocation else [set(form.variables)]
            if set(point) not in allowed:
                problems.append(f"predict_at[{i}]: give " + " or ".join(
                    ", ".join(sorted(a)) for a in allowed) + f" (got {', '.join(point) or 'nothing'})")
        return problems

    # ---- the table -------------------------------------------------------------------------------
    def _table(self) -> pd.DataFrame:
        """The mapped runs: one row per run (its last step, when a step column is mapped), the
        law's variables under their own names, ``__target__``, ``C`` and the group/run labels."""
        if self._table_cache is not None:
            return self._table_cache
        from scaling_atlas.tables import read_runs

        raw = read_runs(self.settings["data"], self.settings["format"])
        columns = self.columns()
        file_columns = ", ".join(map(repr, map(str, raw.columns)))
        for key, column in columns.items():
            if column is not None and column not in raw:
                raise KeyError(f"{key}: no column {column!r} in {self.settings['data']} (it has "
                               f"{file_columns})")
        if columns["run"] is None and "run" in raw and Path(self.settings["data"]).is_dir():
            columns["run"] = "run"
        if columns["step"] is not None and self.settings["last_step_only"]:
            if columns["run"] is None:
                raise KeyError(f"step: a step column ({columns['step']!r}) needs a run column "
                               "(columns.run) to find each run's last step")
            steps = pd.to_numeric(raw[columns["step"]], errors="coerce")
            last = steps.groupby(raw[columns["run"]].astype(str)).transform("max")
            raw = raw[steps == last]
        table = pd.DataFrame(index=raw.index)
        form = self.form
        for variable in form.variables:
            if variable == "D" and columns["D"] is None:
                continue
            table[variable] = raw[columns[variable]]
        if "D" in form.variables and "D" not in table:
            table["D"] = (pd.to_numeric(raw[columns["C"]], errors="coerce")
                          / (6 * pd.to_numeric(raw[columns["N"]], errors="coerce")))
        table["__target__"] = raw[columns["target"]]
        if columns["C"]:
            table["C"] = raw[columns["C"]]
        elif {"N", "D"} <= set(table):
            table["C"] = (6 * pd.to_numeric(table["N"], errors="coerce")
                          * pd.to_numeric(table["D"], errors="coerce"))
        for key in ("group", "run"):
            if columns[key]:
                table[columns[key]] = raw[columns[key]].astype(str)
        self._table_cache = table
        return table

    def datasets(self) -> list[str]:
        return ["runs"]

    def dataset_inputs(self, name: str) -> list[str]:
        """The user's file (or folder): a changed file reruns the study."""
        return [self.settings["data"]]

    def prepare_dataset(self, name: str, cache_dir: Path, log: Callable[[str], None] = print):
        if name != "runs":
            raise KeyError(f"study {self.name!r} has no dataset {name!r}")
        table = self._table()
        columns = self.columns()
        counting = self.settings["counting"]
        meta = {}
        for variable in [*self.form.variables, "C"]:
            if variable not in table:
                continue
            long_name, unit = KNOWN.get(variable, (f"law variable {variable}", None))
            unit = self.settings["units"].get(variable, unit)
            source = ("C/(6N)" if variable == "D" and columns["D"] is None else
                      "6·N·D" if variable == "C" and not columns["C"] else
                      f"column {columns.get(variable, variable)!r}")
            meta[variable] = (f"{long_name} ({counting.get(variable, 'as counted in the file')}; "
                              f"{source})", unit)
        meta["target"] = (f"{self.settings['target_name']} (column {columns['target']!r})",
                          self.settings["units"].get("target", "nat/token"))
        meta["source_row"] = ("where the row is in the data (line, or file:line)", "1")
        ds = xr.Dataset(coords={"row": np.arange(len(table))})
        for variable in meta:
            if variable == "target":
                values = pd.to_numeric(table["__target__"], errors="coerce").to_numpy(float)
            elif variable == "source_row":
                values = np.array([str(i) for i in table.index])
            else:
                values = pd.to_numeric(table[variable], errors="coerce").to_numpy(float)
            ds[variable] = ("row", values)
        for key in ("group", "run"):
            if columns[key]:
                ds[key] = ("row", table[columns[key]].to_numpy(str))
                meta[key] = (f"{key} label (column {columns[key]!r})", "1")
        meta["row"] = ("run in the table", "1")
        ds.attrs.update(source=str(self.settings["data"]), law=self.settings["law"],
                        last_step_only=int(bool(columns["step"] and self.settings["last_step_only"])))
        log(f"{len(table)} rows from {self.settings['data']}")
        return describe_variables(ds, meta)

    def assemble(self, shard_results, datasets=None) -> xr.Dataset:
        if set(datasets or {}) != {"runs"}:
            raise ValueError(f"expected the dataset 'runs', got {sorted(datasets or {})}")
        return datasets["runs"]

    # ---- fits ------------------------------------------------------------------------------------
    def points(self, cube) -> pd.DataFrame:
        frame = pd.DataFrame({v: cube[v].values for v in self.form.variables})
        frame["target"] = cube["target"].values
        if "C" in cube:
            frame["C"] = cube["C"].values
        for key in ("group", "run"):
            if key in cube:
                frame[key] = cube[key].values.astype(str)
        frame.index = cube["source_row"].values.astype(str)
        return frame

    def _objective(self):
        from scaling_atlas.laws import Objective

        o = self.settings["objective"]
        return Objective(o["loss"], o["delta"], o["space"], "sum", o["overestimate_weight"])

    def fit_laws(self, cube, n_jobs: int | None = None) -> xr.DataTree:
        from scaling_atlas.laws import (
            FitWarning,
            LawFit,
            crossover_compute,
            effective_multiplier,
            fit_shared,
        )

        points = self.points(cube)
        cfg = self.settings
        bookkeeping = {k: str(v) for k, v in cfg["counting"].items()}
        bookkeeping["source"] = str(cfg["data"])
        n_jobs = cfg["n_jobs"] or n_jobs
        groups = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitWarning)
            if "group" in points:
                fit = fit_shared(points, points["target"], group="group", form=cfg["law"],
                                 shared=tuple(cfg["shared"]), objective=self._objective(),
                                 nan_policy=cfg["nan_policy"], bookkeeping=bookkeeping)
            else:
                fit = LawFit(cfg["law"], self._objective(), nan_policy=cfg["nan_policy"],
                             bookkeeping=bookkeeping, derived=self._derived())
                fit.fit(points, points["target"],
                        groups=points["run"].to_numpy() if "run" in points else None)
            if cfg["bootstrap_resamples"]:
                fit.bootstrap(cfg["bootstrap_resamples"], seed=cfg["bootstrap_seed"], n_jobs=n_jobs)
        law = fit.to_dataset()
        law.attrs["warnings_during_fit"] = "; ".join(str(w.message) for w in caught) or "none"
        groups["law"] = law
        if "group" in points and cfg["bootstrap_resamples"]:
            labels = list(fit.law_form.labels)
            reference = self._reference(sorted(labels))
            rows = []
            for other in labels:
                if other == reference:
                    continue
                for c in cfg["budgets"]:
                    m = effective_multiplier(fit, reference, other, C=c)
                    rows.append({"quantity": f"multiplier[{other}]@{c:.3g}".replace("+", ""),
                                 "estimate": m["estimate"], "ci_low": m["ci_low"],
                                 "ci_high": m["ci_high"]})
                cross = crossover_compute(fit, reference, other)
                rows.append({"quantity": f"crossover[{other}]", "estimate": cross["estimate"],
                             "ci_low": cross["ci_low"], "ci_high": cross["ci_high"]})
            table = pd.DataFrame(rows)
            mult = xr.Dataset({k: ("quantity", table[k].to_numpy(float))
                               for k in ("estimate", "ci_low", "ci_high")},
                              coords={"quantity": table["quantity"].to_numpy(str)})
            mult.attrs.update(reference_group=reference, definition=(
                "multiplier[g]@C: compute the reference group needs to reach group g's "
                "compute-optimal loss at C, divided by C (> 1: g is worth that many times the "
                "compute); crossover[g]: the compute where the two frontiers meet (NaN: none in "
                "1e15–1e30 FLOP)"))
            groups["multipliers"] = describe_variables(mult, {
                "quantity": ("comparison of a group with the reference", "1"),
                "estimate": ("value at the best fit", "1"),
                "ci_low": ("lower end of the 95 % bootstrap CI", "1"),
                "ci_high": ("upper end of the 95 % bootstrap CI", "1")})
        if cfg["predict_at"] and cfg["bootstrap_resamples"]:
            groups["predictions"] = self._predictions(fit)
        return xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})

    def _predictions(self, fit) -> xr.Dataset:
        frames = []
        for point in self.settings["predict_at"]:
            if set(point) == {"C"}:
                table = fit.predict_interval(C=[float(point["C"])])
            else:
                table = fit.predict_interval({k: [float(v)] for k, v in point.items()})
            table["at"] = ", ".join(f"{k}={float(v):.4g}" for k, v in point.items())
            frames.append(table)
        table = pd.concat(frames, ignore_index=True)
        ds = xr.Dataset(coords={"at": table["at"].to_numpy(str)})
        unit = self.settings["units"].get("target", "nat/token")
        meta = {"at": ("where the law is evaluated", "1"),
                "prediction": ("predicted target at the best fit", unit),
                "low": ("lower end of the prediction interval (bootstrap + residual scatter)", unit),
                "high": ("upper end of the prediction interval", unit),
                "param_low": ("lower end from the parameter bootstrap alone", unit),
                "param_high": ("upper end from the parameter bootstrap alone", unit)}
        for k in ("prediction", "low", "high", "param_low", "param_high"):
            ds[k] = ("at", table[k].to_numpy(float))
        for k in ("C", "N", "D"):
            if k in table:
                ds[k] = ("at", table[k].to_numpy(float))
                meta[k] = (KNOWN[k][0] + " (compute-optimal where only C is given)", KNOWN[k][1])
        ds.attrs.update(level=table.attrs.get("level", 0.95), noise=table.attrs.get("noise", ""))
        return describe_variables(ds, meta)

    # ---- claims ----------------------------------------------------------------------------------
    def _values(self, fits) -> dict[str, tuple[float, float, float]]:
        law = fits["law"].to_dataset()
        values = {}
        for var, low, high, dim in (("estimate", "ci_low", "ci_high", "parameter"),
                                    ("derived", "derived_ci_low", "derived_ci_high", "quantity")):
            if var not in law:
                continue
            for i, name in enumerate(law[dim].values.astype(str)):
                values[name] = (float(law[var].values[i]),
                                float(law[low].values[i]) if low in law else math.nan,
                                float(law[high].values[i]) if high in law else math.nan)
        if "multipliers" in fits:
            mult = fits["multipliers"].to_dataset()
            for i, name in enumerate(mult["quantity"].values.astype(str)):
                values[name] = tuple(float(mult[k].values[i]) for k in ("estimate", "ci_low", "ci_high"))
        return values

    FIGURES = figures.FIGURES

    def claim_specs(self, cube) -> tuple[ClaimSpec, ...]:
        """The user's expectations (settings ``expectations``): a quantity between two values."""
        return tuple(
            ClaimSpec(e["id"], e.get("statement") or f"{e['quantity']} between {low} and {high}",
                      f"between {low:g} and {high:g}", "user expectation", (low + high) / 2,
                      (high - low) / 2)
            for e in self.settings["expectations"] for low, high in [e["between"]])

    def measure(self, cube, fits) -> dict[str, Measured]:
        attrs = fits["law"].to_dataset().attrs
        premises = (
            Premise("the fit is identified", bool(int(attrs.get("identified", 1))),
                    f"condition number {float(attrs.get('condition_number', math.nan)):.3g}; "
                    f"distinct values {attrs.get('distinct_values', '?')}"),
            Premise("the optimiser converged", bool(int(attrs.get("converged", 1)))),
            Premise("no fitted parameter at a bound", attrs.get("parameters_at_bound", "none") == "none",
                    f"at a bound: {attrs.get('parameters_at_bound', 'none')}"),
        )
        values = self._values(fits)
        out = {}
        for expectation in self.settings["expectations"]:
            value, ci_low, ci_high = values.get(expectation["quantity"], (math.nan,) * 3)
            out[expectation["id"]] = Measured(
                value, f"{expectation['quantity']} of the {self.settings['law']} fit to {self.settings['data']}",
                ci=(ci_low, ci_high), premises=premises)
        return out
