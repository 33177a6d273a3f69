"""The scaling-data registry: every published dataset we hold behind one loader and one schema.

>>> from scaling_atlas.datasets.registry import REGISTRY, load
>>> table = load("epoch_chinchilla", mirror_dir="../shared/data/published")
>>> table[["N", "D", "C", "loss", "group"]].head()

Schema (one row per point; ``SCHEMA`` gives long names and units):

- ``N`` model parameters, ``D`` training tokens, ``C`` training compute in FLOP, ``loss`` the
  source's loss (its units and what it is measured on are in the dataset's ``loss_units``);
  NaN where the source does not give the quantity (``Dataset.missing`` says which and why);
- ``group`` a family inside the dataset (a data mix, a configuration, an IsoFLOP experiment);
- ``run`` the training run a row belongs to (a checkpoint's run), ``step`` the optimiser step
  (NaN for end-of-run tables), ``lr`` the peak learning rate where a sweep has several per
  (N, D) (a tuned ladder keeps the best: ``best_per_point``);
- QC flags (booleans, ``QC_FLAGS``): duplicates, IsoFLOP budgets with too few sizes, negative or
  weak curvature, off-centre sampling, and outliers as the source marks them (``source_reason``).

Each dataset records how N, D and C are counted, the source repository, commit, path and sha256
of every file it is read from (``scaling_atlas.datasets``: downloaded at the pinned commit and
verified, falling back to the verified mirror), its license and the paper to cite. Nothing here
imports torch or executes code from a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from scaling_atlas.datasets import mirror_pins, obtain, upstream_files

#: column → (long name, units) of the registry's schema
SCHEMA: dict[str, tuple[str, str]] = {
    "N": ("model parameters (counted as the dataset's n_counting says)", "1"),
    "D": ("training tokens", "token"),
    "C": ("training compute (counted as the dataset's c_counting says)", "FLOP"),
    "loss": ("loss as the source reports it (see the dataset's loss_units)", "see loss_units"),
    "group": ("family inside the dataset (data mix, configuration, IsoFLOP experiment)", "1"),
    "run": ("training run the row belongs to", "1"),
    "step": ("optimiser step of the checkpoint (NaN: end of run)", "1"),
    "lr": ("peak learning rate, where a sweep has several per (N, D)", "1"),
}

#: QC flag → what it means (every flag is a boolean column of a loaded table)
QC_FLAGS: dict[str, str] = {
    "qc_invalid": "N, D, C or loss missing, infinite or not positive",
    "qc_duplicate": "repeats an earlier row's (group, run, N, D, step); the first is kept",
    "qc_source_outlier": "marked as an outlier or left out by the source (reason in source_reason)",
    "qc_budget_too_few": "IsoFLOP budget with fewer than 3 distinct model sizes",
    "qc_negative_curvature": "IsoFLOP budget whose parabola (ln loss on ln N) opens downward",
    "qc_weak_curvature": "IsoFLOP budget whose curvature's 95 % interval includes 0",
    "qc_off_centre": "point far from its budget's parabola vertex (Open Athena's rule: |ln N − "
                     "ln N*| above 2.5 × the vertex's distance to the nearer end of the sampled "
                     "sizes), or every point of a budget whose vertex lies outside them",
}


class RegistryError(ValueError):
    """An unknown dataset, or a file whose contents do not fit the registry's schema."""


