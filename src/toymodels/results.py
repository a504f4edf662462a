"""Browse and load a results directory from Python.

``Results("results")`` lists studies, grids, tables and figures, loads a grid's table as a pandas DataFrame with its
column docs (``attrs["columns"]``), a cell's final weights or checkpoint by step, and a figure's provenance (README,
"Loading results in Python").
Every lookup that finds nothing names what exists. Tables are plain Parquet: pandas, polars, DuckDB and Arrow read the
same files (``Results.table_path`` gives the path).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toymodels.artifacts import load_tensors, read_metadata, read_table
from toymodels.provenance import CODE_KEY
from toymodels.tables import INDEX_TABLE

if TYPE_CHECKING:
    import pandas as pd
    import torch

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "studies"
NOT_STUDIES = ("figures",)  # folders of results/ that are not studies


class ResultsError(LookupError):
    """A study, grid, table, cell, step or figure that the results directory does not hold; says what it holds."""


def _choose(kind: str, name: str, where: str, available: list[str]) -> str:
    if name not in available:
        plural = "studies" if kind == "study" else f"{kind}s"
        raise ResultsError(f"no {kind} {name!r} in {where}; {plural}: {', '.join(available) or 'none'}")
    return name


EVERY_TABLE = "*"


def column_docs(markdown: str, tables: list[str]) -> dict[str, dict[str, str]]:
    """table -> column -> "unit: meaning", read from a study doc's Markdown tables that have a ``column`` header.

    A table's name comes from its ``table`` column when it has one (blank cells continue the row above), else from
    the nearest line above the table that names one of ``tables`` (`` `instances` ``, ``**instances**``,
    ``<grid>/instances.parquet``); rows under a line naming **every table** document columns of all tables
    (key ``"*"``). A row documenting several columns (`` `a`, `b` ``) documents each.
    """
    docs: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    current: str | None = None
    names = "|".join(map(re.escape, sorted(tables, key=len, reverse=True)))
    named = re.compile(rf"\*\*every table\*\*|(?:`|\*\*|/)({names})(?:\.parquet)?(?:`|\*\*)")
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            match = named.search(stripped) if stripped else None
            if match:
                current = match.group(1) or EVERY_TABLE
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", stripped.strip("|"))]
        if header is None:
            header = [cell.lower() for cell in cells]
            continue
        if set(stripped) <= set("|-: ") or "column" not in header:
            continue
        row = dict(zip(header, cells))
        if "table" in row:
            current = row["table"] or current
        if current not in (*tables, EVERY_TABLE):
            continue
        unit = next((row[key] for key in header if key.startswith("unit")), "")
        meaning = row.get("meaning", "").replace("\\|", "|")
        for column in re.findall(r"`([^`]+)`", row["column"]):
            docs.setdefault(current, {})[column] = f"{unit}: {meaning}" if unit and unit != "-" else meaning
    return docs


class Results:
    """One results directory (``results/`` of a run), read-only."""

    def __init__(self, directory: str | Path = "results") -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ResultsError(f"{self.directory} is not a directory; run `make figures` (or snakemake) first")

    def studies(self) -> list[str]:
        """Studies with at least one collected grid."""
        return sorted({p.parent.parent.name for p in self.directory.glob(f"*/*/{INDEX_TABLE}.parquet")} - set(NOT_STUDIES))

    def grids(self, study: str) -> list[str]:
        _choose("study", study, str(self.directory), self.studies())
        return sorted(p.parent.name for p in (self.directory / study).glob(f"*/{INDEX_TABLE}.parquet"))

    def tables(self, study: str, grid: str) -> list[str]:
        """The grid's collected tables (its index ``cells`` aside)."""
        _choose("grid", grid, study, self.grids(study))
        return sorted(p.stem for p in (self.directory / study / grid).glob("*.parquet") if p.stem != INDEX_TABLE)

    def table_path(self, study: str, grid: str, table: str) -> Path:
        return self.directory / study / grid / f"{_choose('table', table, f'{study}/{grid}', self.tables(study, grid))}.parquet"

    def table(self, study: str, grid: str, table: str) -> pd.DataFrame:
        """A grid's table; ``attrs["columns"]`` holds each documented column's "unit: meaning" (from
        ``docs/studies/<study>.md``), ``attrs["code_version"]`` the code that wrote it."""
        path = self.table_path(study, grid, table)
        frame = read_table(path)
        all_docs = self.column_docs(study)
        docs = {**all_docs.get(EVERY_TABLE, {}), **all_docs.get(table, {})}
        frame.attrs["columns"] = {column: docs[column] for column in frame.columns if column in docs}
        frame.attrs["code_version"] = read_metadata(path).get(CODE_KEY)
        return frame

    def column_docs(self, study: str) -> dict[str, dict[str, str]]:
        """table -> column -> documentation, from the study's doc page (empty outside a checkout)."""
        page = DOCS_DIR / f"{study}.md"
        if not page.exists():
            return {}
        from toymodels.studies import load_study

        return column_docs(page.read_text(), [*load_study(study).TABLES, "history"])

    def cells(self, study: str, grid: str) -> pd.DataFrame:
        """The grid's index: ``cell`` (its path in the grid), ``directory`` (its home), its cell columns."""
        _choose("grid", grid, study, self.grids(study))
        return read_table(self.directory / study / grid / f"{INDEX_TABLE}.parquet")

    def cell_directory(self, study: str, grid: str, cell: str) -> Path:
        """Where a cell's model, checkpoints, per-cell tables and logs are."""
        index = self.cells(study, grid)
        _choose("cell", cell, f"{study}/{grid}", index["cell"].tolist())
        home = Path(index.set_index("cell").loc[cell, "directory"])  # results/<study>/cells/<home>, from the workdir
        return self.directory.joinpath(*home.parts[1:])

    def steps(self, study: str, grid: str, cell: str) -> list[int]:
        """The steps the cell's checkpoints hold (0 and the last included)."""
        from toymodels.training import unflatten_checkpoints

        tensors, _ = load_tensors(self.cell_directory(study, grid, cell) / "checkpoints.safetensors")
        return sorted(unflatten_checkpoints(tensors))

    def model(self, study: str, grid: str, cell: str, step: int | None = None) -> dict[str, torch.Tensor]:
        """The cell's final weights (every seed on the leading axis), or its checkpoint at ``step``."""
        directory = self.cell_directory(study, grid, cell)
        if step is None:
            return load_tensors(directory / "model.safetensors")[0]
        from toymodels.training import unflatten_checkpoints

        checkpoints = unflatten_checkpoints(load_tensors(directory / "checkpoints.safetensors")[0])
        if step not in checkpoints:
            raise ResultsError(f"no checkpoint at step {step} in {study}/{grid}/{cell}; steps: {sorted(checkpoints)}")
        return checkpoints[step]

    def model_metadata(self, study: str, grid: str, cell: str) -> dict[str, Any]:
        """The cell's hyperparameters (``values``), ``off_defaults``, ``seeds`` and code version."""
        return read_metadata(self.cell_directory(study, grid, cell) / "model.safetensors")

    def figures(self) -> list[str]:
        return sorted(p.stem for p in (self.directory / "figures").glob("*.json"))

    def figure_path(self, figure: str, ext: str = "png") -> Path:
        return self.directory / "figures" / f"{_choose('figure', figure, str(self.directory), self.figures())}.{ext}"

    def provenance(self, figure: str) -> dict[str, Any]:
        """A figure's provenance: config entry, caption, code version, every input with its sha256 and code version."""
        return json.loads(self.figure_path(figure, "json").read_text())
