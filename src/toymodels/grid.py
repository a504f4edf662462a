"""Config grids -> cells: swept values, readable cell paths, merged hyperparameters, derived seeds."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT_CELL = "default"


def format_value(value: Any) -> str:
    """Render one swept value the way it appears in a cell path (``0.001``, ``1e-05``, ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def cell_path(swept: Mapping[str, Any]) -> str:
    """``{"m": 2, "T": 1000}`` -> ``"m=2/T=1000"``; a grid with nothing swept has the one cell ``default``."""
    if not swept:
        return DEFAULT_CELL
    return "/".join(f"{key}={format_value(value)}" for key, value in swept.items())


def canonical_json(value: Any) -> str:
    """A stable text form of plain config values, used for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across runs, machines and Python versions)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class Cell:
    """One point of a grid: the swept values (in path order) and the full merged hyperparameters."""

    study: str
    grid: str
    swept: dict[str, Any]
    params: dict[str, Any] = field(hash=False)

    @property
    def path(self) -> str:
        return cell_path(self.swept)

    @property
    def directory(self) -> str:
        return f"{self.study}/{self.grid}/{self.path}"

    def instance_seeds(self, seed_keys: tuple[str, ...]) -> list[int]:
        """Initialisation seed of every instance, from the study's ``seed_keys`` (those that fix shapes and data) and
        the instance index only: cells that differ in training settings (learning rate, bias offset, decay, steps,
        logging) start from the same weights and compare pairwise; adding seeds keeps the old ones."""
        base = {key: self.params[key] for key in seed_keys}
        return [derive_seed(self.study, "init", base, index) for index in range(int(self.params["n_seeds"]))]


def grid_cells(study: str, grid: str, defaults: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Cell]:
    """Expand one grid: the cartesian product of ``sweep``, times each entry of ``cases``, over ``defaults`` + ``set``.

    Path keys are the sweep keys in config order, then the keys of the cases.
    """
    sweep: Mapping[str, list] = spec.get("sweep", {}) or {}
    cases: list[Mapping[str, Any]] = spec.get("cases") or [{}]
    fixed = {**defaults, **(spec.get("set") or {})}
    cells = []
    for values in itertools.product(*sweep.values()):
        for case in cases:
            swept = {**dict(zip(sweep.keys(), values)), **case}
            cells.append(Cell(study, grid, swept, {**fixed, **swept}))
    paths = [cell.path for cell in cells]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        raise ValueError(f"studies.{study}.grids.{grid}: cells {duplicated} appear more than once")
    return cells


def data_path(params: Mapping[str, Any], data_keys: tuple[str, ...]) -> str:
    """Path of the dataset a cell reads: only the keys that define the data, so cells share datasets."""
    return cell_path({key: params[key] for key in data_keys})


def study_cells(study: str, study_config: Mapping[str, Any]) -> dict[tuple[str, str], Cell]:
    """Every cell of a study's grids, keyed by (grid, cell path), in config order."""
    return {
        (grid, cell.path): cell
        for grid, spec in study_config["grids"].items()
        for cell in grid_cells(study, grid, study_config["defaults"], spec)
    }


def home_cells(cells: Mapping[tuple[str, str], Cell]) -> dict[tuple[str, str], Cell]:
    """(grid, cell path) -> the cell whose artifacts serve it: the first cell, in config order, with the same
    hyperparameters. Grids that share a cell (e.g. the default point of several sweeps) train and measure it once."""
    first: dict[str, Cell] = {}
    return {key: first.setdefault(canonical_json(cell.params), cell) for key, cell in cells.items()}
