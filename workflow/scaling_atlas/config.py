"""Configuration: reading and merging config files, the schema (defaults, messages that name the
key), and the errors.

Validation runs when the Snakefile is parsed, before any job starts. Errors are collected (not
just the first) and raised as one :class:`ConfigError` whose text names every offending key, the
rule it breaks and, for schema errors, the value found. The studies' own rules are checked by
the study registry (``scaling_atlas.studies.validate_config``), which calls ``check_schema``;
this module knows no study.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def fill_defaults(instance: dict, schema: dict) -> dict:
    """Return a copy of ``instance`` with every missing property set to the schema's default."""
    filled = copy.deepcopy(instance)
    for key, spec in schema.get("properties", {}).items():
        if key not in filled and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
        if isinstance(filled.get(key), dict) and "properties" in spec:
            filled[key] = fill_defaults(filled[key], spec)  # nested sections (e.g. corpus)
    return filled


def _key_path(prefix: str, path) -> str:
    text = prefix
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _is_integer(checker, instance) -> bool:
    """An integer is written as one: ``64.0`` would pass JSON Schema's integer type and then
    break every path and id that formats it (issue #19)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker, instance) -> bool:
    """A number is finite: NaN and ±inf are no setting (``lr: .nan`` trained 24 runs to NaN)."""
    return isinstance(instance, (int, float)) and not isinstance(instance, bool) \
        and math.isfinite(instance)


#: Draft 2020-12 with integers that are ints and numbers that are finite
StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}))


def short_list(values, limit: int = 8) -> str:
    """``[a, b, c, … (n values)]``: a list for a message that stays one line however long."""
    values = list(values)
    if len(values) <= limit:
        return "[" + ", ".join(map(str, values)) + "]"
    return "[" + ", ".join(map(str, values[:limit])) + f", … ({len(values)} values)]"


def _explain(error) -> str:
    value = error.instance
    if "propertyNames" in error.schema_path:
        return (f"{value!r} is not a valid study name: start with a letter, then letters, digits "
                "or underscores only (it names a folder under results/)")
    if error.validator == "type" and isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if error.validator == "type" and error.validator_value == "integer" and isinstance(value, float) \
            and value.is_integer():
        return f"{value} must be written as an integer ({int(value)})"
    return error.message


def schema_problems(instance: Any, schema: dict, prefix: str = "") -> list[str]:
    """Schema violations as readable lines: ``key: problem (rule: keyword)``."""
    validator = StrictValidator(schema)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        key = _key_path(prefix, error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = ", ".join(sorted(error.schema.get("properties", {}))) or "none"
            problems.append(f"{key}: {error.message} (rule: unknown keys; allowed keys: {allowed})")
        else:
            problems.append(f"{key}: {_explain(error)} (rule: {error.validator})")
    return problems


def check_schema(config: dict, schema: dict | None = None) -> tuple[dict, dict[str, list[str]], list[str]]:
    """The schema half of validation (the studies' own rules are
    ``scaling_atlas.studies.validate_config``, which calls this).

    Checks the top level against the schema (raising ConfigError at once), then each study
    section against its kind's schema (``$defs``), filling every default. Returns the filled
    config, each study's schema problems, and the problems found after the sections
    (``only_studies``). The input is not modified.
    """
    schema = schema or load_schema()
    problems = schema_problems(config, schema)
    if problems:
        raise ConfigError(problems)
    filled = fill_defaults(config, schema)
    sections: dict[str, list[str]] = {}
    for name, section in filled["studies"].items():
        kind_schema = schema["$defs"][section["kind"]]
        sections[name] = schema_problems(section, kind_schema, f"studies.{name}")
        if not sections[name]:
            filled["studies"][name] = fill_defaults(section, kind_schema)
    after = []
    unknown = [n for n in filled.get("only_studies", []) if n not in filled["studies"]]
    if unknown:
        after.append(f"only_studies: {', '.join(map(repr, unknown))} not under studies "
                     f"({', '.join(filled['studies'])})")
    return filled, sections, after


def selected_studies(config: dict) -> list[str]:
    """The study instances a run builds: ``only_studies`` if given, else every one."""
    return list(config.get("only_studies") or config["studies"])


DEFAULT_CONFIG = Path("config/config.yaml")


def merge_configs(base: dict, update: dict) -> dict:
    """Snakemake's rule for several config files: later values win, dicts merge key by key."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_configs(base[key], value)
        else:
            base[key] = value
    return base


def read_config_file(path: str | Path) -> dict:
    """One config file, read with YAML's safe loader; a missing file or a YAML syntax error
    becomes a ConfigError naming the file (and line and column)."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if path.parent.name == "presets":
            known = sorted(p.stem for p in path.parent.glob("*.yaml"))
            hint = f" (presets: {', '.join(known) or 'none'})"
        raise ConfigError([f"{path}: no such config file{hint}"])
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(part) for part in (error.context, error.problem) if part)
        raise ConfigError([f"{path}{where}: YAML syntax error: {problem}"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: not readable as YAML: {error}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: a config file is a mapping of keys, not a "
                           f"{type(data).__name__}"])
    return data


def read_files(files: list[str | Path], default: Path | None = DEFAULT_CONFIG) -> dict:
    """The config Snakemake would see for ``--configfile FILES`` (the default file first),
    merged as Snakemake merges them, not yet validated (``scaling-atlas config check`` does
    both before any Snakemake process starts)."""
    config: dict = {}
    for path in ([default] if default else []) + [Path(f) for f in files]:
        merge_configs(config, read_config_file(path))
    return config
