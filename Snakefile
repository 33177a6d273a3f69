# Scaling Atlas: data → training → cubes → law fits → figures → claims → report.
# Rules live in workflow/rules/ by stage and are generic over {study}; study logic lives in
# workflow/scaling_atlas/studies/. Run: `make run` (or `snakemake --cores 2`); see README.md.
from snakemake.utils import min_version

min_version("9.27")


configfile: "config/config.yaml"


# the image `make container` writes a Dockerfile for, once pushed (README "Conda and containers")
if config.get("container"):

    containerized: config["container"]


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets,
