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
        study_problems = study.validate()
        problems += [f"{prefix}.{p}" for p in study_problems]
        if not study_problems:
            count = study.run_count()
            if count > filled["max_runs"]:
                problems.append(
                    f"{prefix}: the grid has {count:,} runs, more than max_runs "
                    f"({filled['max_runs']:,}); shrink its lists or raise max_runs "
                    "(rule: max_runs)")
    unknown = [n for n in filled.get("only_studies", []) if n not in filled["studies"]]
    if unknown:
        problems.append(f"only_studies: {', '.join(map(repr, unknown))} not under studies "
                        f"({', '.join(filled['studies'])})")
    if problems:
        raise ConfigError(problems)
    return filled


def selected_studies(config: dict) -> list[str]:
    """The study instances a run builds: ``only_studies`` if given, else every one."""
    return list(config.get("only_studies") or config["studies"])


def config_hash(section: Any) -> str:
    """Stable hash of a JSON-able config fragment (key order does not matter)."""
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


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


def check_files(files: list[str | Path], default: Path | None = DEFAULT_CONFIG) -> dict:
    """The config Snakemake would see for ``--configfile FILES`` (the default file first),
    validated; raises ConfigError before any Snakemake process starts."""
    config: dict = {}
    for path in ([default] if default else []) + [Path(f) for f in files]:
        merge_configs(config, read_config_file(path))
    return validate_config(config)


def main(argv: list[str] | None = None) -> int:
    """``python -m scaling_atlas.config check [--configfile FILE ...]``: what ``make run``
    calls before Snakemake, so that a YAML error names its line and a missing preset its name."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m scaling_atlas.config")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="read and validate the config files, run nothing")
    check.add_argument("--configfile", nargs="*", default=[], action="extend",
                       help="config files applied after config/config.yaml, as Snakemake does")
    args = parser.parse_args(argv)
    try:
        config = check_files(args.configfile)
    except ConfigError as error:
        sys.stderr.write(f"Scaling Atlas: {error}\nNo job was started; fix the config and rerun.\n")
        return 1
    print(f"config ok: preset {config['preset']}, studies {', '.join(config['studies'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
