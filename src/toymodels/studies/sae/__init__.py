"""Sparse autoencoders on toy data with a known dictionary, and how to initialise the dictionary
(Sharkey, Braun, Millidge 2022; Peigne 2023)."""

from __future__ import annotations

from typing import Any, Mapping

from toymodels import tables
from toymodels.grid import data_path, study_cells
from toymodels.studies import LazyExports, load_study
from toymodels.studies.sae.instances import dict_size, instance_specs

TOY_DATA_KEYS = ("d", "n_features", "active_features", "prob_decay", "correlation", "data_seed", "eval_size")
# ``activations``: null (toy data) or the monosemanticity model whose hidden activations are the inputs (data.py)
DATA_KEYS = (*TOY_DATA_KEYS, "activations")
SEED_KEYS = (*DATA_KEYS, "dict_ratio")  # the cell seeds (unused: initialisations derive their own, model.init_seeds)
ACTIVATION_STUDY = "monosemanticity"
TABLES = ("instances", "trace", "atoms")
PLOTS: dict[str, tuple[str, ...]] = {
    "mmcs_curves": ("inits",),
    "mmcs_initial": ("inits",),
    "rare_ratio": ("rare",),
    "resampling": ("resampling",),
    "alpha_dict": ("sweep",),
    "init_dict": ("sweep",),
    "resample_methods": ("methods", "baseline"),
    "feature_count": ("sweep",),
    "rare_tuning": ("methods", "tuning"),
    "d_scaling": ("scaling",),
    "activations": ("activations",),
}
KEY_COLUMNS = ("d", "n_features", "dict_ratio", "resample")
THRESHOLDS = (0.95, 0.98, 0.99)  # MMCS levels whose first-reaching step is a column of the instances table
LOF_NEIGHBORS = 250  # LocalOutlierFactor neighbours of rare_outlier unless a cell sets ``lof_neighbors`` (Peigne 2023)

__getattr__ = LazyExports(__name__, make_dataset="data", train_model="model", measure_cell="measure")


def data_identity(params: Mapping[str, Any]) -> dict[str, Any]:
    """The values that define a cell's data, for its seeds: ``activations`` is left out when null, so the toy-data
    cells keep the seeds (and numbers) they had before the key existed."""
    return {key: params[key] for key in DATA_KEYS if key != "activations" or params.get(key) is not None}


def activation_cell(values: Mapping[str, Any], config: Mapping[str, Any]):
    """The one monosemanticity cell that ``activations`` ({grid, where, seed}) names, expanded as that study's rules
    expand it; ValueError, naming the field, unless exactly one cell of the grid matches ``where``."""
    source = values["activations"]
    block = (config.get("studies") or {}).get(ACTIVATION_STUDY)
    if block is None:
        raise ValueError(f"activations reads a {ACTIVATION_STUDY} model, but this config has no {ACTIVATION_STUDY} block")
    if source["grid"] not in block["grids"]:
        raise ValueError(f"activations.grid {source['grid']!r} is not a grid of {ACTIVATION_STUDY}; "
                         f"its grids: {sorted(block['grids'])}")
    where = source.get("where") or {}
    cells = [cell for (grid, _), cell in study_cells(ACTIVATION_STUDY, block).items()
             if grid == source["grid"] and all(cell.params.get(k) == v for k, v in where.items())]
    if len(cells) != 1:
        raise ValueError(f"activations.where {where} matches {len(cells)} cells of {ACTIVATION_STUDY} grid "
                         f"{source['grid']!r}; it must pick exactly one")
    return cells[0]


