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
