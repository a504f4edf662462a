# Stage 6: every study's published claims judged on its collected tables, one scorecard for the run.
from toymodels.claims import study_claims

# study -> the grids its claims read that this config has (a claim whose grid is missing is "not measured");
# studies without a claims module contribute no rows.
CLAIM_GRIDS = {}
for _study, _study_cfg in config["studies"].items():
    _claims = study_claims(_study)
    if _claims:
        _read = dict.fromkeys(grid for claim in _claims for grid in claim.grids)
        CLAIM_GRIDS[_study] = [grid for grid in _read if grid in _study_cfg["grids"]]
CLAIMS_FILES = [f"results/claims.{ext}" for ext in ("parquet", "md", "rst", "json")]


rule claims:
    input:
        tables=[
            path
            for study, grids in CLAIM_GRIDS.items()
            for grid in grids
            for path in collected_tables(study, grid)
        ],
        code=sorted(
            {path for study in CLAIM_GRIDS for path in code_files(study, "claims")}
        ),
    output:
        table="results/claims.parquet",
        markdown=report(
            "results/claims.md",
            caption="../report/claims.rst",
            category="claims",
        ),
        rst="results/claims.rst",
        provenance="results/claims.json",
    log:
        "results/claims.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        grids=CLAIM_GRIDS,
        figures=list(FIGURES),
    script:
        "../scripts/claims.py"
