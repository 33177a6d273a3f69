"""Software deployment: every rule declares a conda env, every env file parses, channels are
conda-forge + nodefaults, and every pin equals pyproject.toml's."""

import re
import tomllib

import pytest
import yaml

from conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
#: conda-forge package name → the pip distribution it provides
CONDA_TO_PIP = {"pytorch": "torch", "pytorch-gpu": "torch", "matplotlib-base": "matplotlib"}
NOT_PIP_PACKAGES = {"python", "pip", "cuda-version"}


def pip_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", requirement).groups()
        pins[name.lower()] = version
    return pins


def env_pins(env: dict) -> list[tuple[str, str, str]]:
    """(name, version, where) of every dependency; an unpinned one gets version ''."""
    out = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for item in dep["pip"]:
                if item.startswith("-"):
                    continue
                name, _, version = item.partition("==")
                out.append((name.lower(), version, "pip"))
        else:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([^=\s]+)(=\S+)?", dep)
            out.append((match.group(1).lower(), match.group(2), "conda") if match else (dep, "", "conda"))
    return out


def rules_and_envs() -> list[tuple[str, str]]:
    """(rule, conda directive) of every rule in the workflow's rule files."""
    found = []
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", path.read_text()):
            name = re.match(r"rule (\w+):", block)
            if name:
                conda = re.search(r"\n    conda:\n        (\S+)", block)
                found.append((name.group(1), conda.group(1) if conda else ""))
    return found


def test_every_rule_declares_a_conda_env_that_exists():
    rules = rules_and_envs()
    assert {rule for rule, _ in rules} >= {"plan_study", "prepare_dataset", "prepare_corpus",
                                           "train_shard", "assemble_cube", "fit_laws",
                                           "draw_figure", "score_claims"}
    for rule, conda in rules:
        assert conda, f"rule {rule} has no conda: directive"
        if conda.startswith('"'):
            assert (REPO / "workflow" / "rules" / conda.strip('"')).resolve().exists(), rule
    # the training env is chosen by config (CPU or CUDA build): both files exist
    assert (REPO / "envs" / "train.yaml").exists() and (REPO / "envs" / "train-gpu.yaml").exists()


@pytest.mark.parametrize("path", ENVS, ids=[p.name for p in ENVS])
def test_env_files_pin_exactly_what_pyproject_pins(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = pip_pins()
    provided = set()
    for name, version, _ in env_pins(env):
        assert version, f"{path.name}: {name} is not pinned exactly (name ==version)"
        pip_name = CONDA_TO_PIP.get(name, name)
        if pip_name in NOT_PIP_PACKAGES:
            continue
        assert pip_name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
        assert version == pins[pip_name], (f"{path.name}: {name} {version} but pyproject.toml pins "
                                           f"{pip_name}=={pins[pip_name]}")
        provided.add(pip_name)
    # every runtime dependency but the workflow engine itself is in every job env
    assert provided == set(pins) - {"snakemake"}, path.name


def test_gpu_env_uses_the_cuda_build_with_a_pinned_runtime():
    deps = [d for d in yaml.safe_load((REPO / "envs" / "train-gpu.yaml").read_text())["dependencies"]
            if isinstance(d, str)]
    assert any(d.startswith("pytorch-gpu ==") for d in deps)
    assert any(re.fullmatch(r"cuda-version ==\d+\.\d+", d) for d in deps)
    assert not any(d.startswith("pytorch ==") for d in deps)
