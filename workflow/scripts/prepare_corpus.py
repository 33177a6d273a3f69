"""Adapter: build the token corpus of a transformer study (arrays + metadata)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from pathlib import Path

from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    out_dir = Path(snakemake.output.meta).parent
    meta = study.prepare_corpus(out_dir, snakemake.params.cache_dir, log.info)
    log.info("corpus: %s training tokens, %s validation, vocabulary %s",
             meta["train_tokens"], meta["val_tokens"], meta["vocab_size"])
