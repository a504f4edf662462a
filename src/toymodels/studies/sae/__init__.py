"""Sparse autoencoders on toy data with a known dictionary, and how to initialise the dictionary
(Sharkey, Braun, Millidge 2022; Peigne 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from toymodels.studies.sae import figures
from toymodels.studies.sae.data import DATA_KEYS, make_dataset
from toymodels.studies.sae.figures import PLOTS, draw
from toymodels.studies.sae.measure import TABLES, measure
from toymodels.studies.sae.model import dict_size, instance_specs, train_model
from toymodels import tables
from toymodels.training import TrainResult

KEY_COLUMNS = ("d", "n_features", "dict_ratio", "resample")

__all__ = ["DATA_KEYS", "TABLES", "PLOTS", "KEY_COLUMNS", "make_dataset", "train", "measure", "draw",
           "resources", "cell_columns", "figures"]


def cell_columns(params: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """``scenario`` ("d/N"), d, n_features, dict_ratio and resample, then whatever the grid sweeps."""
    return {"scenario": f"{params['d']}/{params['n_features']}", **tables.cell_columns(KEY_COLUMNS, params, swept)}


def train(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device,
          resume_path: str | Path | None = None) -> TrainResult:
    """All instances of the cell at once. The cell's ``seeds`` are not used: initialisations are seeded from the
    dataset, M, the init and the seed index only (``model.init_seeds``), so cells that differ in training
    settings (alpha, resampling, steps) start from the same weights and compare pairwise."""
    return train_model(params, {name: tensor.to(device) for name, tensor in data.items()}, resume_path=resume_path)


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
