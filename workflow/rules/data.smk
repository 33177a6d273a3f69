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
    input:
        dataset_inputs,
    output:
        "results/{study}/data/{dataset}.nc",
    log:
        "logs/{study}/data/{dataset}.log",
    priority: 1
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        cache_dir=download_cache,
        fingerprint=study_fingerprint,
    script:
        "../scripts/prepare_dataset.py"


# Token corpus of the transformer studies: a synthetic grammar (offline, deterministic), local
# UTF-8 text, or one verified download; tokenised to memory-mapped arrays plus metadata.
rule prepare_corpus:
    output:
        train="results/{study}/corpus/train.npy",
        val="results/{study}/corpus/val.npy",
        meta="results/{study}/corpus/meta.json",
    log:
        "logs/{study}/prepare_corpus.log",
    conda:
        "../../envs/train.yaml"
    params:
        cache_dir=download_cache,
        fingerprint=corpus_fingerprint,
    script:
        "../scripts/prepare_corpus.py"
