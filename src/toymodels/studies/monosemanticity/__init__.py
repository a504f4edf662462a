"""Engineering monosemanticity in toy models (Jermyn, Schiefer, Hubinger 2022) and its readers' follow-ups."""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from toymodels import tables
from toymodels.studies import LazyExports

DATA_KEYS = ("n_features", "d", "frequencies", "eps", "task", "eval_size", "data_seed")
SEED_KEYS = (*DATA_KEYS, "k")  # initialisation and batch seeds: shapes and data only (grid.Cell.instance_seeds)
TABLES = ("instances", "neurons", "features", "trajectory", "sfa")
PLOTS: dict[str, tuple[str, ...]] = {
    "training_curves": ("sweep",),
    "final_mono": ("sweep",),
    "bias": ("sweep",),
    "sfa_heatmap": ("sweep",),
    "feature_status": ("sweep",),
    "bias_init": ("bias_init",),
    "sparse_training": ("sparse",),
    "lottery": ("lottery",),
}
POSITIVE_BIAS = 0.05  # the paper's proxy for its residual polysemantic neurons (Figs. 10-11): b1 > 0.05
KEY_COLUMNS = ("n_features", "d", "k", "frequencies", "eps", "task", "nonlinearity", "lr", "bias_offset", "bias_decay")

cell_columns = partial(tables.cell_columns, KEY_COLUMNS)
__getattr__ = LazyExports(__name__, make_dataset="data", train_model="fit", measure_cell="measure")


def updates(params: Mapping[str, Any]) -> int:
    """Optimiser updates of one cell: steps, plus (steps - rewind_step) per pruning round."""
    rounds = int(params["prune_rounds"]) if params["pruning"] != "none" else 0
    return int(params["steps"]) + rounds * (int(params["steps"]) - int(params["rewind_step"]))


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell. Memory: the [I, B, k] and [I, B, out] activations (x4 for autograd) and the
    [I, k, N] single-feature activations. Runtime: 6 flop per multiply-add of the two layers at 20 Gflop/s (one loaded
    CPU core) plus 4 ms of per-update overhead (measured on 2 shared cores), doubled, with a 5-minute floor."""
    seeds, batch, k = int(params["n_seeds"]), int(params["batch_size"]), int(params["k"])
    n, d = int(params["n_features"]), int(params["d"])
    out = d if params["task"] == "reproject" else n
    mem_mb = 1000 + 4 * seeds * (4 * batch * (k + out) + 2 * k * n + int(params["eval_size"]) * (k + out)) // 2**20
    per_update = 6 * seeds * batch * k * (d + out) / 20e9 + 4e-3
    return {"mem_mb": int(mem_mb), "runtime": int(max(5, 2 * updates(params) * per_update / 60))}
