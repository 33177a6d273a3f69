"""Adapter: score the paper's claims against the cube and fits (CSV + Markdown)."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from scaling_atlas.atomic import atomic_path, write_text
from scaling_atlas.claims import claims_table, to_markdown
from scaling_atlas.cubes import open_cube
from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]) as log:
    study = study_of(snakemake)
    cube, fits = open_cube(snakemake.input.cube), open_cube(snakemake.input.fits)
    table = claims_table(study.claims(cube, fits))
    with atomic_path(snakemake.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    write_text(snakemake.output.md, to_markdown(table, f"Claims: {study.title}"))
    log.info("%s", table["verdict"].value_counts().to_dict())
