"""Adapter: train one shard of runs and write their per-run results."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

import pandas as pd

from scaling_atlas.cubes import write_netcdf
from scaling_atlas.train import checkpoint
from scaling_atlas.train.device import accounted, configure_determinism, describe, select_device
from scaling_atlas.train.gpu_slots import job_gpu
from scaling_atlas.workflow_io import job_of, logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    shard = snakemake.wildcards.shard
    runs = study.shards()[shard]
    planned = pd.read_csv(snakemake.input.manifest, sep="\t")
    planned_ids = set(planned.loc[planned["shard"] == shard, "run_id"])
    if planned_ids != {run.run_id for run in runs}:
        raise RuntimeError(f"manifest is stale for shard {shard}: rerun rule plan_study")
    # one GPU per job on a machine with several (--resources gpu=K); SLURM hands out its own
    with job_gpu(snakemake.config["device"], log.info):
        device = select_device(snakemake.config["device"])
        configure_determinism(device, snakemake.threads)
        log.info("shard %s: %d runs on %s", shard, len(runs), describe(device))
        with accounted(device, log.info) as usage:  # GPU-hours and peak memory: Snakemake has none
            results = study.train_shard(
                runs, device, snakemake.params.ckpt_dir, snakemake.config["batching"], log.info
            )
        usage = {f"job_{key}": value for key, value in usage.items()}
        write_netcdf(results, snakemake.output[0], {**study.provenance(describe(device), job_of(snakemake)), **usage})
    # the result file is written: the shard's checkpoints have no further use
    freed = checkpoint.clear_folder(snakemake.params.ckpt_dir)
    log.info("done; removed the shard's checkpoints (%.1f MB)", freed / 1e6)
