import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile merge: nested dicts update, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(preset: str | None = None) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if preset:
        overlay = yaml.safe_load((REPO / "config" / "presets" / f"{preset}.yaml").read_text())
        config = merged(config, overlay)
    return config


@pytest.fixture
def ci_config() -> dict:
    return load_config("ci")
