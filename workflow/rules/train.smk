# One job per shard: a group of runs trained in one process (batched on GPU, in turn on CPU).
# ancient(): rewriting the manifest must not retrain shards; shard ids already change with
# their members' parameters.
rule train_shard:
    input:
        manifest=ancient("results/{study}/manifest.tsv"),
        corpus=study_corpus,
    output:
        "results/{study}/shards/{shard}.nc",
    log:
        "logs/{study}/train/{shard}.log",
    benchmark:
        "results/{study}/benchmarks/train_{shard}.tsv"
    conda:
        train_env
    threads: 1
    params:
        ckpt_dir=checkpoint_dir,
    script:
        "../scripts/train_shard.py"
