"""Superposition, memorisation and double descent in the ReLU-output model (Henighan et al. 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from toymodels.studies.double_descent import figures
from toymodels.studies.double_descent.data import DATA_KEYS, load_dataset, make_dataset
from toymodels.studies.double_descent.figures import PLOTS, draw
from toymodels.studies.double_descent.measure import TABLES, measure
from toymodels.studies.double_descent.model import train_model
from toymodels.training import TrainResult

KEY_COLUMNS = ("m", "T")

__all__ = ["DATA_KEYS", "TABLES", "PLOTS", "KEY_COLUMNS", "make_dataset", "train", "measure", "draw",
           "resources", "cell_columns", "figures"]


def cell_columns(params: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """Columns every table of a cell carries: m and T, then whatever the grid sweeps."""
    return {**{key: params[key] for key in KEY_COLUMNS}, **swept}


def train(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device,
          resume_path: str | Path | None = None) -> TrainResult:
    x_train, _ = load_dataset(data, device)
    return train_model(params, x_train, seeds, resume_path=resume_path)


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell: memory ~ the [I, chunk, N] intermediates plus the dense train/test sets,
    runtime ~ 4 ns per instance x sample x feature x step (2-core CPU measurement) with a 5-minute floor."""
    n, t, seeds = int(params["n_features"]), int(params["T"]), int(params["n_seeds"])
    dense_bytes = 4 * n * (t + int(params["test_size"]))
    mem_mb = 1000 + (3 * dense_bytes + 4 * seeds * 4096 * n * 4) // 2**20
    minutes = 4e-9 * seeds * t * n * int(params["steps"]) / 60
    return {"mem_mb": int(mem_mb), "runtime": int(max(5, 2 * minutes))}
