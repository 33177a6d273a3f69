"""Adapter: write the study's run manifest (one row per run: id, shard, parameters)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from scaling_atlas.atomic import atomic_path
from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    manifest = study.manifest()
    with atomic_path(snakemake.output[0]) as tmp:
        manifest.to_csv(tmp, sep="\t", index=False)
    log.info("%d runs in %d shards", len(manifest), manifest["shard"].nunique())
