"""Config grids -> cells: swept values, readable cell paths, merged hyperparameters, derived seeds, and the cell's home
(the directory its artifacts live in, named by its hyperparameters alone)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT_CELL = "default"
CELLS_DIRECTORY = "cells"


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


def home_values(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters that differ from the study's defaults, in key order: what names a cell's home."""
    return {key: params[key] for key in sorted(params)
            if key not in defaults or canonical_json(params[key]) != canonical_json(defaults[key])}


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.+-]+")
MAX_HOME_LENGTH = 160
HOME_SEPARATOR = "__"


def home_name(values: Mapping[str, Any]) -> str:
    """The one directory name of a cell's home: ``key=value`` of its values off the defaults, joined by
    ``HOME_SEPARATOR`` (``T=4__m=3``; ``default`` when none; not a comma, which Snakemake's job specs split wildcards
    on). A list, a mapping or text that is not path-safe shows as ``key=~<8 hex>`` of its JSON; a name over
    ``MAX_HOME_LENGTH`` characters becomes ``~<12 hex>`` of all of them (the grid index ``cells.parquet`` maps every
    cell to its home)."""
    if not values:
        return DEFAULT_CELL
    parts = []
    for key, value in values.items():
        plain = isinstance(value, (bool, int, float)) or (isinstance(value, str) and _PLAIN_TEXT.fullmatch(value))
        parts.append(f"{key}={format_value(value) if plain else '~' + _digest(value, 8)}")
    name = HOME_SEPARATOR.join(parts)
    return name if len(name) <= MAX_HOME_LENGTH else f"~{_digest(values, 12)}"


def _digest(value: Any, length: int) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Cell:
    """One point of a grid: the swept values (in path order), the full merged hyperparameters, and those of them
    that differ from the study's defaults (``home_values``), which name its home."""

    study: str
    grid: str
    swept: dict[str, Any]
    params: dict[str, Any] = field(hash=False)
    off_defaults: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def path(self) -> str:
        return cell_path(self.swept)

    @property
    def home(self) -> str:
        return home_name(self.off_defaults)

    @property
    def directory(self) -> str:
        """Where the cell's artifacts live, under ``results/``: ``<study>/cells/<home>``. Cells with the same
        hyperparameters (the default point of several sweeps) share it whatever grids list them and in what order."""
        return f"{self.study}/{CELLS_DIRECTORY}/{self.home}"

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
            params = {**fixed, **swept}
            cells.append(Cell(study, grid, swept, params, home_values(params, defaults)))
    paths = [cell.path for cell in cells]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        raise ValueError(f"studies.{study}.grids.{grid}: cells {duplicated} appear more than once")
    return cells


def data_path(params: Mapping[str, Any], data_keys: tuple[str, ...]) -> str:
    """Path of the dataset a cell reads: only the keys that define the data, so cells share datasets. An optional
    data key left unset (null) is left out, so adding one to a study keeps its existing dataset paths."""
    return cell_path({key: params[key] for key in data_keys if params[key] is not None})


def study_cells(study: str, study_config: Mapping[str, Any]) -> dict[tuple[str, str], Cell]:
    """Every cell of a study's grids, keyed by (grid, cell path), in config order.

    Raises ValueError when two cells with different hyperparameters would share a home (values that print alike,
    such as ``1`` and ``1.0``).
    """
    cells = {
        (grid, cell.path): cell
        for grid, spec in study_config["grids"].items()
        for cell in grid_cells(study, grid, study_config["defaults"], spec)
    }
    homes: dict[str, Cell] = {}
    for cell in cells.values():
        other = homes.setdefault(cell.home, cell)
        if canonical_json(other.params) != canonical_json(cell.params):
            raise ValueError(f"studies.{study}.grids: {other.grid}/{other.path} and {cell.grid}/{cell.path} would share "
                             f"the home {cell.directory} with different hyperparameters; write their values alike")
    return cells
