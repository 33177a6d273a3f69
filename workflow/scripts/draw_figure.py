"""Adapter: draw one of the study's figures as PNG and PDF."""

import _workflow_package  # noqa: F401 (first: the workflow's own scaling_atlas on sys.path)

from scaling_atlas.cubes import open_cube
from scaling_atlas.figures import save_figure
from scaling_atlas.workflow_io import logged, study_of

with logged(snakemake.log[0]):
    study = study_of(snakemake)
    cube, fits = open_cube(snakemake.input.cube), open_cube(snakemake.input.fits)
    figure = study.draw_figure(snakemake.wildcards.figure, cube, fits)
    save_figure(figure, snakemake.output.png, snakemake.output.pdf)
