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


# Every study's claims in one table: the first thing the report shows.
rule scorecard:
    input:
        study_claims,
    output:
        csv=report(
            "results/claims.csv",
            caption="../report/scorecard.rst",
            category="0. claims scorecard",
        ),
        md="results/claims.md",
        counts=report(
            "results/claims_counts.csv",
            caption="../report/counts.rst",
            category="0. claims scorecard",
        ),
    log:
        "logs/scorecard.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        papers={name: study.title for name, study in STUDIES.items()},
    script:
        "../scripts/scorecard.py"


# A release: the manifest of every cube, fit and figure, the resolved config, the exact
# environment, the scorecard, the report (zip) and the rule graph (DOT). `make release`.
rule release:
    input:
        all_targets,
    output:
        manifest="results/release/MANIFEST.json",
        sums="results/release/SHA256SUMS",
        report="results/release/report.zip",
        rulegraph="results/release/rulegraph.dot",
    log:
        "logs/release.log",
    localrule: True
    conda:
        "../../envs/release.yaml"
    script:
        "../scripts/release.py"
