rule fit_laws:
    input:
        cube="results/{study}/cube.nc",
    output:
        "results/{study}/fits.nc",
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
