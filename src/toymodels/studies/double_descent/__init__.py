"""Superposition, memorisation and double descent in the ReLU-output model (Henighan et al. 2023)."""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from toymodels import tables
from toymodels.studies import LazyExports

DATA_KEYS = ("n_features", "sparsity", "T", "data_seed", "repeat_count", "test_size")
SEED_KEYS = (*DATA_KEYS, "m")  # initialisation seeds: shapes and data only (grid.Cell.instance_seeds)
TABLES = ("instances", "features", "datapoints", "trajectory")
PLOTS: dict[str, tuple[str, ...]] = {
    "vectors": ("sweep",),
    "vectors_consistent": ("sweep",),
    "dimensionality": ("sweep",),
    "heatmap": ("sweep",),
    "regularisation": ("weight_decay", "training_length"),
    "generalising_scale": ("weight_decay", "sparsity"),
    "repeated": ("repeated",),
    "repeated_generalising": ("repeated",),
    "generalising_scale_by_m": ("weight_decay", "sparsity"),
    "post_generalisation": ("sweep",),
    "variants": ("variants",),
    "infinite_data": ("pentagon", "sparsity"),
}
KEY_COLUMNS = ("m", "T")

cell_columns = partial(tables.cell_columns, KEY_COLUMNS)
__getattr__ = LazyExports(__name__, make_dataset="data", train_model="model", measure_cell="measure")


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell.

    mem_mb = 1000 (interpreter + torch) + 3 x the dense train and test sets (float32; data, CSR copies, transposes)
    (evaluation works in ~4 MiB chunks); runtime (minutes) = twice 4 ns per instance x sample x feature x step
    (measured on one CPU thread; a GPU is far faster), at least 5.
    """
    n, seeds = int(params["n_features"]), int(params["n_seeds"])
    t = int(params["batch_size"]) if params["T"] is None else int(params["T"])  # infinite data: a fresh batch a step
    dense_bytes = 4 * n * (t + int(params["test_size"]))
    mem_mb = 1000 + 3 * dense_bytes // 2**20
    minutes = 4e-9 * seeds * t * n * int(params["steps"]) / 60
    return {"mem_mb": int(mem_mb), "runtime": int(max(5, 2 * minutes))}


def check_cell(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Infinite data (``T: null``) needs ``batch_size`` and has no repeated sample; ``batch_size`` and
    ``importance_decay`` belong to infinite data only (the finite cells' hand-derived gradients have no importances);
    ``huber_delta`` to ``loss: huber`` only."""
    if values.get("huber_delta") is not None and values.get("loss") != "huber":
        raise ValueError(f"huber_delta is only allowed with loss: huber; loss is {values.get('loss', 'mse')}")
    if values["T"] is None:
        if values.get("batch_size") is None:
            raise ValueError("T: null (infinite data) needs batch_size (an integer >= 1: fresh samples per step)")
        if int(values["repeat_count"]) != 1:
            raise ValueError(f"repeat_count must be 1 with T: null (infinite data), got {values['repeat_count']}")
        return
    for key in ("batch_size", "importance_decay"):
        if values.get(key) is not None:
            raise ValueError(f"{key} is only allowed with T: null (infinite data); T is {values['T']}")
