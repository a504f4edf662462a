# Config validation and the lookups every stage shares: studies, cells, datasets, figures.
import os

from toymodels.config import ConfigError, load_config_file, load_schema, validate_config
from toymodels.grid import data_path, study_cells
from toymodels.tables import INDEX_TABLE
from toymodels.studies import load_study, stage_code

_SCHEMA = load_schema(
    os.path.join(workflow.current_basedir, "..", "schemas", "config.schema.yaml")
)
config.setdefault("device", "auto")
config.setdefault("threads", 1)
STUDIES = {
    name: load_study(name)
    for name in (config.get("studies") or {})
    if isinstance(name, str)
}
try:
    for _path in workflow.configfiles:
        load_config_file(_path)
    validate_config(
        config, _SCHEMA, {name: module.PLOTS for name, module in STUDIES.items()}
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# (study, grid, cell path) -> Cell, and (study, home) -> Cell: a cell's home, results/<study>/cells/<home>, is named by
# its hyperparameters alone, so grids sharing a cell train and measure it once, whatever their order;
# (study, dataset path) -> the data-defining values
CELLS = {}
HOMES = {}
DATASETS = {}
for _study, _study_cfg in config["studies"].items():
    try:
        _cells = study_cells(_study, _study_cfg)
    except ValueError as error:
        raise WorkflowError(str(error)) from None
    for (_grid, _path), _cell in _cells.items():
        CELLS[(_study, _grid, _path)] = _cell
        HOMES.setdefault((_study, _cell.home), _cell)
        _keys = STUDIES[_study].DATA_KEYS
        DATASETS[(_study, data_path(_cell.params, _keys))] = {
            k: _cell.params[k] for k in _keys
        }

FIGURES = {
    name: {"study": study, **figure}
    for study, study_cfg in config["studies"].items()
    for name, figure in (study_cfg.get("figures") or {}).items()
}


# The one software environment of every job (`--use-conda` builds it; otherwise the active .venv is used).
# Resolving it for every job costs a paper-config dry run ~1.5 s, but naming it only under --use-conda would leave
# `snakemake --lint` (and readers) without the rules' software environment.
CONDA_ENV = os.path.join(workflow.basedir, "environment.yml")


def code_files(study, stage):
    """The source files a stage of a study runs, as inputs of its rules: editing one reruns what it changes."""
    return [str(path) for path in stage_code(study, stage)]


def cells_of(study, grid):
    return [cell for (s, g, _), cell in CELLS.items() if s == study and g == grid]


def cell_of(study, wildcards):
    """The cell a train or measure job works on, from its home path."""
    key = (study, wildcards.cell)
    if key not in HOMES:
        raise WorkflowError(
            f"results/{study}/cells/{wildcards.cell} is not the home of a cell of this config"
        )
    return HOMES[key]


def cell_resource(study, key):
    """The job's value of ``key`` from the study's ``resources(params)`` for its cell, as a function of the wildcards."""
    return lambda wc: STUDIES[study].resources(cell_of(study, wc).params)[key]


def cell_artifacts(study, grid, name):
    """The per-cell file ``name`` of every cell of a grid, from each cell's home."""
    return [f"results/{c.directory}/{name}" for c in cells_of(study, grid)]


def dataset_file(study, cell):
    return f"results/{study}/datasets/{data_path(cell.params, STUDIES[study].DATA_KEYS)}/data.safetensors"


def upstream_files(study, data):
    """Other studies' artifacts a study's dataset is built from: its optional ``upstream(values, config)``.

    A study that reads cached results of other studies (their models, checkpoints, datasets, tables) declares them
    here, so they are inputs of its dataset job: Snakemake builds them once and never retrains them for this study.
    """
    study_module = STUDIES[study]
    return (
        study_module.upstream(DATASETS[(study, data)], config)
        if hasattr(study_module, "upstream")
        else {}
    )


# A missing source grid or cell fails here, at parse time, with the study's own message; so does a cell that fails
# its study's optional ``check_cell(values, config)``.
for _study, _data in DATASETS:
    try:
        upstream_files(_study, _data)
    except ValueError as error:
        raise WorkflowError(f"studies.{_study}: {error}") from None
for (_study, _home), _cell in HOMES.items():
    try:
        getattr(STUDIES[_study], "check_cell", lambda values, config: None)(
            _cell.params, config
        )
    except ValueError as error:
        raise WorkflowError(f"studies.{_study} (cell {_home}): {error}") from None


def collected_tables(study, grid):
    return [
        f"results/{study}/{grid}/{table}.parquet"
        for table in (*STUDIES[study].TABLES, "history")
    ]


def training_gpus(wildcards=None):
    return 1 if config["device"] == "cuda" else 0


COLLECTED_TABLES = sorted(
    {
        path
        for study, study_cfg in config["studies"].items()
        for grid in study_cfg["grids"]
        for path in collected_tables(study, grid)
    }
)
FIGURE_FILES = [
    f"results/figures/{name}.{ext}"
    for name in FIGURES
    for ext in ("png", "pdf", "json")
]


wildcard_constraints:
    grid="[A-Za-z0-9_]+",
    cell=".+",
    data=".+",
