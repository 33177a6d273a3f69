"""Adapter: each width's peak LR from its sweep shards (lr_sweep_scope: size)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

import pandas as pd

from scaling_atlas.atomic import write_text
from scaling_atlas.cubes import check_shards, read_manifest
from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    manifest = read_manifest(snakemake.input.manifest)
    shards = check_shards(snakemake.input.shards, manifest, study.finite_results,
                          study.measured_in_shard)
    sweep = pd.concat([study.sweep_table(ds) for ds in shards], ignore_index=True)
    choice = study.choose_size_lrs(sweep)
    for row in choice.itertuples():
        log.info("width %d: peak LR %g (loss %.4f)%s", row.width, row.lr, row.final_val_loss,
                 ", on the sweep's edge" if row.at_edge else "")
    write_text(snakemake.output[0], choice.to_csv(sep="\t", index=False))