@dataclass(frozen=True)
class Dataset:
    """One registered dataset: where it comes from, how it is counted, and how it is read."""

    name: str
    title: str
    files: tuple[str, ...]
    reader: Callable[[dict[str, Path]], pd.DataFrame] = field(repr=False)
    paper: str
    license: str
    loss_units: str
    n_counting: str
    d_counting: str
    c_counting: str
    #: C is a grid of nominal IsoFLOP budgets (curvature and centring are checked per budget)
    isoflop: bool = False
    #: schema columns the source does not give, with the reason
    missing: dict = field(default_factory=dict)
    #: another registered dataset this one repeats (the backtest scores only the original)
    duplicate_of: str | None = None
    notes: str = ""

    @property
    def license_short(self) -> str:
        return "MIT" if self.license.startswith("MIT") else "none (cite)"

    @property
    def usable(self) -> bool:
        """Whether an L(N, D) law can be fitted to it (N, D and loss present)."""
        return not ({"N", "D", "loss"} & set(self.missing))

    def provenance(self) -> list[dict]:
        """Repository, commit, path and sha256 of every upstream file, per local file."""
        pins = mirror_pins()
        rows = []
        for local in self.files:
            for up in upstream_files(local):
                rows.append({"file": local, "repository": up.repository, "commit": up.commit,
                             "path": up.path, "upstream_sha256": up.sha256,
                             "local_sha256": pins.get(local, ""),
                             "verbatim": up.sha256 == pins.get(local)})
        return rows


def _read(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise RegistryError(f"{path}: cannot be read as CSV ({error})") from None


def _need(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df]
    if missing:
        raise RegistryError(f"{path}: missing column(s) {missing} (has {list(df.columns)[:12]}…)")


def _frame(N=np.nan, D=np.nan, C=np.nan, loss=np.nan, group="", run="", step=np.nan,
           lr=np.nan, index=None, **extra) -> pd.DataFrame:
    df = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss, "group": group, "run": run,
                       "step": step, "lr": lr, **extra}, index=index)
    for column in ("N", "D", "C", "loss", "step", "lr"):
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    df["group"] = df["group"].astype(str)
    df["run"] = df["run"].astype(str)
    if "source_reason" not in df:
        df["source_reason"] = ""
    df["source_reason"] = df["source_reason"].fillna("").astype(str)
    return df.reset_index(drop=True)


# ---- readers (one per dataset) -----------------------------------------------------------------
EPOCH_FILE = "chinchilla_besiroglu2024_svg_extracted_data.csv"


def _epoch(paths, size="Model Size", flops="Training FLOP", file=EPOCH_FILE):
    path = paths[file]
    raw = _read(path)
    _need(raw, [size, flops, "loss"], path)
    df = _frame(N=raw[size], C=raw[flops], loss=raw["loss"], group="chinchilla",
                run=[f"point {i}" for i in range(len(raw))])
    df["D"] = df["C"] / (6 * df["N"])
    # Besiroglu et al. drop the 5 highest-loss points before fitting (their §3)
    worst = df["loss"].sort_values(kind="stable").index[-5:]
    df.loc[worst, "source_reason"] = "one of the 5 highest losses Epoch drops before fitting"
    return df


def _porian(paths):
    path = paths["porian2024_isoflop_points.csv"]
    raw = _read(path)
    keys = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_source"]
    _need(raw, keys + ["flops", "n_params", "n_tokens", "loss"], path)
    group = raw[keys].astype(str).agg("/".join, axis=1)
    return _frame(N=raw["n_params"], D=raw["n_tokens"], C=raw["flops"], loss=raw["loss"],
                  group=group, run=group + " N=" + raw["n_params"].astype(str))


def _gadre(paths):
    path = paths["gadre2024_overtraining_models.csv"]
    raw = _read(path)
    _need(raw, ["name", "dataset", "params", "tokens", "loss_c4_val"], path)
    return _frame(N=raw["params"], D=raw["tokens"], C=6 * raw["params"] * raw["tokens"],
                  loss=raw["loss_c4_val"], group=raw["dataset"], run=raw["name"])


MISFITTING_COLUMNS = ["loss", "N", "D", "C_6ND", "model", "total_steps", "current_steps",
                      "peak_lr", "sweep"]


def _misfitting(file):
    def read(paths):
        path = paths[file]
        raw = _read(path)
        _need(raw, MISFITTING_COLUMNS, path)
        run = (raw["model"] + " steps=" + raw["total_steps"].astype(str) + " lr="
               + raw["peak_lr"].astype(str) + " " + raw["sweep"])
        return _frame(N=raw["N"].astype(float), D=raw["D"].astype(float),
                      C=raw["C_6ND"].astype(float), loss=raw["loss"], group="misfitting",
                      run=run, lr=raw["peak_lr"].astype(float),
                      step=raw["current_steps"], total_steps=raw["total_steps"].astype(float))
    return read


