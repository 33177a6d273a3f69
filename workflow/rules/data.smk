rule plan_study:
    output:
        "results/{study}/manifest.tsv",
    log:
        "logs/{study}/plan_study.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fingerprint=study_fingerprint,
    script:
        "../scripts/plan_study.py"


# External data (studies that refit published results): download at a pinned commit, verify
# the sha256, tidy into a NetCDF table. Raw downloads are cached under resources/.
rule prepare_dataset:
    output:
        "results/{study}/data/{dataset}.nc",
    log:
        "logs/{study}/data/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        cache_dir=download_cache,
        fingerprint=study_fingerprint,
    script:
        "../scripts/prepare_dataset.py"
