# The manifest is an input on purpose: it is rewritten whenever the grid changes, and that is
# what makes Snakemake rebuild a cube whose new shard files do not exist yet.
rule assemble_cube:
    input:
        manifest="results/{study}/manifest.tsv",
        shards=shard_results,
        datasets=study_datasets,
        corpus=study_corpus,
    output:
        "results/{study}/cube.nc",
    log:
        "logs/{study}/assemble_cube.log",
    benchmark:
        "results/{study}/benchmarks/assemble_cube.tsv"
    # before more training, so that a fit needing none (published) can start early (fit.smk)
    priority: 1
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fingerprint=study_fingerprint,
    script:
        "../scripts/assemble_cube.py"