def _misfitting_old(file, n_column):
    def read(paths):
        path = paths[file]
        raw = _read(path, dtype=str)
        _need(raw, ["Params", "total steps", "lr", "C4 Eval Loss", "D", n_column], path)
        model = raw["Params"].ffill()
        steps = pd.to_numeric(raw["total steps"], errors="coerce").ffill()
        runs = raw[raw["C4 Eval Loss"].notna()].copy()
        N = pd.to_numeric(runs[n_column], errors="coerce")
        D = pd.to_numeric(runs["D"], errors="coerce")
        return _frame(N=N, D=D, C=6 * N * D, loss=runs["C4 Eval Loss"], group="misfitting_old",
                      lr=pd.to_numeric(runs["lr"], errors="coerce"),
                      run=model[runs.index] + " steps=" + steps[runs.index].astype(str)
                      + " lr=" + runs["lr"].astype(str))
    return read


def _moe(file):
    def read(paths):
        path = paths[file]
        raw = _read(path)
        ppl = "eval/ppl//fsx-onellm/data/corpora/text_only/text_eval/c4.jsonl"
        _need(raw, ["Name", ppl, "optim/n_tokens", "train/step", "model.number_of_experts"], path)
        return _frame(D=raw["optim/n_tokens"], loss=np.log(pd.to_numeric(raw[ppl], errors="coerce")),
                      group="experts=" + raw["model.number_of_experts"].astype(str),
                      run=raw["Name"], step=raw["train/step"])
    return read


OPENATHENA_SOURCES = ("ml_scalefit", "epochai_chinchilla", "misfitting", "llama_3", "marin_202603")
OPENATHENA_TRANSFORM = "openathena_isoflops_transform.csv"
_POINT_KEY = ["experiment", "params", "tokens", "budget", "loss"]


def _openathena(source):
    file = f"openathena_isoflops_extract_{source}.csv"

    def read(paths):
        path, flags_path = paths[file], paths[OPENATHENA_TRANSFORM]
        raw = _read(path)
        _need(raw, _POINT_KEY, path)
        flags = _read(flags_path)
        _need(flags, _POINT_KEY + ["outlier", "reason"], flags_path)
        # the transform reorders the rows: match them by value (and by order among exact twins)
        raw = raw.assign(_twin=raw.groupby(_POINT_KEY).cumcount())
        flags = flags.assign(_twin=flags.groupby(_POINT_KEY).cumcount())
        merged = raw.merge(flags[_POINT_KEY + ["_twin", "outlier", "reason"]],
                           on=_POINT_KEY + ["_twin"], how="left", validate="one_to_one")
        if merged["outlier"].isna().any():
            raise RegistryError(f"{path}: {int(merged['outlier'].isna().sum())} row(s) have no "
                                f"match in {flags_path.name}")
        outlier = merged["outlier"].astype(str).str.lower() == "true"
        return _frame(N=merged["params"], D=merged["tokens"], C=merged["budget"],
                      loss=merged["loss"], group=merged["experiment"],
                      run=merged["experiment"] + " N=" + merged["params"].round().astype(int).astype(str),
                      source_reason=np.where(outlier, "Open Athena: " + merged["reason"].astype(str), ""))
    return read


MARIN_FILES = {tag: f"openathena_marin_202603_raw_isoflop-{tag}.csv"
               for tag in ("comma", "dclm", "nemotron")}


def _marin(paths):
    frames = []
    for tag, file in MARIN_FILES.items():
        path = paths[file]
        raw = _read(path)
        need = ["Name", "parameter_count", "throughput/total_tokens", "eval/paloma/macro_loss",
                "throughput/total_gflops"]
        _need(raw, need, path)
        validation = raw["Name"].str.contains("validation-optimal", regex=False)
        frames.append(_frame(N=raw["parameter_count"], D=raw["throughput/total_tokens"],
                             C=raw["throughput/total_gflops"] * 1e9,
                             loss=raw["eval/paloma/macro_loss"], group=tag, run=raw["Name"],
                             source_reason=np.where(validation, "a validation-optimal run (total "
                                                    "FLOPs in its name); Open Athena drops it", "")))
    return pd.concat(frames, ignore_index=True)


