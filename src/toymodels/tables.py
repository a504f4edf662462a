"""Long-format tables: cell columns first, then the measured ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pandas is imported where tables are built: the workflow reads cell_columns at parse time
    import pandas as pd


def cell_columns(key_columns: tuple[str, ...], params: Mapping[str, Any], swept: Mapping[str, Any]) -> dict[str, Any]:
    """The columns every table of a cell carries: the study's key hyperparameters, then the swept values."""
    return {**{key: params[key] for key in key_columns}, **swept}


def with_cell_columns(table: pd.DataFrame, cell_values: Mapping[str, Any]) -> pd.DataFrame:
    """Prepend one constant column per swept (or identifying) value of the cell."""
    import pandas as pd

    front = pd.DataFrame({key: [value] * len(table) for key, value in cell_values.items()}, index=table.index)
    rest = table.drop(columns=[c for c in cell_values if c in table.columns])
    return pd.concat([front, rest], axis=1)


INDEX_TABLE = "cells"  # each grid's index, <grid>/cells.parquet: no study table may take the name


def cell_index(homes: Sequence[tuple[str, str]], columns: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A grid's index, one row per cell in grid order: ``cell`` (its path in the grid), ``directory`` (its home,
    from the working directory, where its model, checkpoints and per-cell tables live), then its cell columns."""
    import pandas as pd

    rows = [{"cell": cell, "directory": directory, **values} for (cell, directory), values in zip(homes, columns, strict=True)]
    return pd.DataFrame(rows)


def concat_tables(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-cell tables of one grid in cell order."""
    import pandas as pd

    non_empty = [t for t in tables if len(t.columns)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else pd.DataFrame()
