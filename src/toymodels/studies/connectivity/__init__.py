"""Loss-landscape connectivity between the cached models of other studies: paths, barriers, permutation and
orthogonal matching, monotonic linear interpolation, stitching, basin hopping and cross-seed universality."""

from __future__ import annotations

from functools import partial

from pathlib import Path
from typing import Any, Mapping

import torch

from toymodels.studies.connectivity import figures
from toymodels.studies.connectivity.bundle import DATA_KEYS, make_dataset, upstream
from toymodels.studies.connectivity.figures import PLOTS, draw
from toymodels.studies.connectivity.fit import train_connectivity
from toymodels.studies.connectivity.measure import TABLES, measure
from toymodels import tables
from toymodels.training import TrainResult

KEY_COLUMNS = ("source_study", "source_grid")

__all__ = ["DATA_KEYS", "TABLES", "PLOTS", "KEY_COLUMNS", "make_dataset", "upstream", "train", "measure", "draw",
           "resources", "cell_columns", "figures"]


cell_columns = partial(tables.cell_columns, KEY_COLUMNS)


def train(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device,
          resume_path: str | Path | None = None) -> TrainResult:
    """Stitches and basin hops (short, full-batch, CPU-sized; not resumable: they take seconds)."""
    return train_connectivity(params, data, seeds)


def resources(params: Mapping[str, Any]) -> dict[str, int]:
    """Scheduler request for one cell: the bundle (a few MB) and the evaluation splits fit in 2 GB; runtime 10 minutes
    covers (stitch_steps x 5 stitches + (hop_steps + settle_steps) x 2 x len(hop_lambdas) runs) full-batch updates of
    toy models on eval_samples samples, which take about 2 minutes at the default scale on one loaded CPU core."""
    return {"mem_mb": 2000, "runtime": 10}
