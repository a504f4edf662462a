# toymodels: every figure of the toy-model studies from one command.
#   snakemake --cores 2 figures                         all figures of the selected config, and the claims scorecard
#   snakemake --cores 2 results/figures/<name>.png      one figure (or just: snakemake --cores 2 <name>)
# Configs: config/config.yaml (default, CPU-sized), config/paper.yaml (published scale, GPUs).


include: "workflow/Snakefile"


# Collecting tables, drawing figures and judging claims take seconds: those rules (and these targets) are
# `localrule: True`, never sent to a cluster queue.
rule all:
    default_target: True
    input:
        FIGURE_FILES,
        CLAIMS_FILES,
        COLLECTED_TABLES,
    localrule: True


rule figures:
    input:
        FIGURE_FILES,
        CLAIMS_FILES,
    localrule: True
