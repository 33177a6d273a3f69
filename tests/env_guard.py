"""Run a process as if it were in one of envs/*.yaml: importing a package the env does not hold
(or that none of its packages needs) raises ImportError, as it would in that conda env."""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import re
import sys

import yaml
from packaging.requirements import Requirement

#: conda-forge names whose Python distribution has another name
CONDA_TO_PIP = {"pytorch": "torch", "pytorch-gpu": "torch", "matplotlib-base": "matplotlib",
                "snakemake-minimal": "snakemake"}
#: what an env file may name that is no Python distribution
NOT_PIP_PACKAGES = {"python", "pip", "cuda-version"}


def env_distributions(env_file: str) -> set[str]:
    """The distributions an env file names (lower-case), and everything they require."""
    names = []
    for dep in yaml.safe_load(open(env_file))["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        names += [re.split(r"[=<>\s]", item)[0].lower() for item in items if not item.startswith("-")]
    return requirement_closure([CONDA_TO_PIP.get(n, n) for n in names
                                if n not in NOT_PIP_PACKAGES])


def requirement_closure(names: list[str]) -> set[str]:
    """``names`` and every distribution they require, as installed here (lower-case)."""
    todo = list(names)
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower())
    return {n.replace("_", "-") for n in found}


class Refuse(importlib.abc.MetaPathFinder):
    """Refuses a top-level module whose distributions (``owners``: module → distributions) are
    all outside ``allowed``."""

    def __init__(self, allowed: set[str], owners: dict[str, list[str]], label: str):
        self.allowed, self.owners, self.label = allowed, owners, label

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if "." in name or top in sys.stdlib_module_names or top == "scaling_atlas":
            return None
        owners = {d.lower().replace("_", "-") for d in self.owners.get(top, [])}
        if owners and not owners & self.allowed:
            raise ImportError(f"{name}: {', '.join(sorted(owners))} is not in {self.label}")
        return None


def module_owners() -> dict[str, list[str]]:
    """Top-level module → the installed distributions that provide it (this interpreter's)."""
    return {k: list(v) for k, v in importlib.metadata.packages_distributions().items()}


def refuse_all_but(env_file: str) -> None:
    """From now on, this process imports only what ``env_file`` provides (and the standard
    library, and the workflow's own package)."""
    sys.meta_path.insert(0, Refuse(env_distributions(env_file), module_owners(), env_file))
