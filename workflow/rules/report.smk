rule score_claims:
    input:
        cube="results/{study}/cube.nc",
        fits="results/{study}/fits.nc",
    output:
        csv=report(
            "results/{study}/claims.csv",
            caption="../report/claims.rst",
            category="{study}",
            subcategory="1. claims",
        ),
        md="results/{study}/claims.md",
    log:
        "logs/{study}/score_claims.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fingerprint=study_fingerprint,
    script:
        "../scripts/score_claims.py"
