"""config/README.md, written from the config schema: every key with its type, default and
description, the top level first, then each study kind's section (``scaling-atlas config
docs`` prints it; a test keeps the file in step with the schema)."""

from __future__ import annotations

import json

HEADER = """# Configuring Scaling Atlas

`config/config.yaml` is the quick default: every study at a scale that runs in about half an
hour on 2 cores. `config/presets/` holds `ci` (the tests' scale), `reproduce` (each study's
reference protocol, ≤ 90 min each on 2 cores) and `paper` (the papers' scale, for a cluster);
apply one with `--configfile config/presets/<name>.yaml`, or write your own file with only the
keys you change (`scaling-atlas config check --configfile mine.yaml` validates it without
running anything). `config/examples/runs.yaml` fits laws to your own finished runs.

A config is checked against `workflow/schemas/config.schema.yaml` before any job starts; a bad
key, type or value is named with its path. Below, every key of that schema (this file is
written from it: `scaling-atlas config docs > config/README.md`).
"""


def _type(spec: dict) -> str:
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"]) or "string"
    if "const" in spec:
        return f"`{spec['const']}`"
    kind = spec.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(spec.get("items"), dict) and "type" in spec["items"]:
        return f"array of {spec['items']['type']}"
    return kind


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(properties: dict, prefix: str = "") -> list[str]:
    rows = []
    for key, spec in properties.items():
        name = f"{prefix}{key}"
        default = "" if "default" not in spec or isinstance(spec["default"], dict) else (
            f"`{json.dumps(spec['default'], ensure_ascii=False)}`")
        rows.append(f"| `{name}` | {_type(spec)} | {default} | {_cell(spec.get('description', ''))} |")
        if spec.get("type") == "object" and "properties" in spec:
            rows += _rows(spec["properties"], f"{name}.")
    return rows


def _table(properties: dict) -> str:
    return "\n".join(["| key | type | default | description |", "|---|---|---|---|",
                      *_rows(properties)])


def config_markdown(schema: dict) -> str:
    """The whole file. ``schema``: the config schema with its list of kinds filled in
    (``scaling_atlas.studies.load_schema``)."""
    top = {k: v for k, v in schema["properties"].items() if k != "studies"}
    kinds = schema["properties"]["studies"]["additionalProperties"]["properties"]["kind"]["enum"]
    parts = [HEADER, "## Top level\n", _table(top), "",
             "## `studies`\n", _cell(schema["properties"]["studies"]["description"]), "",
             "Each study section has a `kind`, one of the kinds below, and that kind's keys "
             "(each with its default when left out).", ""]
    for kind in kinds:
        spec = schema["$defs"][kind]
        parts += [f"### kind `{kind}`\n", _cell(spec.get("description", "")), "",
                  _table(spec["properties"]), ""]
    return "\n".join(parts)
