"""Adapter: write the study's run manifest (one row per run: id, shard, parameters)."""

from pathlib import Path

from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]) as log:  # noqa: F821 (snakemake is injected)
    study = study_of(snakemake)  # noqa: F821
    manifest = study.manifest()
    out = Path(snakemake.output[0])  # noqa: F821
    tmp = out.with_suffix(".tmp")
    manifest.to_csv(tmp, sep="\t", index=False)
    tmp.replace(out)
    log.info("%d runs in %d shards", len(manifest), manifest["shard"].nunique())
