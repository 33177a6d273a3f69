"""Study registry: study kind → class. Add a study by adding its module here; no new rules."""

from __future__ import annotations

import importlib


#: study kind → (module in this package, class): a kind's module is imported only when a study
#: of that kind is built, so a job imports its own study's dependencies (no torch for the
#: studies that train nothing)
KINDS: dict[str, tuple[str, str]] = {
    "superposition": ("superposition", "SuperpositionStudy"),
    "published": ("published", "PublishedStudy"),
    "matrix_sensing": ("matrix_sensing", "MatrixSensingStudy"),
    "compute_optimal": ("compute_optimal", "ComputeOptimalStudy"),
    "superposition_lm": ("superposition_lm", "SuperpositionLMStudy"),
    "emergence": ("emergence", "EmergenceStudy"),
    "resolution": ("resolution", "ResolutionStudy"),
    "data_selection": ("data_selection", "DataSelectionStudy"),
    "runs": ("runs", "RunsStudy"),
    "backtest": ("backtest", "BacktestStudy"),
    "example": ("example", "ExampleStudy"),
}


def study_class(kind: str) -> type:
    if kind not in KINDS:
        raise KeyError(f"unknown study kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    module, name = KINDS[kind]
    cls = getattr(importlib.import_module(f"scaling_atlas.studies.{module}"), name)
    if cls.kind != kind:
        raise TypeError(f"{module}.{name} declares kind {cls.kind!r}, registered as {kind!r}")
    return cls


def load_schema() -> dict:
    """The config schema, its list of study kinds taken from this registry (a kind's settings
    are ``$defs.<kind>`` of ``workflow/schemas/config.schema.yaml``)."""
    from scaling_atlas.config import load_schema as load_yaml_schema

    schema = load_yaml_schema()
    kind = schema["properties"]["studies"]["additionalProperties"]["properties"]["kind"]
    kind["enum"] = list(KINDS)
    missing = [k for k in KINDS if k not in schema["$defs"]]
    if missing:
        raise KeyError(f"study kind(s) {', '.join(missing)} have no settings schema "
                       "($defs in workflow/schemas/config.schema.yaml)")
    return schema


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate a whole config and return it with every default filled in.

    The schema first (``scaling_atlas.config.check_schema``: the top level, then each study
    section against its kind's schema), then each study's own cross-key rules (e.g. n ≥ m) and
    its grid size against ``max_runs``. Raises ConfigError listing every problem; the input is
    not modified.
    """
    from scaling_atlas.config import ConfigError, check_schema

    filled, section_problems, after = check_schema(config, schema or load_schema())
    problems = []
    for name, section in filled["studies"].items():
        prefix = f"studies.{name}"
        if section_problems[name]:
            problems += section_problems[name]
            continue
        study = study_class(section["kind"])(name, section, filled)
        study_problems = study.validate()
        problems += [f"{prefix}.{p}" for p in study_problems]
        if not study_problems:
            count = study.run_count()
            if count > filled["max_runs"]:
                problems.append(
                    f"{prefix}: the grid has {count:,} runs, more than max_runs "
                    f"({filled['max_runs']:,}); shrink its lists or raise max_runs "
                    "(rule: max_runs)")
    problems += after
    if problems:
        raise ConfigError(problems)
    return filled


def get_study(name: str, config: dict):
    """The study instance ``name`` of a validated config."""
    section = config["studies"][name]
    return study_class(section["kind"])(name, section, config)
