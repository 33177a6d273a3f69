# One job per shard: a group of runs trained in one process (batched on GPU, in turn on CPU).
# ancient(): rewriting the manifest must not retrain shards; shard ids already change with
# their members' parameters.
rule train_shard:
    input:
        manifest=ancient("results/{study}/manifest.tsv"),
        corpus=study_corpus,
        tuning=shard_tuning,
    output:
        "results/{study}/shards/{shard}.nc",
    log:
        "logs/{study}/train/{shard}.log",
    benchmark:
        "results/{study}/benchmarks/train_{shard}.tsv"
    conda:
        train_env
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        ckpt_dir=checkpoint_dir,
    script:
        "../scripts/train_shard.py"


# Per-size LR sweep (lr_sweep_scope: size): the sweep's shards train first; this job picks each
# width's best peak LR, which the width's other shards then train with (shard_tuning).
rule choose_lr:
    input:
        manifest=ancient("results/{study}/manifest.tsv"),
        shards=tuning_shard_results,
    output:
        "results/{study}/lr_choice.tsv",
    log:
        "logs/{study}/choose_lr.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/choose_lr.py"
