rule fit_laws:
    input:
        cube="results/{study}/cube.nc",
    output:
        fits="results/{study}/fits.nc",
        summary="results/{study}/fits_summary.csv",
    log:
        "logs/{study}/fit_laws.log",
    benchmark:
        "results/{study}/benchmarks/fit_laws.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    params:
        fingerprint=study_fingerprint,
    script:
        "../scripts/fit_laws.py"
