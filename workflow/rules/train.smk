# Stage 2: one training job per cell; all seeds of the cell train together as the instance axis.
# The longest cells (by the study's runtime estimate) start first, so that no long job is left running alone at the end.
for _study, _module in STUDIES.items():

    rule:
        name:
            f"train_{_study}"
        input:
            data=lambda wc, study=_study: dataset_file(study, cell_of(study, wc)),
            code=code_files(_study, "train"),
        output:
            model=f"results/{_study}/cells/{{cell}}/model.safetensors",
            checkpoints=f"results/{_study}/cells/{{cell}}/checkpoints.safetensors",
            history=f"results/{_study}/cells/{{cell}}/history.parquet",
        log:
            f"results/{_study}/cells/{{cell}}/train.log",
        benchmark:
            f"results/{_study}/cells/{{cell}}/train.benchmark.tsv"
        priority: cell_resource(_study, "runtime")
        group:
            "cell"
        conda:
            CONDA_ENV
        threads: config["threads"]
        resources:
            mem_mb=cell_resource(_study, "mem_mb"),
            runtime=cell_resource(_study, "runtime"),
            gpu=training_gpus,
        params:
            study=_study,
            values=lambda wc, study=_study: cell_of(study, wc).params,
            off_defaults=lambda wc, study=_study: cell_of(study, wc).off_defaults,
            seeds=lambda wc, study=_study, module=_module: cell_of(
                study, wc
            ).instance_seeds(module.SEED_KEYS),
            device=config["device"],
        script:
            "../scripts/train.py"
