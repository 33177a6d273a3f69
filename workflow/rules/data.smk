rule plan_study:
    output:
        "results/{study}/manifest.tsv",
    log:
        "logs/{study}/plan_study.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/plan_study.py"
