"""Glue for workflow/scripts: logging to the rule's log file and finding the study."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from typing import Iterator

from scaling_atlas.studies import get_study


@contextlib.contextmanager
def logged(log_path: str) -> Iterator[logging.Logger]:
    """Send prints, warnings and a failing job's traceback to the rule's log file."""
    with open(log_path, "w", buffering=1) as handle:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = handle
        logger = logging.getLogger("scaling_atlas")
        logger.handlers[:] = [logging.StreamHandler(handle)]
        logger.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.setLevel(logging.INFO)
        try:
            yield logger
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err


def study_of(snakemake):
    return get_study(snakemake.wildcards.study, snakemake.config)


def job_of(snakemake) -> dict[str, str]:
    """The Snakemake rule and wildcards of the running job (recorded in every file it writes)."""
    wildcards = ",".join(f"{k}={v}" for k, v in snakemake.wildcards.items())
    return {"rule": snakemake.rule, "wildcards": wildcards}