def _llama3(paths):
    path = paths["llama3_isoflop_points.csv"]
    raw = _read(path)
    _need(raw, ["compute_budget", "training_tokens", "validation_loss"], path)
    C, D = raw["compute_budget"].astype(float), raw["training_tokens"].astype(float)
    return _frame(N=C / (6 * D), D=D, C=C, loss=raw["validation_loss"], group="llama3",
                  run=[f"point {i}" for i in range(len(raw))])


LUO_SIZES = (25, 100, 400)
LUO_SCHEDULES = ("constant_24000", "constant_72000", "cosine_24000", "cosine_72000",
                 "wsd_20000_24000", "wsdcon_18", "wsdcon_3", "wsdcon_9", "wsdld_20000_24000")
LUO_FILES = tuple(f"luo2025_mpl_loss_curves/N{size}M_{s}.csv" for size in LUO_SIZES
                  for s in LUO_SCHEDULES)


def _luo(paths):
    frames = []
    for file in LUO_FILES:
        raw = _read(paths[file])
        _need(raw, ["step", "loss"], paths[file])
        size, schedule = Path(file).stem.split("_", 1)
        frames.append(_frame(N=float(size[1:-1]) * 1e6, loss=raw["loss"], group=schedule,
                             run=f"{size} {schedule}", step=raw["step"]))
    return pd.concat(frames, ignore_index=True)


# ---- the registry --------------------------------------------------------------------------------
_NATS = "nats/token (cross-entropy)"
_MISFITTING_PAPER = "Li, Kudugunta, Zettlemoyer 2025, (Mis)Fitting: A Survey of Scaling Laws, arXiv:2502.18969"
_OPENATHENA_PAPER = ("Problems with Chinchilla Approach 2, arXiv:2603.22339 (Open-Athena/"
                     "scaling-law-analysis), compiling: ")

