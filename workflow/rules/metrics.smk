rule assemble_cube:
    input:
        shard_results,
    output:
        "results/{study}/cube.nc",
    log:
        "logs/{study}/assemble_cube.log",
    benchmark:
        "results/{study}/benchmarks/assemble_cube.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/assemble_cube.py"
