"""Competing Fourier representations in modular addition (Ding, Guo, Michaud, Liu, Tegmark 2024)."""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

from toymodels import tables
from toymodels.studies import LazyExports

DATA_KEYS = ("p",)
SEED_KEYS = (*DATA_KEYS, "d", "hidden", "train_fraction")  # initialisation and split seeds (grid.Cell.instance_seeds)
TABLES = ("instances", "frequencies", "signals", "planes", "ode", "ode_matrix", "ablation")
PLOTS: dict[str, tuple[str, ...]] = {
    "signal_evolution": ("sweep",),
    "fourier_planes": ("sweep",),
    "survivors": ("sweep",),
    "fitness": ("fitness",),
    "ode": ("sweep",),
    "ablation": ("sweep",),
}
KEY_COLUMNS = ("p", "d")

cell_columns = partial(tables.cell_columns, KEY_COLUMNS)
__getattr__ = LazyExports(__name__, make_dataset="data", train_model="model", measure_cell="measure")


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell. Memory: ~8 [I, p^2, H]-sized activations and gradients (H >= p) at the
    dtype's width plus 1 GB for torch. Runtime: 20 ms per instance-step at p = 59, H = 100 on one CPU thread
    (measured 12-16 ms on a shared 2-core machine; float64 about twice that), scaled by p^2 H, doubled, 5-minute floor."""
    p, hidden, seeds, steps = int(params["p"]), int(params["hidden"]), int(params["n_seeds"]), int(params["steps"])
    width = 8 if params["dtype"] == "float64" else 4
    mem_mb = 1000 + 8 * seeds * p * p * max(hidden, p) * width // 2**20
    minutes = 0.02 * (width / 4) * seeds * steps * (p * p * hidden) / (59 * 59 * 100) / 60
    return {"mem_mb": int(mem_mb), "runtime": int(max(5, 2 * minutes))}
