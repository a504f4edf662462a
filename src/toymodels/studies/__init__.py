"""Studies: each exposes the same few names to the workflow's adapters.

- ``DATA_KEYS``: hyperparameters that define the dataset (cells that agree on them share it).
- ``TABLES``: the per-cell Parquet tables written by ``measure`` (collected per grid, with ``history``).
- ``make_dataset(params) -> dict[str, Tensor]``.
- ``train(params, data, seeds, device, resume_path) -> TrainResult``.
- ``measure(params, swept, seeds, data, model, checkpoints) -> dict[str, DataFrame]``.
- ``resources(params) -> {"mem_mb": int, "runtime": minutes}``: what a training job asks a scheduler for.
- ``PLOTS: dict[plot, tuple[role, ...]]`` and ``draw(plot, tables, options) -> Figure``, with
  ``tables[role][table]`` the collected DataFrames of the grid given for that role.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

STUDY_NAMES = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))


def load_study(name: str) -> ModuleType:
    if name not in STUDY_NAMES:
        raise ValueError(f"unknown study {name!r}; allowed values: {list(STUDY_NAMES)}")
    return importlib.import_module(f"toymodels.studies.{name}")
