"""Sparse autoencoders on toy data with a known dictionary, and how to initialise the dictionary
(Sharkey, Braun, Millidge 2022; Peigne 2023)."""

from __future__ import annotations

from typing import Any, Mapping

from toymodels import tables
from toymodels.studies import LazyExports
from toymodels.studies.sae.instances import dict_size, instance_specs

DATA_KEYS = ("d", "n_features", "active_features", "prob_decay", "correlation", "data_seed", "eval_size")
SEED_KEYS = (*DATA_KEYS, "dict_ratio")  # the cell seeds (unused: initialisations derive their own, model.init_seeds)
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
}
KEY_COLUMNS = ("d", "n_features", "dict_ratio", "resample")
THRESHOLDS = (0.95, 0.98, 0.99)  # MMCS levels whose first-reaching step is a column of the instances table
LOF_NEIGHBORS = 250  # LocalOutlierFactor neighbours of rare_outlier unless a cell sets ``lof_neighbors`` (Peigne 2023)

__getattr__ = LazyExports(__name__, make_dataset="data", train_model="model", measure_cell="measure")


def threshold_column(threshold: float) -> str:
    """``steps_to_0.95`` for 0.95."""
    return f"steps_to_{threshold:g}"


def cell_columns(params: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """``scenario`` ("d/N"), d, n_features, dict_ratio and resample, then whatever the grid sweeps."""
    return {"scenario": f"{params['d']}/{params['n_features']}", **tables.cell_columns(KEY_COLUMNS, params, swept)}


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
    """Reject a cell whose ``lof_neighbors`` or ``centroid_clusters`` do not fit its ``init_sample_size``."""
    size = int(values["init_sample_size"])
    neighbors = int(values.get("lof_neighbors", LOF_NEIGHBORS))
    if neighbors >= size:
        raise ValueError(f"lof_neighbors ({neighbors}) must be less than init_sample_size ({size})")
    clusters = values.get("centroid_clusters")
    if clusters is not None and int(clusters) > size:
        raise ValueError(f"centroid_clusters ({clusters}) must be at most init_sample_size ({size})")
