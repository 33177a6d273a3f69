"""Adapter: build results/release/ (manifest, config, environment, scorecard, report, rule graph as DOT)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

import subprocess
import sys
from pathlib import Path

from scaling_atlas.atomic import write_text
from scaling_atlas.release import build_release
from scaling_atlas.workflow_io import logged

with logged(snakemake.log[0]) as log:
    release = Path(snakemake.output.manifest).parent
    files = build_release(Path("results"), release, snakemake.config)
    log.info("manifest of %d files", len(files))
    # the same workflow and the release's own config (written above, in the workflow's study
    # order), read-only: a nested Snakemake must not take the lock
    nested = [sys.executable, "-m", "snakemake", "--nolock", "--configfile", str(release / "config.yaml")]
    dot = subprocess.run(nested + ["--rulegraph"], capture_output=True, text=True, check=True).stdout
    write_text(snakemake.output.rulegraph, dot)  # Graphviz draws it: dot -Tsvg
    report = subprocess.run(nested + ["--report", snakemake.output.report],
                            capture_output=True, text=True)
    if report.returncode != 0:
        raise RuntimeError(f"snakemake --report failed:\n{report.stderr[-3000:]}")
    log.info("report and rule graph written")
