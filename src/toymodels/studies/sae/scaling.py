"""How the steps to an MMCS threshold scale with d: one point per run of the scaling grid and a power-law fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from toymodels.claims import Tables
from toymodels.studies.sae import THRESHOLDS, threshold_column
from toymodels.studies.sae.metrics import PowerLaw, power_law_fit


def scaling_points(tables: Tables, threshold: float) -> pd.DataFrame:
    """One row per run (init, d, seed) of the scaling grid, the smallest alpha of each cell: ``steps`` to
    ``threshold`` (the instances table's column; NA = not reached)."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold}")
    rows = _one_alpha_per_cell(tables["scaling"]["instances"])
    return rows[["init", "d", "n_features", "seed", threshold_column(threshold)]].rename(
        columns={threshold_column(threshold): "steps"})


def _one_alpha_per_cell(instances: pd.DataFrame) -> pd.DataFrame:
    """The smallest alpha of each scenario (a scaling grid scales alpha with d, so each cell has its own)."""
    smallest = instances.groupby("scenario")["alpha"].transform("min")
    return instances[np.isclose(instances["alpha"], smallest)]


def scaling_fit(points: pd.DataFrame, init: str, min_points: int = 3) -> PowerLaw | None:
    """Least-squares power law of steps against d for one init over the d at which every seed reached the threshold
    (each run one point); None with fewer than ``min_points`` such d."""
    kept = points[(points["init"] == init) & points["d"].isin(reached_everywhere(points, init))]
    if kept["d"].nunique() < min_points:
        return None
    return power_law_fit(kept["d"].astype(float), kept["steps"].astype(float))


def reached_everywhere(points: pd.DataFrame, init: str) -> list[int]:
    """The d (ascending) at which every seed of ``init`` reached the threshold."""
    complete = points[points["init"] == init].groupby("d")["steps"].apply(lambda s: bool(s.notna().all()))
    return [int(d) for d in complete[complete].index]
