"""Adapter: concatenate one grid's per-cell tables into one Parquet per table, each row led by its cell's columns.

A cell shared with another grid is read from its home; the columns come from this grid's view of it. ``cells.parquet``
is the grid's index: each cell's path in the grid, its home directory and its cell columns.
Each table's metadata records the code version, with those of every cell table it was made from.
"""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from toymodels.artifacts import read_table, write_table
from toymodels.logs import log_to
from toymodels.provenance import stage_metadata
from toymodels.tables import cell_index, concat_tables, with_cell_columns

with log_to(snakemake.log[0]):
    columns = list(snakemake.params.columns)
    write_table(snakemake.output.index, cell_index(snakemake.params.homes, columns),
                stage_metadata(snakemake.params.study, "collect", snakemake.input.code, snakemake.input.history))
    for name, path in snakemake.output.items():
        if name == "index":
            continue
        cell_tables = [with_cell_columns(read_table(p), c) for p, c in zip(snakemake.input[name], columns, strict=True)]
        write_table(path, concat_tables(cell_tables), stage_metadata(snakemake.params.study, "collect", snakemake.input.code,
                                                                     snakemake.input[name]))
