# Stage 1: datasets, shared by every cell that agrees on the study's DATA_KEYS.
for _study in STUDIES:

    rule:
        name:
            f"dataset_{_study}"
        input:
            unpack(lambda wc, study=_study: upstream_files(study, wc.data)),
            code=code_files(_study, "dataset"),
        output:
            f"results/{_study}/datasets/{{data}}/data.safetensors",
        log:
            f"results/{_study}/datasets/{{data}}/dataset.log",
        conda:
            CONDA_ENV
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            study=_study,
            values=lambda wc, study=_study: DATASETS[(study, wc.data)],
        script:
            "../scripts/dataset.py"
