# Stage 2: one training job per cell; all seeds of the cell train together as the instance axis.
for _study, _module in STUDIES.items():

    rule:
        name:
            f"train_{_study}"
        input:
            data=lambda wc, study=_study: dataset_file(study, cell_of(study, wc)),
        output:
            model=f"results/{_study}/{{grid}}/{{cell}}/model.safetensors",
            checkpoints=f"results/{_study}/{{grid}}/{{cell}}/checkpoints.safetensors",
            history=f"results/{_study}/{{grid}}/{{cell}}/history.parquet",
        log:
            f"results/{_study}/{{grid}}/{{cell}}/train.log",
        benchmark:
            f"results/{_study}/{{grid}}/{{cell}}/train.benchmark.tsv"
        group:
            "cell"
        conda:
            CONDA_ENV
        threads: config["threads"]
        resources:
            mem_mb=lambda wc, study=_study, module=_module: module.resources(
                cell_of(study, wc).params
            )["mem_mb"],
            runtime=lambda wc, study=_study, module=_module: module.resources(
                cell_of(study, wc).params
            )["runtime"],
            gpu=training_gpus,
        params:
            study=_study,
            values=lambda wc, study=_study: cell_of(study, wc).params,
            swept=lambda wc, study=_study: cell_of(study, wc).swept,
            seeds=lambda wc, study=_study, module=_module: cell_of(
                study, wc
            ).instance_seeds(module.SEED_KEYS),
            device=config["device"],
        script:
            "../scripts/train.py"
