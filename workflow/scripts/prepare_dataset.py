"""Adapter: obtain (download or mirror, sha256-verified) and tidy one external dataset."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from scaling_atlas.cubes import write_netcdf
from scaling_atlas.workflow_io import job_of, logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    name = snakemake.wildcards.dataset
    ds = study.prepare_dataset(name, snakemake.params.cache_dir, log.info)
    write_netcdf(ds, snakemake.output[0], study.provenance(job=job_of(snakemake)))
    log.info("%s: %s", name, dict(ds.sizes))