_ENTRIES = [
    Dataset("epoch_chinchilla", "Chinchilla's Approach-3 points, reconstructed from Hoffmann et "
            "al.'s Figure 4 by Epoch", (EPOCH_FILE,), _epoch,
            "Besiroglu, Erdil, Barnett, You 2024, Chinchilla Scaling: A replication attempt, "
            "arXiv:2404.10102 (data of Hoffmann et al. 2022, arXiv:2203.15556)",
            "none in the repository; cite the paper", _NATS + ", MassiveText training loss read "
            "off the figure's colour bar", "Hoffmann et al.'s count (with embeddings)",
            "C/(6N)", "the figure's training FLOP (Hoffmann et al.'s count)"),
    Dataset("porian_isoflop", "IsoFLOP points of 15 training configurations (RefinedWeb, OWT2)",
            ("porian2024_isoflop_points.csv",), _porian,
            "Porian, Wortsman, Jitsev, Schmidt, Carmon 2024, Resolving Discrepancies in "
            "Compute-Optimal Scaling of Language Models, arXiv:2406.19146", "MIT",
            _NATS + ", validation or training loss per configuration (loss_source)",
            "per configuration: standard (with the head) or Kaplan (non-embedding)",
            "tokens at the budget", "the nominal IsoFLOP budget (6ND or with attention FLOPs, "
            "per configuration)", isoflop=True),
    Dataset("gadre_overtraining", "Over-trained model families on C4, RedPajama and RefinedWeb",
            ("gadre2024_overtraining_models.csv",), _gadre,
            "Gadre et al. 2024, Language models scale reliably with over-training and on "
            "downstream tasks, arXiv:2403.08540", "MIT", _NATS + ", C4 validation loss",
            "all parameters, with embeddings", "tokens trained on", "6ND"),
    Dataset("misfitting_checkpoints", "(Mis)Fitting's dense sweep: 11 sizes, 240 runs, every "
            "evaluated checkpoint", ("li2025_misfitting_scaling_results.csv",),
            _misfitting("li2025_misfitting_scaling_results.csv"), _MISFITTING_PAPER,
            "none in the repository; cite the paper", _NATS + ", C4 evaluation loss",
            "all parameters, with both embedding matrices", "tokens seen at the checkpoint",
            "6ND", notes="mid-schedule checkpoints (step < total_steps) are not runs trained to "
            "D: their LR schedule is set for total_steps"),
    Dataset("misfitting_final", "(Mis)Fitting's dense sweep: the last checkpoint of every run",
            ("li2025_misfitting_scaling_results_last_ckpt_only.csv",),
            _misfitting("li2025_misfitting_scaling_results_last_ckpt_only.csv"), _MISFITTING_PAPER,
            "none in the repository; cite the paper", _NATS + ", C4 evaluation loss",
            "all parameters, with both embedding matrices", "tokens trained on", "6ND",
            notes="several peak learning rates per (N, D): the authors keep the lowest loss"),
    Dataset("misfitting_old", "(Mis)Fitting's older sweep (a spreadsheet export, 32k vocabulary)",
            ("li2025_misfitting_data.csv",), _misfitting_old("li2025_misfitting_data.csv", "N"),
            _MISFITTING_PAPER, "none in the repository; cite the paper",
            _NATS + ", C4 evaluation loss (3 significant digits)",
            "all parameters, with embeddings", "tokens trained on", "6ND (recomputed)"),
    Dataset("misfitting_old_dense", "The same older sweep with renamed columns",
            ("li2025_misfitting_dense.csv",),
            _misfitting_old("li2025_misfitting_dense.csv", "N_w_emb"), _MISFITTING_PAPER,
            "none in the repository; cite the paper",
            _NATS + ", C4 evaluation loss (3 significant digits)",
            "all parameters, with embeddings", "tokens trained on", "6ND (recomputed)",
            duplicate_of="misfitting_old", notes="220 of its rows equal 220 of misfitting_old's"),
    Dataset("misfitting_epoch_ai", "Epoch's Chinchilla reconstruction as (Mis)Fitting re-ships it",
            ("li2025_misfitting_epoch_ai.csv",),
            lambda paths: _epoch(paths, "N", "C", "li2025_misfitting_epoch_ai.csv"),
            _MISFITTING_PAPER + "; data of Besiroglu et al. 2024",
            "none in the repository; cite both papers", _NATS, "Hoffmann et al.'s count",
            "C/(6N)", "the figure's training FLOP", duplicate_of="epoch_chinchilla"),
    *[Dataset(f"misfitting_{kind}", f"Mixture-of-experts runs, {routing} routing (W&B export)",
              (f"li2025_misfitting_{kind}.csv",), _moe(f"li2025_misfitting_{kind}.csv"),
              _MISFITTING_PAPER, "none in the repository; cite the paper",
              _NATS + ", ln of the C4 evaluation perplexity", "not given", "tokens seen",
              "not given", missing={"N": "the export gives no parameter counts",
                                    "C": "no parameter counts, so no compute"})
      for kind, routing in (("gshard", "GShard top-2"), ("spm", "SPM"))],
    Dataset("llama3_isoflops", "Llama 3's IsoFLOP points, digitised from Figure 2",
            ("llama3_isoflop_points.csv",), _llama3,
            "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783, Figure 2 (digitised "
            "by eric-czech/llama3_isoflop_extraction)", "none in the repository; cite the paper",
            "validation loss as the figure's linear axis reads (units not stated)",
            "C/(6D)", "read off the figure's log axis", "the figure's budget label",
            isoflop=True),
    Dataset("marin_ladder", "Marin's scaling-ladder IsoFLOP runs on comma, DCLM and Nemotron "
            "(W&B exports)", tuple(MARIN_FILES.values()), _marin,
            "Marin project, W&B report Scaling Ladders (vendored by Open Athena, arXiv:2603.22339)",
            "none in the repository; cite the report and arXiv:2603.22339",
            "nats/token, Paloma macro-averaged loss", "parameter_count (the run's config)",
            "tokens seen", "total FLOPs the trainer counts (3 × the name's forward budget)",
            notes="C is the trainer's count, not a budget grid: 6ND is 0.93–1.35 × C"),
    Dataset("luo_mpl_curves", "Multi-Power-Law loss curves: 3 sizes × 9 LR schedules",
            LUO_FILES, _luo, "Luo et al. 2025, A Multi-Power Law for Loss Curve Prediction "
            "Across Learning Rate Schedules, arXiv:2503.12811", "MIT", _NATS + ", training loss",
            "nominal size (25M, 100M, 400M)", "not given", "not given",
            missing={"D": "tokens per step are not in the files", "C": "no token counts"}),
]
_OPENATHENA_TITLES = {
    "ml_scalefit": ("Chinchilla's IsoFLOP points as apple/ml-scalefit ships them",
                    "data of Hoffmann et al. 2022 via apple/ml-scalefit (arXiv:2507.09404)"),
    "epochai_chinchilla": ("Epoch's Chinchilla points snapped to the 9 IsoFLOP budgets",
                           "data of Besiroglu et al. 2024"),
    "misfitting": ("(Mis)Fitting's checkpoints interpolated at 26 IsoFLOP budgets",
                   "data of Li et al. 2025"),
    "llama_3": ("Llama 3's IsoFLOP points (raw loss and its exponential)",
                "data of the Llama Team 2024"),
    "marin_202603": ("Marin's IsoFLOP runs as Open Athena selects them", "the Marin report"),
}
for _source in OPENATHENA_SOURCES:
    _title, _data = _OPENATHENA_TITLES[_source]
    _ENTRIES.append(Dataset(
        f"openathena_{_source}", _title,
        (f"openathena_isoflops_extract_{_source}.csv", OPENATHENA_TRANSFORM), _openathena(_source),
        _OPENATHENA_PAPER + _data, "none in the repository; cite the paper and the source",
        "the source's loss" + (" (exp_loss rows: its exponential)" if _source == "llama_3" else ""),
        "as the source counts it", "budget/(6N) unless the source gives D",
        "the nominal IsoFLOP budget", isoflop=True,
        notes="outlier flags from Open Athena's transform (source_reason)"))

