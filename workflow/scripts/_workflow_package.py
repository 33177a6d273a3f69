"""Every script adapter imports this first: it puts this workflow's own package folder
(``workflow/``, which holds ``scaling_atlas``) first on ``sys.path``.

A job's software comes from wherever Snakemake runs it: the project's venv, a conda env per rule
(``--sdm conda``), or a container. The envs hold the package's dependencies only; the package is
the workflow's own code, found from the script's location, so a job runs the same code as the
Snakefile that planned it, and nothing depends on where Snakemake copies an env file. Snakemake
puts the folder of a local script on ``sys.path``, which is how this module is found.
"""

import sys
from pathlib import Path

WORKFLOW = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [WORKFLOW]:
    sys.path.insert(0, WORKFLOW)
