"""Adapter: compute one cell's metrics from its cached model, checkpoints and dataset into Parquet tables
(measured columns only: the collect job prepends each grid's cell columns), with the code version in their metadata."""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from toymodels.artifacts import load_tensors, write_table
from toymodels.logs import log_to
from toymodels.provenance import stage_metadata
from toymodels.studies import load_study
from toymodels.training import unflatten_checkpoints

with log_to(snakemake.log[0]):
    study = load_study(snakemake.params.study)
    values, seeds = dict(snakemake.params["values"]), list(snakemake.params.seeds)
    data, _ = load_tensors(snakemake.input.data)
    model, _ = load_tensors(snakemake.input.model)
    checkpoints, _ = load_tensors(snakemake.input.checkpoints)
    tables = study.measure_cell(values, seeds, data, model, unflatten_checkpoints(checkpoints))
    code = stage_metadata(snakemake.params.study, "measure", snakemake.input.code, [snakemake.input.data, snakemake.input.model])
    for name, table in tables.items():
        write_table(snakemake.output[name], table, code)
