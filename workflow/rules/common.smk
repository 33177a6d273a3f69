# Validation, the study registry, and input functions. Parsed before any rule: a bad config
# stops here, before any job starts, with one line per problem.
import sys
from pathlib import Path

# the workflow's own package, however Snakemake was installed (a venv, conda, a container)
sys.path.insert(0, str(Path(str(workflow.current_basedir)).parent))
from scaling_atlas.config import ConfigError, selected_studies
from scaling_atlas.hashing import stable_hash
from scaling_atlas.studies import get_study, validate_config
from scaling_atlas.train.gpu_slots import training_resource_problems

# what a profile or --set-resources gives the training rule (one process, one GPU)
_train = workflow.resource_settings.overwrite_resources.get("train_shard") or {}
_resource_problems = training_resource_problems(
    {key: getattr(_train.get(key), "raw", None) for key in ("gpu", "gres")}
)
try:
    _validated = validate_config(config)
    if _resource_problems:
        raise ConfigError(_resource_problems)
except ConfigError as error:
    sys.stderr.write(
        f"\nScaling Atlas: {error}\nNo job was started; fix the config and rerun.\n"
    )
    sys.exit(1)
config.clear()
config.update(_validated)

STUDIES = {name: get_study(name, config) for name in selected_studies(config)}
SHARDS = {name: list(study.shards()) for name, study in STUDIES.items()}


wildcard_constraints:
    study=r"[A-Za-z0-9_]+",
    shard=r"[A-Za-z0-9_-]+",
    figure=r"[a-z0-9_]+",
    dataset=r"[a-z0-9_]+",


def shard_results(wildcards):
    """Every shard result of a study: the inputs of its cube."""
    return expand(
        "results/{study}/shards/{shard}.nc",
        study=wildcards.study,
        shard=SHARDS[wildcards.study],
    )


def tuning_shard_results(wildcards):
    """The shards whose results choose what the others train with (a per-size LR sweep)."""
    return expand(
        "results/{study}/shards/{shard}.nc",
        study=wildcards.study,
        shard=STUDIES[wildcards.study].tuning_shards(),
    )


def shard_tuning(wildcards):
    """What a shard's training reads from earlier jobs (the per-size LR choice), if anything.

    ancient(): rewriting the choice with the same content must not retrain shards; tuned run
    ids already hash their sweep's runs, and the cube refuses a run trained with a stale choice.
    """
    return [
        ancient(path) for path in STUDIES[wildcards.study].shard_inputs(wildcards.shard)
    ]


def study_datasets(wildcards):
    """Every prepared external dataset of a study (none for studies that train)."""
    return expand(
        "results/{study}/data/{dataset}.nc",
        study=wildcards.study,
        dataset=STUDIES[wildcards.study].datasets(),
    )


CORPUS_FILES = ("train.npy", "val.npy", "meta.json")


def study_corpus(wildcards):
    """The prepared token corpus of a study that trains a transformer (none otherwise).

    ancient(): a corpus rebuilt with the same content must not retrain finished shards; run ids
    already hash the corpus config, so a different corpus gives new shards anyway.
    """
    if not STUDIES[wildcards.study].has_corpus:
        return []
    return [
        ancient(f"results/{wildcards.study}/corpus/{name}") for name in CORPUS_FILES
    ]


def corpus_fingerprint(wildcards):
    """Rerun trigger of prepare_corpus: its config and the token count the grid needs."""
    return STUDIES[wildcards.study].corpus_fingerprint()


def dataset_inputs(wildcards):
    """Local files a dataset is read from (a runs study's data): a changed file reruns it."""
    return STUDIES[wildcards.study].dataset_inputs(wildcards.dataset)


def download_cache(wildcards):
    """Undeclared cache of verified raw downloads: a rerun does not fetch them again."""
    return f"resources/downloads/{wildcards.study}"


def study_fingerprint(wildcards):
    """Hash of a study's config section and preset, as a params value of the analysis rules.

    Snakemake keeps an existing output whose inputs are missing (it takes them for deleted
    temp files), so a changed grid would leave a stale cube. Through the params rerun trigger
    this fingerprint rebuilds the manifest, cube, fits, figures and claims whenever the
    study's config changes; training jobs need none: shard ids already hash their runs.
    """
    return stable_hash(
        {"study": config["studies"][wildcards.study], "preset": config["preset"]}
    )


def checkpoint_dir(wildcards):
    """Undeclared per-shard checkpoint folder: survives Snakemake deleting outputs on rerun."""
    return f"resources/ckpt/{wildcards.study}/{wildcards.shard}"


def train_env(wildcards):
    """Conda env of training jobs: PyTorch's CPU build, or pytorch-gpu when train_env is gpu."""
    suffix = "-gpu" if config["train_env"] == "gpu" else ""
    return f"../../envs/train{suffix}.yaml"


def training_gpus(wildcards):
    """GPUs a training job holds: one with device cuda (auto asks for none: it may run on
    a CPU cluster). Locally, --resources gpu=K then runs at most K at once, each on its own
    GPU (train/gpu_slots.py); on SLURM the GPU profiles ask for one in any case."""
    return 1 if config["device"] == "cuda" else 0


def fit_threads(wildcards):
    """Cores of a study's fit_laws job (its bootstrap workers)."""
    return STUDIES[wildcards.study].fit_threads


def figure_caption(wildcards):
    return STUDIES[wildcards.study].figures[wildcards.figure]


def study_outputs(name):
    outputs = [f"results/{name}/data/{d}.nc" for d in STUDIES[name].datasets()]
    if STUDIES[name].has_corpus:
        outputs += [f"results/{name}/corpus/{file}" for file in CORPUS_FILES]
    outputs += [
        f"results/{name}/manifest.tsv",
        f"results/{name}/cube.nc",
        f"results/{name}/fits.nc",
        f"results/{name}/fits_summary.csv",
        f"results/{name}/claims.csv",
        f"results/{name}/claims.md",
    ]
    for figure in STUDIES[name].figures:
        outputs += [f"results/{name}/figures/{figure}.{ext}" for ext in ("png", "pdf")]
    return outputs


def study_claims(wildcards):
    """Every study's claims table, in the config's order (the scorecard's rows)."""
    return [f"results/{name}/claims.csv" for name in STUDIES]


def all_targets(wildcards):
    outputs = [path for name in STUDIES for path in study_outputs(name)]
    return outputs + [
        "results/claims.csv",
        "results/claims.md",
        "results/claims_counts.csv",
    ]
