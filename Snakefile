# toymodels: every figure of the toy-model studies from one command.
#   snakemake --cores 2 figures                         all figures of the selected config, and the claims scorecard
#   snakemake --cores 2 results/figures/<name>.png      one figure (or just: snakemake --cores 2 <name>)
# Configs: config/config.yaml (default, CPU-sized), config/paper.yaml (published scale, GPUs).


include: "workflow/Snakefile"


rule all:
    default_target: True
    input:
        FIGURE_FILES,
        CLAIMS_FILES,
        COLLECTED_TABLES,


rule figures:
    input:
        FIGURE_FILES,
        CLAIMS_FILES,
