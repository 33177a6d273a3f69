"""Provenance recorded in every output file: code, config, software, device, seeds."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import os
import platform
import subprocess
from pathlib import Path

from scaling_atlas import __version__
from scaling_atlas.hashing import stable_hash

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


def created_utc() -> str:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (the reproducible-builds convention): a release
    built twice from one commit then carries the same date and the same bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch
              else _dt.datetime.now(_dt.timezone.utc))
    return moment.isoformat(timespec="seconds")


def provenance(study_config: dict, preset: str, device: str = "", seeds=(), dtype: str = "",
               workflow_config: dict | None = None, job: dict | None = None) -> dict[str, str]:
    """NetCDF-ready (string) attributes describing how a file was made.

    ``workflow_config``: the top-level keys of the resolved config (device, batching, seed salt,
    …); ``job``: the Snakemake rule and wildcards that wrote the file. ``run_id`` names the
    workflow run: the commit, the study config and the creation time.
    """
    commit, digest, created = git_commit(), stable_hash(study_config), created_utc()
    job = job or {}
    return {
        "Conventions": "CF-1.10",
        "project": "scaling-atlas",
        "project_version": __version__,
        "source_commit": commit,
        "config_hash": digest,
        "config_json": json.dumps(study_config, sort_keys=True),
        "workflow_config_json": json.dumps(workflow_config or {}, sort_keys=True),
        "preset": preset,
        "software_versions": package_versions(),
        "device": device or "none",
        "dtype": dtype or "none",
        "seeds": " ".join(str(s) for s in seeds),
        "snakemake_rule": job.get("rule", ""),
        "snakemake_wildcards": job.get("wildcards", ""),
        "run_id": stable_hash({"commit": commit, "config": digest, "preset": preset,
                               "created": created})[:16],
        "host_platform": platform.platform(),
        "created_utc": created,
    }
