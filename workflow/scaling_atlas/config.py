"""Configuration: schema defaults, validation with messages that name the key, study dispatch.

Validation runs when the Snakefile is parsed, before any job starts. Errors are collected (not
just the first) and raised as one :class:`ConfigError` whose text names every offending key, the
rule it breaks and, for schema errors, the value found.
"""

from __future__ import annotations

import copy
import hashlib
import json
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


def _explain(error) -> str:
    value = error.instance
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


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate a whole config and return it with every default filled in.

    Checks the top level against the schema, then each study section against its kind's schema
    (``$defs``), then the study's own cross-key rules (e.g. n ≥ m). Raises ConfigError listing
    every problem; the input is not modified.
    """
    from scaling_atlas.studies import study_class  # local import: studies import this module

    schema = schema or load_schema()
    problems = schema_problems(config, schema)
    if problems:
        raise ConfigError(problems)
    filled = fill_defaults(config, schema)
    for name, section in filled["studies"].items():
        kind_schema = schema["$defs"][section["kind"]]
        prefix = f"studies.{name}"
        section_problems = schema_problems(section, kind_schema, prefix)
        if section_problems:
            problems += section_problems
            continue
        section = fill_defaults(section, kind_schema)
        filled["studies"][name] = section
        study = study_class(section["kind"])(name, section, filled)
        problems += [f"{prefix}.{p}" for p in study.validate()]
    if problems:
        raise ConfigError(problems)
    return filled


def config_hash(section: Any) -> str:
    """Stable hash of a JSON-able config fragment (key order does not matter)."""
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
