"""Adapter: fit the study's laws to its cube."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

import xarray as xr

from scaling_atlas.atomic import atomic_path
from scaling_atlas.cubes import flat_summary, open_cube, write_netcdf
from scaling_atlas.workflow_io import job_of, logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    cube = open_cube(snakemake.input.cube)
    fits = study.fit_laws(cube, n_jobs=snakemake.threads)  # resampling workers
    write_netcdf(fits, snakemake.output.fits, study.provenance(cube.attrs.get("device", ""), job_of(snakemake)))
    with atomic_path(snakemake.output.summary) as tmp:
        flat_summary(fits).to_csv(tmp, index=False)
    log.info("fits %s", list(fits.children) if isinstance(fits, xr.DataTree) else dict(fits.sizes))
