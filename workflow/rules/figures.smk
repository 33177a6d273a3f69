rule draw_figure:
    input:
        cube="results/{study}/cube.nc",
        fits="results/{study}/fits.nc",
    output:
        png=report(
            "results/{study}/figures/{figure}.png",
            caption="../report/figure.rst",
            category="{study}",
            subcategory="figures",
        ),
        pdf="results/{study}/figures/{figure}.pdf",
    log:
        "logs/{study}/figures/{figure}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        caption=figure_caption,
        fingerprint=study_fingerprint,
    script:
        "../scripts/draw_figure.py"
