"""Config validation: defaults filled, every bad input named with its key and rule."""

import copy
import re

import yaml

import pytest

from scaling_atlas.config import ConfigError, load_schema, validate_config

from conftest import load_config


def with_study(config, **changes):
    config = copy.deepcopy(config)
    config["studies"]["superposition"].update(changes)
    return config


def problems_of(config) -> str:
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


def test_default_and_presets_validate_and_fill_defaults():
    for preset in (None, "ci", "reproduce", "paper"):
        config = validate_config(load_config(preset))
        section = config["studies"]["superposition"]
        assert section["last_steps"] == 100 or preset == "ci"
        assert config["device"] == "auto"


def test_every_schema_key_has_description_and_default():
    schema = load_schema()

    def walk(node, path):
        for key, spec in node.get("properties", {}).items():
            assert "description" in spec, f"{path}.{key} has no description"
            assert "default" in spec, f"{path}.{key} has no default"
            walk(spec, f"{path}.{key}")

    walk(schema, "config")
    for name, definition in schema["$defs"].items():
        walk(definition, name)


@pytest.mark.parametrize(
    "change, key, rule",
    [
        ({"widths": [0, 4]}, "studies.superposition.widths[0]", "minimum"),
        ({"steps": -5}, "studies.superposition.steps", "minimum"),
        ({"steps": "many"}, "studies.superposition.steps", "type"),
        ({"distributions": ["zipf"]}, "studies.superposition.distributions[0]", "enum"),
        ({"n": 8}, "studies.superposition.widths", "m ≤ n"),
        ({"densities": [9.0], "alphas": [1.0], "n": 1000}, "studies.superposition.densities", "E ≤ 1/p_1"),
        ({"last_steps": 500, "steps": 100}, "studies.superposition.last_steps", "last_steps ≤ steps"),
        ({"widths": [8]}, "studies.superposition.widths", "≥ 2 fitted widths"),
        ({"lerning_rate": 0.1}, "studies.superposition", "unknown keys"),
    ],
)
def test_bad_values_name_key_and_rule(change, key, rule):
    text = problems_of(with_study(load_config(), **change))
    assert key in text and f"rule: {rule}" in text


def test_unknown_top_level_key_and_kind():
    config = load_config()
    config["devcie"] = "cpu"
    text = problems_of(config)
    assert "devcie" in text and "unknown keys" in text
    config = load_config()
    config["studies"]["superposition"]["kind"] = "alchemy"
    assert "studies.superposition.kind" in problems_of(config)


def test_all_problems_reported_at_once():
    text = problems_of(with_study(load_config(), steps=-1, batch_size=0))
    assert len(re.findall(r"^\s+- ", text, flags=re.M)) == 2


@pytest.mark.parametrize("preset", [None, "ci", "reproduce", "paper"])
def test_resolved_config_round_trips_through_yaml(preset):
    # a release stores the resolved config as YAML; fed back, it must validate unchanged
    resolved = validate_config(load_config(preset))
    again = validate_config(yaml.safe_load(yaml.safe_dump(resolved)))
    assert again == resolved
