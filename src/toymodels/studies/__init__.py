"""Studies: each exposes the same few names to the workflow's adapters.

A study package's ``__init__`` is light (no torch, no matplotlib): the Snakemake process and every job read
its constants without paying for the heavy imports, which only the stage that needs them loads.

- ``DATA_KEYS``: hyperparameters that define the dataset (cells that agree on them share it).
- ``TABLES``: the per-cell Parquet tables written by ``measure`` (collected per grid, with ``history``).
- ``PLOTS: dict[plot, tuple[role, ...]]``: each plot is drawn by the function of that name in the study's
  ``figures`` module, called as ``plot(tables, options)`` with ``tables[role][table]`` the collected DataFrames of
  the grid given for that role (see :func:`draw`).
- ``KEY_COLUMNS`` and ``cell_columns(params, swept) -> dict``: the columns the collect job prepends to every grid table.
- ``resources(params) -> {"mem_mb": int, "runtime": minutes}``: what a training job asks a scheduler for.
- optional ``upstream(values, config) -> {name: [path, ...]}``: other studies' artifacts the dataset job reads.
- heavy entry points, imported on first use through :class:`LazyExports`:
  ``make_dataset(params[, inputs]) -> dict[str, Tensor]``,
  ``train_model(params, data, seeds, device, resume_path) -> TrainResult`` and
  ``measure_cell(params, seeds, data, model, checkpoints) -> dict[str, DataFrame]``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from toymodels.provenance import source_files

STUDY_NAMES = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))


def load_study(name: str) -> ModuleType:
    if name not in STUDY_NAMES:
        raise ValueError(f"unknown study {name!r}; allowed values: {list(STUDY_NAMES)}")
    return importlib.import_module(f"toymodels.studies.{name}")


class LazyExports:
    """A study package's module-level ``__getattr__``: ``name`` is imported from ``package.<modules[name]>`` on first
    use, so reading the package's constants never imports torch, scikit-learn or matplotlib. An exported name must not
    be a submodule's name: importing that submodule would set the package attribute to the module itself."""

    def __init__(self, package: str, **modules: str) -> None:
        clashes = sorted(set(modules) & _submodules(package))
        if clashes:
            raise ValueError(f"{package}: exported names {clashes} are also submodule names")
        self.package, self.modules = package, modules

    def __call__(self, name: str) -> Any:
        if name not in self.modules:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{self.package}.{self.modules[name]}"), name)


def _submodules(package: str) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(importlib.import_module(package).__path__)}


STAGES = ("dataset", "train", "measure", "collect", "figures", "claims")


@functools.cache
def stage_code(study: str, stage: str) -> tuple[Path, ...]:
    """The source files one stage of a study runs, found without importing them (:func:`toymodels.provenance.source_files`
    from the stage's entry modules: the modules of ``make_dataset``, ``train_model`` and ``measure_cell``, the shared
    ``toymodels.tables``, the study's ``figures`` with ``toymodels.plotting``, its ``claims`` with
    ``toymodels.scorecard``). They are inputs of the stage's rules, so editing one reruns what it changes."""
    package = load_study(study)
    exports = package.__getattr__.modules
    entries = {
        "dataset": [f"{package.__name__}.{exports['make_dataset']}"],
        "train": [f"{package.__name__}.{exports['train_model']}"],
        "measure": [f"{package.__name__}.{exports['measure_cell']}"],
        "collect": ["toymodels.tables"],
        "figures": [f"{package.__name__}.figures", "toymodels.plotting"],
        "claims": [f"{package.__name__}.claims", "toymodels.scorecard"],
    }
    if stage not in entries:
        raise ValueError(f"unknown stage {stage!r}; allowed values: {list(STAGES)}")
    return source_files(*entries[stage])


def draw(study: str, plot: str, tables: Mapping[str, Mapping[str, Any]], options: Mapping[str, Any]) -> Any:
    """The matplotlib Figure of ``plot``, drawn in the house style by the function of that name in the study's
    ``figures`` module."""
    plots = load_study(study).PLOTS
    if plot not in plots:
        raise ValueError(f"unknown plot {plot!r} of {study}; allowed values: {sorted(plots)}")
    figures = importlib.import_module(f"toymodels.studies.{study}.figures")
    from toymodels.plotting import house_style

    with house_style():
        return getattr(figures, plot)(tables, options)
