"""What the transformer studies share: the corpus, the width/depth family, training a shard.

A run is one model (width d, depth and heads from the family rule) trained on ``tokens``
tokens with one seed. A shard is a group of runs of one model shape, trained one after another
(each run is already one dense program; on a GPU a larger model fills the device by itself).
Subclasses declare the grid (:meth:`grid`) and may add per-run measurements
(:meth:`run_extras`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Hashable

import numpy as np
import pandas as pd
import xarray as xr

from scaling_atlas.claims import Premise
from scaling_atlas.corpus import grammar_spec, load_corpus
from scaling_atlas.corpus.text import corpus_problems
from scaling_atlas.cubes import grid_from_records
from scaling_atlas.models.shape import TransformerConfig, family_shape, parameter_counts
from scaling_atlas.hashing import stable_hash
from scaling_atlas.runs import Run
from scaling_atlas.studies import premises
from scaling_atlas.studies.base import Study
from scaling_atlas.train import lr_sweep
from scaling_atlas.train.lm_results import RUN_VARIABLES, history_curves, run_scalars
from scaling_atlas.train.spec import LMTrainSpec

if TYPE_CHECKING:  # annotations only: planning and analysis need no PyTorch
    import torch

#: training hyperparameters copied from the study config into every run (and so its id)
TRAIN_KEYS = ("batch_size", "lr", "schedule", "warmup_fraction", "warmup_min_steps", "final_lr_fraction",
              "decay_fraction", "weight_decay", "beta1", "beta2", "grad_clip", "grad_accum",
              "eval_points", "eval_tokens")


class TransformerFamilyStudy(Study):
    """Base of the studies that train the transformer family on a prepared corpus."""

    #: what every run reports (``train.lm_results``); subclasses add their own variables
    SCALAR_META = RUN_VARIABLES

    has_corpus = True
    finite_results = ("final_val_loss",)
    measured_in_shard = ("tokens",)  # tokens seen: whole steps of batch × seq_len
    supports_lr_sweep = True
    compute_dtype = "float32 (bf16 autocast on CUDA)"

    def __init__(self, name, section, config):
        super().__init__(name, section, config)
        self.corpus_dir = Path("results") / name / "corpus"

    # ---- model family ------------------------------------------------------------------------
    def model_config(self, width: int, vocab_size: int | None = None) -> TransformerConfig:
        fam = self.settings["family"]
        n_layer, n_head = family_shape(width, fam["aspect_ratio"], fam["head_dim"])
        n_layer = fam.get("n_layer") or n_layer
        return TransformerConfig(vocab_size=vocab_size or self.vocab_size(), d_model=width,
                                 n_layer=n_layer, n_head=n_head, seq_len=self.settings["seq_len"],
                                 positions=fam["positions"], tied_head=fam["tied_head"])

    def model_size(self, width: int) -> int:
        """N of a width (all parameters, embeddings included), computed once per width."""
        cache = self.__dict__.setdefault("_model_sizes", {})
        if width not in cache:
            cache[width] = parameter_counts(self.model_config(width))["total"]
        return cache[width]

    def embedding_share(self, width: int) -> float:
        """Share of a model's parameters in its token (and position) embeddings and an untied
        head: scaling laws describe the non-embedding part, so it must dominate."""
        counts = parameter_counts(self.model_config(width))
        return 1.0 - counts["non_embedding"] / counts["total"]

    def vocab_size(self) -> int:
        corpus = self.settings["corpus"]
        if corpus["source"] == "grammar":
            return grammar_spec(corpus).vocab_size
        if corpus["tokenizer"] == "bytes":
            return 257
        return corpus["vocab_size"]  # BPE: the trainer's target size (checked after training)

    def corpus_config(self) -> dict:
        """What the training tokens are made from (hashed into run ids and the corpus rule)."""
        return self.settings["corpus"]

    def validate(self) -> list[str]:
        problems = self.corpus_problems()
        if problems:  # the vocabulary, and so every model's size, depends on the corpus
            return problems
        fam = self.settings["family"]
        sweep = self.settings["lr_sweep"]
        if sweep and (len(set(sweep)) < 3 or len(set(sweep)) != len(sweep)):
            problems.append(f"lr_sweep: {sweep} needs at least 3 distinct peak LRs (log-spaced, e.g. "
                            "[0.003, 0.01, 0.03]), or none")
        if self.settings["lr_sweep_scope"] == "size" and not sweep:
            problems.append("lr_sweep_scope: size sweeps each width's LR, but lr_sweep is empty "
                            "(give ≥ 3 peak LRs, or use scope point)")
        if self.settings["lr_sweep_tokens_per_parameter"] and self.settings["lr_sweep_scope"] != "size":
            problems.append(f"lr_sweep_tokens_per_parameter: {self.settings['lr_sweep_tokens_per_parameter']:g} "
                            "sets the horizon of a per-size sweep; it needs lr_sweep_scope: size")
        if sweep and not self.supports_lr_sweep:
            problems.append(f"lr_sweep: not supported by the {self.kind} study yet (leave it empty)")
        if 0 < fam["n_layer"] < 2:
            problems.append(f"family.n_layer: {fam['n_layer']} layer; every model of the family needs "
                            "depth ≥ 2 (set 0 to use the aspect-ratio rule, which gives at least 2)")
        for i, width in enumerate(self.widths()):
            if width % fam["head_dim"]:
                problems.append(f"widths[{i}]: width {width} is not divisible by family.head_dim = "
                                f"{fam['head_dim']} (heads must split the width evenly)")
                continue
            share = self.embedding_share(width)
            if share > fam["max_embedding_share"]:
                problems.append(
                    f"widths[{i}]: width {width} puts {share:.0%} of the model's parameters in "
                    f"embeddings, above family.max_embedding_share = {fam['max_embedding_share']:.0%} "
                    f"(vocabulary {self.vocab_size()}): use a wider model, more layers or a "
                    "smaller vocabulary")
        if fam["positions"] == "rotary" and fam["head_dim"] % 2:
            problems.append(f"family.head_dim: rotary positions need an even head dimension, not "
                            f"{fam['head_dim']}")
        if self.settings["batch_size"] % self.settings["grad_accum"]:
            problems.append(f"grad_accum: batch_size = {self.settings['batch_size']} is not divisible by "
                            f"grad_accum = {self.settings['grad_accum']}")
        return problems

    def corpus_problems(self) -> list[str]:
        return corpus_problems(self.settings["corpus"])

    def widths(self) -> list[int]:
        return list(self.settings["widths"])

    # ---- grid ----------------------------------------------------------------------------------
    def grid(self) -> list[dict]:
        """The scientific axes of every run: at least width, tokens and seed (by default every
        width × seed at the study's ``tokens``)."""
        return [{"width": width, "tokens": self.settings["tokens"], "seed": seed}
                for width in self.settings["widths"] for seed in self.settings["seeds"]]

    def learning_rates(self) -> list[float]:
        """Peak LRs every grid point is trained with: the sweep, or the single ``lr``."""
        return sorted(self.settings["lr_sweep"]) or [self.settings["lr"]]

    @property
    def sweeps_lr(self) -> bool:
        return bool(self.settings["lr_sweep"])

    @property
    def sweeps_per_size(self) -> bool:
        """``lr_sweep_scope: size``: each width's LR is swept once, the choice reused."""
        return self.sweeps_lr and self.settings["lr_sweep_scope"] == "size"

    #: a sweep run at a shorter horizon (lr_sweep_tokens_per_parameter) still gets this many
    #: steps, unless the width's shortest grid point itself has fewer
    SWEEP_MIN_STEPS = 1000

    def sweep_plan(self) -> dict[int, tuple[dict, bool]]:
        """Per width (``lr_sweep_scope: size``): the point its LR is swept at and whether that
        point is a grid point (then the sweep's best run *is* that point's run: no rerun).

        The sweep point is the width's shortest grid point with the first seed; with
        ``lr_sweep_tokens_per_parameter`` r > 0 its horizon is cut to D = r·N tokens (at least
        ``SWEEP_MIN_STEPS`` steps, never longer than that grid point)."""
        first_seed = min(self.settings["seeds"])
        ratio = self.settings["lr_sweep_tokens_per_parameter"]
        per_step = self.settings["batch_size"] * self.settings["seq_len"]
        plan: dict[int, tuple[dict, bool]] = {}
        for point in self.grid():
            if point["seed"] != first_seed:
                continue
            known = plan.get(point["width"])
            if known is None or point["tokens"] < known[0]["tokens"]:
                plan[point["width"]] = (point, True)
        for width, (point, _) in plan.items():
            if ratio:
                horizon = max(math.ceil(ratio * self.model_size(width)),
                              self.SWEEP_MIN_STEPS * per_step)
                if horizon < point["tokens"]:
                    plan[width] = ({**point, "tokens": horizon}, False)
        return plan

    def runs(self) -> list[Run]:
        corpus_id = stable_hash(self.corpus_config())[:12]
        common = {key: self.settings[key] for key in TRAIN_KEYS}
        fam = self.settings["family"]

        def make(point: dict, lr: float | None, **extra) -> Run:
            model = self.model_config(point["width"])
            return Run.from_params({
                **point, "n_layer": model.n_layer, "n_head": model.n_head,
                "seq_len": model.seq_len, "positions": fam["positions"],
                "tied_head": fam["tied_head"], "corpus": corpus_id, **common, "lr": lr,
                "seed_salt": self.workflow_config.get("seed_salt", 0), **extra})

        if not self.sweeps_per_size:
            return [make(point, lr) for point in self.grid() for lr in self.learning_rates()]
        out, sweep_of, plan = [], {}, self.sweep_plan()
        for width, (point, _) in plan.items():
            sweep = [make(point, lr, lr_stage="sweep") for lr in self.learning_rates()]
            sweep_of[width] = stable_hash({"runs": [run.run_id for run in sweep]}, 12)
            out += sweep
        for point in self.grid():
            sweep_point, reused = plan[point["width"]]
            if not (reused and point == sweep_point):
                # lr None: the width's best LR of its sweep, read when the run starts; the id
                # holds the sweep's, so a new sweep gives new runs
                out.append(make(point, None, lr_stage="tuned", lr_sweep_runs=sweep_of[point["width"]]))
        return out

    def run_count(self) -> int:
        if not self.sweeps_per_size:
            return self.grid_size() * len(self.learning_rates())
        plan = self.sweep_plan()
        return (len(plan) * len(self.learning_rates()) + self.grid_size()
                - sum(reused for _, reused in plan.values()))

    def grid_size(self) -> int:
        """len(grid()), counted without building it."""
        return len(self.settings["widths"]) * len(self.settings["seeds"])

    # ---- the per-size LR choice (lr_sweep_scope: size) ----------------------------------------
    @property
    def lr_choice_path(self) -> Path:
        return Path("results") / self.name / "lr_choice.tsv"

    def tuning_shards(self) -> list[str]:
        """Shards whose results choose the LR of the others (the sweep runs)."""
        if not self.sweeps_per_size:
            return []
        return [name for name in self.shards() if name.startswith("sweep-")]

    def shard_inputs(self, shard: str) -> list[str]:
        """Files a shard's training reads besides the corpus: the per-size LR choice, for the
        shards of tuned runs (sweep shards are labelled ``sweep-…``, see :meth:`shard_label`)."""
        if not self.sweeps_per_size or shard.startswith("sweep-"):
            return []
        return [str(self.lr_choice_path)]

    sweep_table = staticmethod(lr_sweep.sweep_table)
    choose_size_lrs = staticmethod(lr_sweep.choose_size_lrs)
    choose_learning_rates = staticmethod(lr_sweep.choose_learning_rates)

    def chosen_lrs(self) -> dict[int, float]:
        """width → peak LR, as the choose_lr job wrote it (lr_choice.tsv)."""
        path = self.lr_choice_path
        if not path.exists():
            raise FileNotFoundError(f"{path}: the per-size LR choice is missing; the sweep's "
                                    "shards and rule choose_lr make it")
        table = pd.read_csv(path, sep="\t")
        return {int(w): float(lr) for w, lr in zip(table["width"], table["lr"])}

    def shape_key(self, run: Run) -> Hashable:
        return (run["width"], run["n_layer"], run.params.get("lr_stage", ""))

    def shard_label(self, run: Run) -> str:
        sweep = "sweep-" if run.params.get("lr_stage") == "sweep" else ""
        return f"{sweep}d{run['width']}-l{run['n_layer']}"

    def tokens_needed(self) -> int:
        """Training tokens of the largest run (what the corpus must hold)."""
        seq_len, batch = self.settings["seq_len"], self.settings["batch_size"]
        return max(math.ceil(run["tokens"] / (batch * seq_len)) * batch * seq_len
                   for run in self.runs())

    def corpus_fingerprint(self) -> str:
        return stable_hash({"corpus": self.corpus_config(), "tokens": self.tokens_needed(),
                            "seq_len": self.settings["seq_len"]})

    def prepare_corpus(self, out_dir, cache_dir, log) -> dict:
        from scaling_atlas.corpus import prepare_corpus

        cfg = dict(self.settings["corpus"], seq_len_margin=self.settings["seq_len"] + 1)
        return prepare_corpus(cfg, self.tokens_needed(), out_dir, cache_dir, log)

    # ---- training ------------------------------------------------------------------------------
    def train_spec(self, run: Run, device: torch.device, lr: float | None = None) -> LMTrainSpec:
        """The run's training settings; ``lr`` gives the peak LR of a tuned run (its planned
        ``lr`` is None: the width's sweep chooses it)."""
        compile_ = self.settings["compile"]
        keys = {key: run[key] for key in TRAIN_KEYS}
        if keys["lr"] is None:
            if lr is None:
                raise ValueError(f"run {run.run_id}: a tuned run needs its width's chosen LR")
            keys["lr"] = lr
        return LMTrainSpec(
            tokens=run["tokens"], seed=run["seed"] + 1000 * run["seed_salt"],
            allow_repeat=self.corpus_config().get("allow_repeat", False),
            compile=(compile_ == "auto" and device.type == "cuda") or compile_ is True,
            compile_mode=self.settings["compile_mode"],
            checkpoint_every=self.settings["checkpoint_every"],  # bookkeeping, not part of the run id
            **keys)

    def training_curve_dims(self) -> dict:
        """Curves measured during training besides the loss: name → (dims after ``point``,
        their coords)."""
        return {}

    def training_curves(self, run: Run, device: torch.device):
        """A function model → {name: array} measured at every validation point (the curves of
        :meth:`training_curve_dims`), or None."""
        return None

    def run_extras(self, run: Run, model, corpus_meta: dict) -> dict:
        """Extra per-run results: name → (dims after ``run``, values, coords)."""
        return {}

    def train_shard(self, runs, device, ckpt_dir: Path, batching: str, log) -> xr.Dataset:
        from scaling_atlas.train.lm import train_lm

        train, val, meta = load_corpus(self.corpus_dir)
        chosen = self.chosen_lrs() if any(run["lr"] is None for run in runs) else {}
        results = []
        for i, run in enumerate(runs):
            model_cfg = self.model_config(run["width"], meta["vocab_size"])
            spec = self.train_spec(run, device, chosen.get(run["width"]))
            if run["lr"] is None:
                log(f"run {run.run_id}: peak LR {spec.lr:g}, the best of width {run['width']}'s "
                    f"sweep ({self.lr_choice_path})")
            log(f"run {i + 1}/{len(runs)} {run.run_id}: width {run['width']}, {model_cfg.n_layer} "
                f"layers, {parameter_counts(model_cfg)['total']:,} parameters, "
                f"{spec.steps(model_cfg.seq_len)} steps")
            model, result = train_lm(model_cfg, spec, train, val, device,
                                     Path(ckpt_dir) / f"{run.run_id}.pt", log, label=run.run_id,
                                     on_eval=self.training_curves(run, device))
            extras = self.run_extras(run, model, meta)
            if result["status"] == "diverged":  # what a NaN model measures is not a measurement
                extras = {name: (dims, np.full(np.shape(values), np.nan), coords)
                          for name, (dims, values, coords) in extras.items()}
            results.append(self._run_dataset(run, model_cfg, result, extras, spec.lr))
        return xr.concat(results, dim="run")

    def _run_dataset(self, run, model_cfg, result, extras, peak_lr: float) -> xr.Dataset:
        hist = result["history"]
        data = {k: ("run", [v]) for k, v in run_scalars(model_cfg, result).items()}
        for key in self.axes():
            data[key] = ("run", [run[key]])
        # lr as planned (NaN for a tuned run: the manifest plans none); with a per-size sweep
        # also peak_lr as trained and whether the run belongs to the sweep (both leave the cube)
        data["lr"] = ("run", [math.nan if run["lr"] is None else float(run["lr"])])
        if self.sweeps_per_size:
            data["peak_lr"] = ("run", [float(peak_lr)])
            data["lr_sweep_run"] = ("run", [float(run.params.get("lr_stage") == "sweep")])
        points = self.settings["eval_points"] + 1
        batch_tokens = self.settings["batch_size"] * model_cfg.seq_len
        data.update({name: (("run", "point"), [values])
                     for name, values in history_curves(hist, points, batch_tokens).items()})
        coords = {"run": [run.run_id], "point": np.arange(points)}
        for name, (dims, extra_coords) in self.training_curve_dims().items():
            values = np.asarray(hist.get(name, []), float)
            shape = tuple(len(c) for c in extra_coords.values())
            padded = np.full((points, *shape), np.nan)
            padded[: len(values)] = values.reshape(len(values), *shape)
            data[name] = (("run", "point", *dims), [padded])
            coords.update(extra_coords)
        for name, (dims, values, extra_coords) in extras.items():
            data[name] = (("run", *dims), [values])
            coords.update(extra_coords)
        return xr.Dataset(data, coords=coords)

    def axes(self) -> list[str]:
        """The grid dims of the cube (besides ``point`` and extras)."""
        return ["width", "seed"]

    # ---- premises and the regime's rules (scaling_atlas.studies.premises) -----------------------
    plateau_premise = staticmethod(premises.plateau_premise)
    bound_premise = staticmethod(premises.bound_premise)
    lr_premise = staticmethod(premises.lr_premise)
    ladder_spacing = staticmethod(premises.ladder_spacing)

    def sweep_rule_problems(self, what: str = "size") -> list[str]:
        """The regime's LR rule: each size's peak LR from a sweep of ≥ 3 values."""
        if self.sweeps_lr:
            return []
        return [f"lr_sweep: empty; each {what}'s peak LR must come from a sweep of ≥ 3 values "
                "(rule: regime_checks)"]

    def rule_spectrum_exponent(self) -> float | None:
        """s of the grammar's rule-use spectrum (rank^(−s)); None for real text."""
        if self.settings["corpus"]["source"] != "grammar":
            return None
        return float(grammar_spec(self.settings["corpus"]).zipf_exponent)

    def set_by_construction_premise(self, quantity: str) -> Premise:
        """A property the synthetic generator sets is no finding (it holds by construction)."""
        synthetic = self.settings["corpus"]["source"] == "grammar"
        return Premise("not set by construction", not synthetic,
                       f"the grammar generator sets the {quantity}" if synthetic else
                       f"measured on {self.settings['corpus']['source']} text")


    # ---- cube ----------------------------------------------------------------------------------
    def cube_from_shards(self, shard_results, extra_meta: dict) -> xr.Dataset:
        combined = xr.concat(shard_results, dim="run")
        sweep = None
        if self.sweeps_per_size:
            combined, sweep = self._split_size_sweep(combined)
        combined = combined.drop_vars(["peak_lr", "lr_sweep_run"], errors="ignore")
        dims = self.axes() + (["lr"] if self.sweeps_lr and sweep is None else [])
        table = pd.DataFrame({name: combined[name].values for name in dims})
        scalar_names = [v for v in combined.data_vars
                        if combined[v].dims == ("run",) and v not in dims]
        for name in scalar_names:
            table[name] = combined[name].values
        arrays = {}
        for name in combined.data_vars:
            var = combined[name]
            if var.ndim == 2 and var.dims[0] == "run":
                table[name] = list(var.values)
                arrays[name] = (var.dims[1], combined[var.dims[1]].values)
        cube = grid_from_records(table, dims=dims, scalars=scalar_names, arrays=arrays)
        if sweep is not None:
            cube = cube.merge(sweep)
        elif self.sweeps_lr:
            cube = self.choose_learning_rates(cube)
        for name, (long_name, units) in {**RUN_VARIABLES, **extra_meta}.items():
            if name in cube.variables:
                cube[name].attrs.update(long_name=long_name, units=units)
        fam = self.settings["family"]
        corpus_meta = load_corpus(self.corpus_dir)[2] if (self.corpus_dir / "meta.json").exists() else {}
        cube.attrs.update(
            title=self.title, seq_len=self.settings["seq_len"], batch_size=self.settings["batch_size"],
            lr=self.settings["lr"], schedule=self.settings["schedule"],
            warmup_fraction=self.settings["warmup_fraction"],
            final_lr_fraction=self.settings["final_lr_fraction"],
            weight_decay=self.settings["weight_decay"],
            family=f"pre-LN decoder, d/L = {fam['aspect_ratio']}, head dim {fam['head_dim']}, "
                   f"{fam['positions']} positions, {'tied' if fam['tied_head'] else 'untied'} head",
            corpus_source=self.settings["corpus"]["source"],
            corpus_meta=str({k: v for k, v in corpus_meta.items()
                             if not isinstance(v, (dict, list))}),
        )
        for key in ("entropy_rate_nats", "unigram_entropy_nats", "bigram_cross_entropy_nats",
                    "token_zipf_exponent", "vocab_size"):
            if key in corpus_meta:
                cube.attrs[f"corpus_{key}"] = corpus_meta[key]
        return cube

    def _split_size_sweep(self, combined: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
        return lr_sweep.split_size_sweep(combined, self.sweep_plan(), self.learning_rates(),
                                         self.lr_choice_path)
