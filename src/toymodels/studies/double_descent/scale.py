"""Where the generalising solution appears: the jump of the max feature dimensionality against T, per sweep value.

Light at import (the claims module, read at parse time, imports it): the functions take pandas DataFrames.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def generalising_onset(instances: pd.DataFrame, by: str) -> dict[Any, Any]:
    """Per value of ``by``: where the max feature dimensionality (mean over seeds, as drawn in the generalising-scale
    figure) jumps: the first T, from the curve's lowest point on, at which it reaches half of its highest value from
    there on. The curve is U-shaped: at the smallest T a few features present in the few data points already have a
    sizeable dimensionality (memorisation, not generalisation), so the jump is sought after the dip. None where the
    curve does not jump inside the grid: less than doubling after its dip, its half-maximum point is the dip itself."""
    curves = instances.groupby([by, "T"])["max_feature_dimensionality"].mean()
    onsets = {}
    for value, curve in curves.groupby(level=0):
        curve = curve.droplevel(0).sort_index()
        rising = curve.loc[curve.idxmin():]
        reached = rising[rising >= rising.max() / 2].index[0]
        onsets[value] = None if reached == rising.index[0] else reached
    return onsets


def onset_spread(instances: pd.DataFrame) -> dict[Any, Any]:
    """Per m: how far apart the sparsities' generalising onsets (:func:`generalising_onset`) lie in T(1-S), as
    log10(max / min) (0: the curves collapse onto one T(1-S)); None where a sparsity's curve does not jump inside the
    grid or only one sparsity jumps."""
    spreads = {}
    for m, part in instances.groupby("m"):
        onsets = generalising_onset(part, "sparsity")
        per_feature = [t * (1 - s) for s, t in onsets.items() if t is not None]
        usable = None not in onsets.values() and len(per_feature) > 1
        spreads[m] = float(math.log10(max(per_feature) / min(per_feature))) if usable else None
    return spreads


def post_onset_curves(instances: pd.DataFrame, by: str) -> dict[Any, pd.Series]:
    """Per value of ``by``: the max feature dimensionality (mean over seeds) against T from its generalising onset
    (:func:`generalising_onset`) on; empty where the curve does not jump inside the grid."""
    curves = instances.groupby([by, "T"])["max_feature_dimensionality"].mean()
    onsets = generalising_onset(instances, by)
    return {value: (curve.droplevel(0).sort_index().loc[onsets[value]:] if onsets[value] is not None
                    else curve.iloc[:0].droplevel(0)) for value, curve in curves.groupby(level=0)}