def upstream(values: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The source model, its instances table and its dataset for an ``activations`` cell (paths from the workdir);
    nothing for toy data."""
    if values.get("activations") is None:
        return {}
    cell = activation_cell(values, config)
    keys = load_study(ACTIVATION_STUDY).DATA_KEYS
    return {"model": [f"results/{cell.directory}/model.safetensors"],
            "instances": [f"results/{cell.directory}/instances.parquet"],
            "data": [f"results/{cell.study}/datasets/{data_path(cell.params, keys)}/data.safetensors"]}


def _check_activation_source(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Raise ValueError (run at parse time) for an ``activations`` cell whose shapes contradict its source model:
    d must be the source's hidden width k and n_features its N; one ReLU hidden layer; seed below its n_seeds."""
    if values.get("activations") is None:
        return
    source = activation_cell(values, config).params
    wanted = {"d": source["k"], "n_features": source["n_features"]}
    for key, value in wanted.items():
        if int(values[key]) != int(value):
            raise ValueError(f"{key} must be {value} for activations of {values['activations']} (the source model's "
                             f"{'hidden width k' if key == 'd' else 'number of features N'}), got {values[key]}")
    if int(source["hidden_layers"]) != 1 or source["nonlinearity"] != "relu":
        raise ValueError("activations: the source model must have hidden_layers: 1 and nonlinearity: relu, got "
                         f"{source['hidden_layers']} and {source['nonlinearity']!r}")
    if not 0 <= int(values["activations"]["seed"]) < int(source["n_seeds"]):
        raise ValueError(f"activations.seed must be in 0 .. {int(source['n_seeds']) - 1} (the source cell's seeds), "
                         f"got {values['activations']['seed']}")


def activation_label(source: Mapping[str, Any] | None) -> str:
    """A readable column value for ``activations``: ``grid:key=value,...:seed`` ("" for toy data)."""
    if source is None:
        return ""
    where = ",".join(f"{k}={v}" for k, v in (source.get("where") or {}).items())
    return f"{source['grid']}:{where}:seed={source['seed']}"


def activation_title(label: str) -> str:
    """An ``activation_label`` over two lines for a panel title: "<grid> seed <i>" and "key=value, ..."."""
    grid, where, seed = label.split(":")
    return f"{grid} {seed.replace('=', ' ')}\n{where.replace(',', ', ')}"


def threshold_column(threshold: float) -> str:
    """``steps_to_0.95`` for 0.95."""
    return f"steps_to_{threshold:g}"


def cell_columns(params: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """``scenario`` ("d/N"), d, n_features, dict_ratio and resample, then whatever the grid sweeps (``activations``
    as its :func:`activation_label`)."""
    columns = {"scenario": f"{params['d']}/{params['n_features']}", **tables.cell_columns(KEY_COLUMNS, params, swept)}
    if "activations" in columns:
        columns["activations"] = activation_label(columns["activations"])
    return columns


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell (I instances, M latents, S seed streams of N features).

    Memory: parameters, gradients and two Adam moments (4 x 3 x I M d floats), the [I, B, M] step
    intermediates (x 6), the [I, 512, M] evaluation chunks (x 3) and the N x N correlation factor, plus 1 GB.
    Runtime: a step costs ~1e-5 s x M per instance plus ~1.5e-5 s x N per seed stream (batch 256, d = 128, one
    CPU thread; docs/studies/sae.md), doubled, with a 5-minute floor.
    """
    n_inst, m, d, n = len(instance_specs(params)), dict_size(params), int(params["d"]), int(params["n_features"])
    floats = 12 * n_inst * m * d + 6 * n_inst * int(params["batch_size"]) * m + 3 * n_inst * 512 * m + n * n
    seconds = int(params["steps"]) * (1e-5 * n_inst * m + 1.5e-5 * int(params["n_seeds"]) * n)
    return {"mem_mb": int(1000 + 4 * floats // 2**20), "runtime": int(max(5, 2 * seconds / 60))}


def check_cell(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Reject (at parse time) a cell whose ``lof_neighbors`` or ``centroid_clusters`` do not fit its
    ``init_sample_size``, or whose ``activations`` source contradicts it (:func:`_check_activation_source`)."""
    _check_activation_source(values, config)
    size = int(values["init_sample_size"])
    neighbors = int(values.get("lof_neighbors", LOF_NEIGHBORS))
    if neighbors >= size:
        raise ValueError(f"lof_neighbors ({neighbors}) must be less than init_sample_size ({size})")
    clusters = values.get("centroid_clusters")
    if clusters is not None and int(clusters) > size:
        raise ValueError(f"centroid_clusters ({clusters}) must be at most init_sample_size ({size})")
