# Stage 3: per-cell metrics into Parquet; stage 4: one Parquet per grid and table.
for _study, _module in STUDIES.items():

    rule:
        name:
            f"measure_{_study}"
        input:
            data=lambda wc, study=_study: dataset_file(study, cell_of(study, wc)),
            model=f"results/{_study}/cells/{{cell}}/model.safetensors",
            checkpoints=f"results/{_study}/cells/{{cell}}/checkpoints.safetensors",
            code=code_files(_study, "measure"),
        output:
            **{
                table: f"results/{_study}/cells/{{cell}}/{table}.parquet"
                for table in _module.TABLES
            },
        log:
            f"results/{_study}/cells/{{cell}}/measure.log",
        benchmark:
            f"results/{_study}/cells/{{cell}}/measure.benchmark.tsv"
        group:
            "cell"
        conda:
            CONDA_ENV
        resources:
            mem_mb=cell_resource(_study, "mem_mb"),
            runtime=30,
        params:
            study=_study,
            values=lambda wc, study=_study: cell_of(study, wc).params,
            seeds=lambda wc, study=_study, module=_module: cell_of(
                study, wc
            ).instance_seeds(module.SEED_KEYS),
        script:
            "../scripts/measure.py"

    rule:
        name:
            f"collect_{_study}"
        input:
            **{
                table: (
                    lambda wc, study=_study, table=table: cell_artifacts(
                        study, wc.grid, f"{table}.parquet"
                    )
                )
                for table in (*_module.TABLES, "history")
            },
            code=code_files(_study, "collect"),
        output:
            **{
                table: f"results/{_study}/{{grid}}/{table}.parquet"
                for table in (*_module.TABLES, "history")
            },
            index=f"results/{_study}/{{grid}}/{INDEX_TABLE}.parquet",
        log:
            f"results/{_study}/{{grid}}/collect.log",
        localrule: True
        conda:
            CONDA_ENV
        params:
            study=_study,
            columns=lambda wc, study=_study, module=_module: [
                module.cell_columns(c.params, c.swept)
                for c in cells_of(study, wc.grid)
            ],
            homes=lambda wc, study=_study: [
                (c.path, f"results/{c.directory}") for c in cells_of(study, wc.grid)
            ],
        script:
            "../scripts/collect.py"
