"""Software deployment: every rule declares a conda env, every env file parses, channels are
conda-forge + nodefaults, and every pin equals pyproject.toml's."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from env_guard import CONDA_TO_PIP, NOT_PIP_PACKAGES  # conda-forge name → pip distribution

ENVS = sorted((REPO / "envs").glob("*.yaml"))
#: packages an env may hold that no module imports at its top: imported by name only when the
#: job needs them, or by another package (the runtime check is tests/test_workflow.py's
#: analysis of the ci run, in a process that refuses what analysis.yaml lacks)
LAZY = {"pyarrow": "pandas' Arrow backend (string dtype, parquet)",
        "netcdf4": "xarray's NetCDF backend (every cube and fits file)",
        "tqdm": "a fit's progress bar", "threadpoolctl": "thread limits of parallel fits"}
#: packages a rule runs as a program, not as an import
RUNS = {"release": {"snakemake"}}
PACKAGE = REPO / "workflow" / "scaling_atlas"


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


def rule_scripts() -> dict[str, tuple[str, str]]:
    """rule → (env file, script) for every rule with a script; the training rule's env is
    chosen by config, train.yaml by default (train-gpu.yaml holds the same packages)."""
    out = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", path.read_text()):
            name = re.match(r"rule (\w+):", block)
            script = re.search(r"\n    script:\n        \"([^\"]+)\"", block)
            conda = re.search(r"\n    conda:\n        (\S+)", block)
            if name and script:
                env = conda.group(1).strip('"').split("/")[-1] if conda.group(1).startswith('"') else "train.yaml"
                out[name.group(1)] = (env, script.group(1).split("/")[-1])
    return out


def imports_of(path, lazy: bool) -> set[str]:
    """Modules ``path`` imports: at module level, or anywhere (``lazy``). ``if TYPE_CHECKING``
    blocks are annotations, not imports."""
    import ast

    tree = ast.parse(path.read_text())
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.update([node.module] + [f"{node.module}.{a.name}" for a in node.names])
            if lazy or isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def distributions_imported(start: list, lazy: bool) -> set[str]:
    """Third-party distributions (lower-case) the modules ``start`` import, following the
    package's own modules; the study registry's modules count as imported (it loads them by
    name)."""
    import importlib.metadata
    import sys

    dists = importlib.metadata.packages_distributions()
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    todo = list(start) + [p for name, p in modules.items() if name.startswith("scaling_atlas.studies.")]
    seen, out = set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path, lazy):
            top = name.split(".")[0]
            if name in modules:
                todo.append(modules[name])
            elif top not in sys.stdlib_module_names | {"scaling_atlas", "_workflow_package", "__future__"}:
                out.update(d.lower() for d in dists.get(top, [top]))
    return out


def env_needs() -> dict[str, set[str]]:
    """env file → the distributions its rules import: at module level for the analysis envs
    (their trainers are imported by the training rules only), anywhere for the training envs."""
    needs: dict[str, set[str]] = {}
    for rule, (env, script) in rule_scripts().items():
        training = env.startswith("train")
        found = distributions_imported([REPO / "workflow" / "scripts" / script], lazy=training)
        needs.setdefault(env, set()).update(found | RUNS.get(rule, set()))
    needs["train-gpu.yaml"] = needs["train.yaml"]
    return needs


def test_each_env_is_what_its_rules_import():
    """The envs differ by what their rules need: no PyTorch where nothing trains, Snakemake
    only where the release runs it, PyTorch, tokenizers and safetensors for training."""
    needs = env_needs()
    assert set(needs) == {p.name for p in ENVS}
    assert "torch" not in needs["analysis.yaml"] and "matplotlib" in needs["analysis.yaml"]
    assert {"torch", "tokenizers", "safetensors"} <= needs["train.yaml"]
    assert needs["release.yaml"] == needs["analysis.yaml"] | {"snakemake"}


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
    # what the env's rules import, and nothing else but what they load when they need it
    needed = env_needs()[path.name]
    assert provided >= needed, f"{path.name} lacks {sorted(needed - provided)}"
    assert provided - needed <= set(LAZY), f"{path.name}: {sorted(provided - needed)} unused"


def test_gpu_env_uses_the_cuda_build_with_a_pinned_runtime():
    deps = [d for d in yaml.safe_load((REPO / "envs" / "train-gpu.yaml").read_text())["dependencies"]
            if isinstance(d, str)]
    assert any(d.startswith("pytorch-gpu ==") for d in deps)
    assert any(re.fullmatch(r"cuda-version ==\d+\.\d+", d) for d in deps)
    assert not any(d.startswith("pytorch ==") for d in deps)


def test_the_conda_envs_deploy_and_each_job_runs_with_only_what_its_env_holds(tmp_path):
    """``--sdm conda`` with a conda that builds envs from what is installed here
    (tests/fake_conda.py). Snakemake creates each env from a copy of its file in
    .snakemake/conda/, from the workflow's folder, so a path in the file relative to the file
    (the old ``--editable ..``) would name .snakemake/, not the workflow: no env file installs
    the package; every script puts workflow/ on sys.path instead. Every job runs in its env,
    which refuses any package the env file does not name (or need)."""
    import json
    import os

    from conftest import snakemake, workflow_copy
    from fake_conda import install

    bin_dir = install(tmp_path / "conda")
    workdir = workflow_copy(tmp_path / "workflow")
    (workdir / "toy.yaml").write_text(yaml.safe_dump(
        {"only_studies": ["toy"], "studies": {"toy": {"kind": "example", "alpha": 0.7}}}))
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", MPLBACKEND="Agg")
    result = snakemake(workdir, "--cores", "2", "--sdm", "conda", "--configfile", "toy.yaml",
                       env=env)
    assert result.returncode == 0, result.stderr[-4000:]

    creates = [json.loads(line) for line in (tmp_path / "conda" / "creates.jsonl").open()]
    made = {Path(c["file"]).name: next(p.name for p in ENVS if p.read_text() == c["content"])
            for c in creates}  # Snakemake's copy → our file
    assert sorted(made.values()) == ["analysis.yaml", "train.yaml"]  # no release, CPU training
    for create in creates:
        assert Path(create["cwd"]).resolve() == workdir.resolve()
        copy_dir = Path(create["file"]).parent
        assert copy_dir.resolve() == (workdir / ".snakemake" / "conda").resolve()
        assert "editable" not in create["content"] and ".." not in create["content"]
    jobs = [json.loads(line) for line in (tmp_path / "conda" / "jobs.jsonl").open()]
    assert {made[job["env"]] for job in jobs} == {"analysis.yaml", "train.yaml"}
    claims = (workdir / "results" / "toy" / "claims.csv").read_text()
    assert ",pass," in claims


def test_the_container_holds_every_env_the_rules_use_and_the_workflow(tmp_path):
    """``make container`` (tools/containerize.py): Snakemake's --containerize builds one conda
    env per env file the rules use (the GPU training env when train_env is gpu), and the image
    holds the workflow with its package."""
    import os
    import subprocess
    import sys

    from fake_conda import install

    env = dict(os.environ, PATH=f"{install(tmp_path / 'conda')}:{os.environ['PATH']}")

    def dockerfile(*args) -> str:
        out = subprocess.run([sys.executable, str(REPO / "tools" / "containerize.py"), *args],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    text = dockerfile()
    copied = set(re.findall(r"^COPY envs/(\S+)\.yaml /conda-envs/", text, re.M))
    assert copied == {"analysis", "release", "train"}
    assert text.count("conda env create --prefix /conda-envs/") == 3
    assert "COPY workflow /opt/scaling-atlas/workflow" in text
    assert "ENV PYTHONPATH=/opt/scaling-atlas/workflow" in text and "editable" not in text
    gpu = dockerfile("--config", "train_env=gpu")
    assert set(re.findall(r"^COPY envs/(\S+)\.yaml /conda-envs/", gpu, re.M)) == {
        "analysis", "release", "train", "train-gpu"}  # corpus preparation stays on CPU


def test_the_workflow_catalog_finds_its_entry_point_and_usage():
    """The Snakemake workflow catalog's conventions: workflow/Snakefile (it includes the root
    one and names the same default target), config/README.md, and the usage file."""
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage["software-stack-deployment"]) == {"conda", "apptainer", "apptainer+conda"}
    assert usage["software-stack-deployment"]["conda"] and usage["report"]
    entry = (REPO / "workflow" / "Snakefile").read_text()
    assert 'include: "../Snakefile"' in entry and "default_target: True" in entry
    assert (REPO / "config" / "README.md").exists()
