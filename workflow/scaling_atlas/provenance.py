"""Provenance recorded in every output file: code, config, software, device, seeds."""

from __future__ import annotations

import datetime as _dt
import json
import importlib.metadata as _md
import platform
import subprocess
from pathlib import Path

from scaling_atlas import __version__
from scaling_atlas.config import config_hash

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "numpy", "xarray", "scipy", "netCDF4", "snakemake", "matplotlib")


def git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> str:
    versions = [f"python={platform.python_version()}", f"scaling_atlas={__version__}"]
    for name in PACKAGES:
        try:
            versions.append(f"{name}={_md.version(name)}")
        except _md.PackageNotFoundError:
            pass
    return " ".join(versions)


def provenance(study_config: dict, preset: str, device: str = "", seeds=()) -> dict[str, str]:
    """NetCDF-ready (string) attributes describing how a file was made."""
    return {
        "source_commit": git_commit(),
        "config_hash": config_hash(study_config),
        "config_json": json.dumps(study_config, sort_keys=True),
        "preset": preset,
        "software_versions": package_versions(),
        "device": device or "none",
        "seeds": " ".join(str(s) for s in seeds),
        "host_platform": platform.platform(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
