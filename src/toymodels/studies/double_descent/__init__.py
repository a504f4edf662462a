"""Superposition, memorisation and double descent in the ReLU-output model (Henighan et al. 2023)."""

from __future__ import annotations

from functools import partial

from pathlib import Path
from typing import Any, Mapping

import torch

from toymodels.studies.double_descent import figures
from toymodels.studies.double_descent.data import DATA_KEYS, load_dataset, make_dataset
from toymodels.studies.double_descent.figures import PLOTS, draw
from toymodels.studies.double_descent.measure import TABLES, measure
from toymodels.studies.double_descent.model import CHUNK_ELEMENTS, train_model
from toymodels import tables
from toymodels.training import TrainResult

KEY_COLUMNS = ("m", "T")

__all__ = ["DATA_KEYS", "TABLES", "PLOTS", "KEY_COLUMNS", "make_dataset", "train", "measure", "draw",
           "resources", "cell_columns", "figures"]


cell_columns = partial(tables.cell_columns, KEY_COLUMNS)


def train(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device,
          resume_path: str | Path | None = None) -> TrainResult:
    x_train, _ = load_dataset(data, device)
    return train_model(params, x_train, seeds, resume_path=resume_path)


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell.

    mem_mb = 1000 (interpreter + torch) + 3 x the dense train and test sets (float32; data, CSR copies, transposes)
    + 4 x the 64 MiB evaluation chunks; runtime (minutes) = twice 4 ns per instance x sample x feature x step
    (measured on one CPU thread; a GPU is far faster), at least 5.
    """
    n, t, seeds = int(params["n_features"]), int(params["T"]), int(params["n_seeds"])
    dense_bytes = 4 * n * (t + int(params["test_size"]))
    mem_mb = 1000 + (3 * dense_bytes + 4 * 4 * CHUNK_ELEMENTS) // 2**20
    minutes = 4e-9 * seeds * t * n * int(params["steps"]) / 60
    return {"mem_mb": int(mem_mb), "runtime": int(max(5, 2 * minutes))}
