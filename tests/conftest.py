import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "config", "workflow", "envs", "profiles")


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile merge (nested dicts update, everything else replaces), on copies."""
    from scaling_atlas.config import merge_configs

    return merge_configs(copy.deepcopy(base), copy.deepcopy(overlay))


def load_config(preset: str | None = None) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if preset:
        overlay = yaml.safe_load((REPO / "config" / "presets" / f"{preset}.yaml").read_text())
        config = merged(config, overlay)
    return config


@pytest.fixture
def ci_config() -> dict:
    return load_config("ci")


def snakemake(workdir, *args, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True,
        timeout=timeout, env=env,
    )


def workflow_copy(workdir: Path) -> Path:
    """The workflow's files in ``workdir`` (with ../shared beside it, as the published study expects)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shared = workdir.parent / "shared"
    if not shared.exists():
        shared.symlink_to(REPO.parent / "shared")
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)
    return workdir


#: a fixed source date (reproducible-builds convention): runs of one commit make the same bytes
SOURCE_DATE_EPOCH = "1767225600"


def reproducible_env() -> dict:
    return dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """The ci preset run locally once per session: every study's outputs, for the end-to-end tests."""
    workdir = workflow_copy(tmp_path_factory.mktemp("workflow"))
    result = snakemake(workdir, "--configfile", "config/presets/ci.yaml", env=reproducible_env(),
                       timeout=900)  # ≈ 7–8 min on 2 cores; 600 s left too little margin
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir
