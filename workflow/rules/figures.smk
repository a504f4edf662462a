# Stage 5: one rule per figure, named after it (`snakemake --cores 1 <figure name>` rebuilds just that figure). The
# report shows each PNG with the caption file the rule writes: the figure's caption from workflow/report/ followed by
# its provenance (a report caption path is taken relative to this file unless it is absolute).
for _name, _figure in FIGURES.items():
    _study = _figure["study"]

    rule:
        name:
            _name
        input:
            tables=[
                path
                for grid in _figure["grids"].values()
                for path in collected_tables(_study, grid)
            ],
            code=code_files(_study, "figures"),
        output:
            png=report(
                f"results/figures/{_name}.png",
                caption=os.path.abspath(f"results/figures/{_name}.rst"),
                category=_study,
                labels={"figure": _name},
            ),
            pdf=f"results/figures/{_name}.pdf",
            provenance=f"results/figures/{_name}.json",
            caption=f"results/figures/{_name}.rst",
        log:
            f"results/figures/{_name}.log",
        localrule: True
        conda:
            CONDA_ENV
        params:
            study=_study,
            figure=_figure,
            grids={
                role: config["studies"][_study]["grids"][grid]
                for role, grid in _figure["grids"].items()
            },
            caption=os.path.join(
                workflow.current_basedir,
                "..",
                "report",
                _study,
                f"{_figure['plot']}.rst",
            ),
        script:
            "../scripts/figure.py"
