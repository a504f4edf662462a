"""Loss-landscape connectivity between the cached models of other studies: paths, barriers, permutation and
orthogonal matching, basins, seed-pair barriers across a source sweep, trained curves (Bezier, polygonal chain),
monotonic linear interpolation, stitching, basin hopping and cross-seed universality."""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from toymodels import tables
from toymodels.grid import data_path, study_cells
from toymodels.studies import LazyExports, load_study

DATA_KEYS = ("source_study", "source_grid", "eval_samples", "stitch_samples", "bundle_checkpoints")
SEED_KEYS = DATA_KEYS  # seeds of the stitch and hop runs (grid.Cell.instance_seeds)
# What each analysis a cell can run (its ``analyses`` key) writes; every cell writes every table, empty if not run.
ANALYSIS_TABLES: dict[str, tuple[str, ...]] = {
    "matrix": ("pairs", "paths"),
    "basins": ("basins", "basin_counts"),
    "seed_pairs": ("seed_pairs",),
    "mli": ("mli", "mli_paths"),
    "curves": ("curves", "curve_paths"),
    "stitching": ("stitching",),
    "stitch_training": ("stitch_training",),
    "hopping": ("hopping",),
    "finetune": ("finetune",),
    "universality": ("universality",),
}
TABLES = tuple(table for tables_ in ANALYSIS_TABLES.values() for table in tables_)
PLOTS: dict[str, tuple[str, ...]] = {
    "paths": ("models",),
    "barrier_matrix": ("models",),
    "mli": ("monosemanticity", "double_descent"),
    "optimizers": ("models",),
    "noise": ("models",),
    "curves": ("models",),
    "basins": ("models",),
    "seed_pairs": ("models",),
    "stitching": ("models",),
    "stitch_training": ("models",),
    "hopping": ("models",),
    "finetune": ("models",),
    "universality": ("models",),
}
KEY_COLUMNS = ("source_study", "source_grid")

cell_columns = partial(tables.cell_columns, KEY_COLUMNS)
__getattr__ = LazyExports(__name__, make_dataset="bundle", train_model="fit", measure_cell="measure")


def source_cells(values: Mapping[str, Any], config: Mapping[str, Any]):
    """The source grid's cells (their ``directory`` is where the artifacts are), in cell order, expanded exactly as
    the source study's rules expand them."""
    study, grid = values["source_study"], values["source_grid"]
    block = (config.get("studies") or {}).get(study)
    if block is None:
        raise ValueError(f"source_study {study!r} is not in this config; add its block (grid {grid!r}) or drop the grid")
    if grid not in block["grids"]:
        raise ValueError(f"source_grid {grid!r} is not a grid of {study}; its grids: {sorted(block['grids'])}")
    return [cell for (cell_grid, _), cell in study_cells(study, block).items() if cell_grid == grid]


def check_cell(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Raise ValueError for a cell whose keys contradict each other or its source grid (run at parse time)."""
    sweep_key = values["sweep_key"]
    if sweep_key is not None:
        cells = source_cells(values, config)
        if any(isinstance(cell.params.get(sweep_key), bool) or not isinstance(cell.params.get(sweep_key), (int, float))
               for cell in cells):
            raise ValueError(f"sweep_key {sweep_key!r} must be a numeric hyperparameter of every "
                             f"{values['source_study']} cell of grid {values['source_grid']!r}")
    if "stitch_training" in values["analyses"] and not values["bundle_checkpoints"]:
        raise ValueError("analyses: stitch_training stitches the source models' checkpoints, so it needs "
                         "bundle_checkpoints: true")
    if "basins" in values["analyses"] and values["matrix_seeds"] != "all":
        raise ValueError("analyses: basins ties its threshold to the barriers between seeds of one source cell, so it "
                         f"needs matrix_seeds: all (got {values['matrix_seeds']!r})")


def upstream(values: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, list[str]]:
    """model, checkpoints, instances and data files of every source cell, in cell order (paths from the workdir)."""
    cells = source_cells(values, config)
    keys = load_study(values["source_study"]).DATA_KEYS
    base = [f"results/{cell.directory}" for cell in cells]
    return {
        "model": [f"{b}/model.safetensors" for b in base],
        "checkpoints": [f"{b}/checkpoints.safetensors" for b in base],
        "instances": [f"{b}/instances.parquet" for b in base],
        "data": [f"results/{cell.study}/datasets/{data_path(cell.params, keys)}/data.safetensors" for cell in cells],
    }


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell: the bundle (a few MB) and the evaluation splits fit in 2 GB; runtime 10 minutes
    covers (stitch_steps x 5 stitches + (hop_steps + settle_steps) x 2 x len(hop_lambdas) runs) full-batch updates of
    toy models on eval_samples samples and curve_steps minibatch updates of 12 curve bends, which take about 3 minutes
    at the default scale on one loaded CPU core."""
    return {"mem_mb": 2000, "runtime": 10}
