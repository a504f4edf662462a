"""Adapter: concatenate one grid's per-cell tables into one Parquet per table."""
from toymodels.artifacts import read_table, write_table
from toymodels.logs import log_to
from toymodels.tables import concat_tables

with log_to(snakemake.log[0]):
    for name, path in snakemake.output.items():
        write_table(path, concat_tables([read_table(p) for p in snakemake.input[name]]))
