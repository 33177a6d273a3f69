"""Write a Dockerfile for the workflow: Snakemake's ``--containerize`` (one conda env per
envs/*.yaml the rules use, built in the image) and the workflow itself, its package included.

    python tools/containerize.py [--config train_env=gpu] > Dockerfile

Jobs import ``scaling_atlas`` from the workflow folder they run in (the checkout Snakemake
mounts; workflow/scripts/_workflow_package.py), so the image's copy under /opt/scaling-atlas
serves a job only where no checkout is mounted; with it the image also runs the workflow on
its own (``snakemake -s /opt/scaling-atlas/Snakefile``). Needs ``conda`` on PATH: Snakemake asks
it where envs live; nothing is built here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: what the image holds of the workflow (the README's two commands need no more)
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs", "profiles", "pyproject.toml")
TAIL = """
# The workflow itself: jobs import scaling_atlas from workflow/ (the mounted checkout first)
{copies}
ENV PYTHONPATH=/opt/scaling-atlas/workflow
WORKDIR /opt/scaling-atlas
"""


def dockerfile(extra_args: list[str]) -> str:
    result = subprocess.run([sys.executable, "-m", "snakemake", "--containerize", *extra_args],
                            cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"snakemake --containerize failed:\n{result.stderr[-2000:]}")
    copies = "\n".join(f"COPY {name} /opt/scaling-atlas/{name}" for name in WORKFLOW_FILES)
    return result.stdout.rstrip("\n") + "\n" + TAIL.format(copies=copies)


if __name__ == "__main__":
    sys.stdout.write(dockerfile(sys.argv[1:]))
