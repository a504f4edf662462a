"""Adapter: draw one figure from collected tables; write PNG, PDF, the provenance JSON (with the code version of
every input and the figure's layout check) and the report caption (the figure's caption and its provenance)."""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from pathlib import Path

from toymodels.artifacts import read_table, write_json, write_text
from toymodels.logs import log_to
from toymodels.plotting import save_figure
from toymodels.provenance import figure_provenance, provenance_rst
from toymodels.studies import draw

with log_to(snakemake.log[0]):
    figure = dict(snakemake.params.figure)
    tables = {
        role: {Path(path).stem: read_table(path) for path in snakemake.input.tables if Path(path).parent.name == grid}
        for role, grid in figure["grids"].items()
    }
    drawn = draw(snakemake.params.study, figure["plot"], tables, figure.get("options") or {})
    layout = save_figure(drawn, snakemake.output.png, snakemake.output.pdf)
    record = figure_provenance(
        snakemake.rule,
        snakemake.params.study,
        {"figure": figure, "grids": dict(snakemake.params.grids)},
        snakemake.input.tables,
        snakemake.input.code,
        [snakemake.output.png, snakemake.output.pdf],
    )
    record["caption"] = Path(snakemake.params.caption).read_text()
    record["layout"] = layout
    write_json(snakemake.output.provenance, record)
    write_text(snakemake.output.caption, f"{record['caption'].rstrip()}\n\n{provenance_rst(record, snakemake.output.provenance)}")