REGISTRY: dict[str, Dataset] = {d.name: d for d in _ENTRIES}


def get(name: str) -> Dataset:
    if name not in REGISTRY:
        raise RegistryError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


# ---- QC --------------------------------------------------------------------------------------------
def _budget_curvature(log_n: np.ndarray, log_loss: np.ndarray) -> tuple[float, float, float]:
    """Quadratic of ln loss on ln N: (curvature, its standard error, vertex ln N*)."""
    x = log_n - log_n.mean()
    A = np.column_stack([x**2, x, np.ones_like(x)])
    coef, *_ = np.linalg.lstsq(A, log_loss, rcond=None)
    dof = len(x) - 3
    if dof <= 0:
        return float(coef[0]), math.inf, log_n.mean() - coef[1] / (2 * coef[0])
    resid = log_loss - A @ coef
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(A.T @ A)
    vertex = log_n.mean() - coef[1] / (2 * coef[0]) if coef[0] != 0 else math.nan
    return float(coef[0]), float(math.sqrt(max(cov[0, 0], 0.0))), float(vertex)


def qc(table: pd.DataFrame, isoflop: bool) -> pd.DataFrame:
    """The table with every ``QC_FLAGS`` column set (a copy)."""
    from scipy import stats

    df = table.copy()
    present = [c for c in ("N", "D", "C", "loss") if df[c].notna().any()]
    df["qc_invalid"] = ~(np.isfinite(df[present]) & (df[present] > 0)).all(axis=1)
    key = ["group", "run", "N", "D", "step"]
    df["qc_duplicate"] = df[key].astype(str).duplicated(keep="first")
    df["qc_source_outlier"] = df["source_reason"] != ""
    for flag in ("qc_budget_too_few", "qc_negative_curvature", "qc_weak_curvature", "qc_off_centre"):
        df[flag] = False
    if isoflop:
        usable = ~df["qc_invalid"] & ~df["qc_duplicate"]
        for _, budget in df[usable].groupby(["group", "C"], sort=False):
            log_n = np.log(budget["N"].to_numpy())
            if len(np.unique(log_n)) < 3:
                df.loc[budget.index, "qc_budget_too_few"] = True
                continue
            curvature, se, vertex = _budget_curvature(log_n, np.log(budget["loss"].to_numpy()))
            if curvature <= 0:
                df.loc[budget.index, "qc_negative_curvature"] = True
                continue
            dof = len(log_n) - 3
            half = stats.t.ppf(0.975, dof) * se if dof > 0 else math.inf
            if curvature - half <= 0:
                df.loc[budget.index, "qc_weak_curvature"] = True
            lo, hi = log_n.min(), log_n.max()
            if not lo <= vertex <= hi:
                df.loc[budget.index, "qc_off_centre"] = True
            else:
                reach = 2.5 * min(vertex - lo, hi - vertex)
                far = np.abs(log_n - vertex) > reach
                df.loc[budget.index[far], "qc_off_centre"] = True
    return df


