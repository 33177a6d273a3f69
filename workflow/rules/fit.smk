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
    # a fit that is ready (the published refits need no training) starts before more training
    priority: 1
    conda:
        "../../envs/analysis.yaml"
    threads: fit_threads
    params:
        fingerprint=study_fingerprint,
    script:
        "../scripts/fit_laws.py"
