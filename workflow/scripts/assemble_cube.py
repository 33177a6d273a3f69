"""Adapter: combine a study's shard results into its cube."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from pathlib import Path

import xarray as xr

from scaling_atlas.cubes import (check_shards, drop_machine_measurements, missing_attributes,
                                 open_cube, read_manifest, write_netcdf)
from scaling_atlas.workflow_io import job_of, logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    manifest = read_manifest(snakemake.input.manifest)
    # every shard checked against the manifest before anything is combined (#19 item 4)
    shards = check_shards(snakemake.input.shards, manifest, study.finite_results,
                          study.measured_in_shard)
    planned = set(manifest["run_id"])
    trained = {run for ds in shards for run in ds["run"].values.tolist()}
    if planned != trained:
        raise RuntimeError(
            f"shard results cover {len(trained)} runs but the manifest plans {len(planned)}: "
            "the manifest or a shard is stale"
        )
    devices = sorted({ds.attrs.get("device", "none") for ds in shards})
    datasets = {
        Path(path).stem: open_cube(path)
        for path in snakemake.input.datasets
    }
    cube = study.assemble(shards, datasets)
    # what measures the machine, not the model (wall time, throughput, GPU-hours), stays in the
    # shard files and job logs: the cube is the same bytes whenever the same code runs
    cube = drop_machine_measurements(cube)
    cube.attrs.update(study.provenance(", ".join(devices), job_of(snakemake)))
    problems = missing_attributes(cube)
    if problems:
        raise ValueError("cube lacks attributes: " + "; ".join(problems))
    write_netcdf(cube, snakemake.output[0])
    log.info("cube %s", list(cube.children) if isinstance(cube, xr.DataTree) else dict(cube.sizes))