def best_per_point(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, N, D, C): the lowest loss over learning rates and repeats, as a tuned
    ladder would keep (the (Mis)Fitting authors' selection)."""
    keep = table.groupby(["group", "N", "D", "C"], sort=False)["loss"].idxmin()
    return table.loc[np.sort(keep.to_numpy())]


def qc_summary(table: pd.DataFrame) -> dict[str, int]:
    """Rows carrying each QC flag, and the rows carrying none (``clean``)."""
    flags = [f for f in QC_FLAGS if f in table]
    out = {f: int(table[f].sum()) for f in flags}
    out["clean"] = int((~table[flags].any(axis=1)).sum())
    return out


# ---- loading -------------------------------------------------------------------------------------
def load(name: str, mirror_dir: str | Path | None = None, source: str = "mirror",
         cache_dir: str | Path | None = None, log: Callable[[str], None] = lambda _: None,
         url_base: str | None = None) -> pd.DataFrame:
    """One dataset in the registry's schema, with its QC flags.

    Each file is obtained through ``scaling_atlas.datasets.obtain``: with ``source="download"``
    from its repository at the pinned commit (sha256 checked), falling back to ``mirror_dir``;
    with ``source="mirror"`` from the mirror only, sha256 checked the same way.
    """
    from scaling_atlas.datasets import DEFAULT_URL_BASE

    spec = get(name)
    if cache_dir is None:
        import tempfile

        cache_dir = Path(tempfile.gettempdir()) / "scaling-atlas-datasets"
    paths = {f: obtain(f, source, None if mirror_dir is None else str(mirror_dir), cache_dir,
                       url_base or DEFAULT_URL_BASE, log) for f in spec.files}
    table = spec.reader(paths)
    for column, why in spec.missing.items():
        if table[column].notna().any():
            raise RegistryError(f"{name}: column {column} is declared missing ({why}) but has values")
    checked = qc(table, spec.isoflop)
    checked.attrs.update(dataset=name, loss_units=spec.loss_units, n_counting=spec.n_counting,
                         d_counting=spec.d_counting, c_counting=spec.c_counting)
    return checked


def verify(mirror_dir: str | Path, names=None) -> pd.DataFrame:
    """sha256 of every registered file in ``mirror_dir`` against its pin: one row per file."""
    from scaling_atlas.datasets import sha256_of

    pins = mirror_pins()
    rows = []
    for name in names or REGISTRY:
        for file in get(name).files:
            path = Path(mirror_dir) / file
            pin = pins.get(file)
            got = sha256_of(path) if path.is_file() else None
            status = ("no pin" if pin is None else "missing" if got is None
                      else "ok" if got == pin else "MISMATCH")
            rows.append({"dataset": name, "file": file, "status": status, "sha256": got or "",
                         "pinned": pin or ""})
    return pd.DataFrame(rows)
