"""Adapter: judge every study's claims on its collected tables; write the scorecard (Parquet, Markdown, reST) and
its provenance JSON."""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from toymodels.artifacts import read_table, write_json, write_table, write_text
from toymodels.logs import log_to
from toymodels.provenance import stage_metadata
from toymodels.scorecard import (
    provenance,
    render_markdown,
    render_rst,
    score,
    scorecard_table,
    table_paths,
)

with log_to(snakemake.log[0]):
    paths = table_paths(snakemake.input.tables)
    tables = {study: {grid: {name: read_table(path) for name, path in grid_paths.items()}
                      for grid, grid_paths in grids.items()} for study, grids in paths.items()}
    rows = score(dict(snakemake.params.grids), tables)
    write_table(snakemake.output.table, scorecard_table(rows), stage_metadata(None, "claims", snakemake.input.code, snakemake.input.tables))
    write_text(snakemake.output.markdown, render_markdown(rows))
    write_text(snakemake.output.rst, render_rst(rows, snakemake.params.figures))
    write_json(snakemake.output.provenance, provenance(
        dict(snakemake.params.grids), snakemake.input.tables, snakemake.input.code,
        [snakemake.output.table, snakemake.output.markdown, snakemake.output.rst]))
