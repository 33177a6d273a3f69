"""Adapter: gather every study's claims into one scorecard (CSV and Markdown)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

import pandas as pd

from scaling_atlas.atomic import atomic_path, write_text
from scaling_atlas.claims import scorecard_markdown, verdict_counts
from scaling_atlas.workflow_io import logged

with logged(snakemake.log[0]) as log:
    papers = snakemake.params.papers  # {study: its title, naming the paper}
    tables = [pd.read_csv(path).assign(study=study, paper=papers[study])
              for study, path in zip(papers, snakemake.input)]
    table = pd.concat(tables, ignore_index=True)
    table = table[["study", "paper", *[c for c in table.columns if c not in ("study", "paper")]]]
    with atomic_path(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    write_text(snakemake.output.md, scorecard_markdown(table))
    with atomic_path(snakemake.output.counts) as tmp:
        verdict_counts(table).to_csv(tmp, index=False)
    log.info("%s", table["verdict"].value_counts().to_dict())
