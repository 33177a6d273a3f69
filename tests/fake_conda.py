"""A stand-in for ``conda`` that answers what Snakemake asks and builds each env from what is
installed here instead of from a channel (no channel is reachable from our machines).

``install(root)`` writes ``root/bin/conda`` and ``root/bin/activate``. ``conda env create --file F
--prefix P`` records the call (its working directory, the env file and the files beside it) in
``root/creates.jsonl``, then makes P a virtual environment holding exactly the distributions F
names and what they require, linked from this interpreter's site-packages. A ``sitecustomize`` in
P refuses, in every process the env runs, a package outside that set (but Snakemake's own, which
Snakemake's script preamble brings from the host), and logs the process in ``root/jobs.jsonl``.
So a job runs with only what its env and the workflow's mechanism provide.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = "24.7.1"


def install(root: Path) -> Path:
    """The fake conda in ``root``; returns the folder to put first on PATH."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    conda = bin_dir / "conda"
    conda.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HERE)!r})\n"
                     "from fake_conda import main\nsys.exit(main(sys.argv[1:]))\n")
    conda.chmod(0o755)
    # Snakemake runs a job as `source <conda_prefix>/bin/activate '<env>'; <command>`
    (bin_dir / "activate").write_text('export PATH="$1/bin:$PATH"\nexport CONDA_PREFIX="$1"\n')
    return bin_dir


def main(argv: list[str]) -> int:
    root = Path(sys.argv[0]).resolve().parent.parent  # root/bin/conda
    if argv == ["--version"]:
        print(f"conda {VERSION}")
    elif argv[:2] == ["info", "--json"]:
        print(json.dumps({"conda_prefix": str(root), "platform": "linux-64",
                          "conda_version": VERSION, "envs_dirs": [str(root / "envs")]}))
    elif argv[:3] == ["config", "--get", "channel_priority"]:
        print(json.dumps({"get": {"channel_priority": "strict"}, "rc_path": None}))
    elif argv[:1] == ["clean"]:
        pass  # no package cache to clean
    elif argv[:2] == ["env", "create"]:
        env_file = Path(argv[argv.index("--file") + 1])
        prefix = Path(argv[argv.index("--prefix") + 1])
        with open(root / "creates.jsonl", "a") as log:
            log.write(json.dumps({"cwd": os.getcwd(), "file": str(env_file),
                                  "content": env_file.read_text(),
                                  "beside": sorted(os.listdir(env_file.parent)),
                                  "prefix": str(prefix)}) + "\n")
        build(env_file, prefix, root)
    else:
        print(f"fake conda: {' '.join(argv)!r} is not something Snakemake asked before",
              file=sys.stderr)
        return 1
    return 0


def build(env_file: Path, prefix: Path, root: Path) -> None:
    sys.path.insert(0, str(HERE))
    from env_guard import env_distributions, module_owners, requirement_closure

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    wanted = env_distributions(str(env_file))
    for name in sorted(wanted):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"fake conda: {env_file.name} needs {name}, which is not installed here")
        base = Path(dist.locate_file(""))
        for top in sorted({Path(str(f)).parts[0] for f in dist.files or []}):
            if top in ("..", "__pycache__") or top.endswith(".pth") or not (base / top).exists():
                continue
            target = site / top
            if not target.exists():
                target.symlink_to(base / top)
    allowed = sorted(wanted | requirement_closure(["snakemake"]))
    (prefix / "guard.json").write_text(json.dumps(
        {"allowed": allowed, "owners": module_owners(), "label": env_file.name}))
    (site / "sitecustomize.py").write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from env_guard import Refuse\n"
        f"guard = json.load(open({str(prefix / 'guard.json')!r}))\n"
        "sys.meta_path.insert(0, Refuse(set(guard['allowed']), guard['owners'], guard['label']))\n"
        "sys.path.pop(0)\n"
        f"with open({str(root / 'jobs.jsonl')!r}, 'a') as log:\n"
        "    log.write(json.dumps({'env': guard['label'], 'argv': sys.argv[:2]}) + '\\n')\n")
