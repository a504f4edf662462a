"""What a repeated training point does to a generalising model (Jermyn's comment on Henighan et al. 2023).

Pandas only (the claims import it inside their checks). Every quantity is taken from the best seed of each cell
(``instances.selected``), as the figures draw it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LARGE_FRACTION = 0.5  # a feature (or the repeated point) counts as large from half the R = 1 model's max D_i


def best_rows(table: pd.DataFrame, instances: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """The rows of ``table`` that belong to each cell's selected instance (cells told apart by ``keys``)."""
    chosen = instances.loc[instances["selected"], [*keys, "seed"]].drop_duplicates()
    return table.merge(chosen, on=[*keys, "seed"], how="inner")


def repeated_share(point_dimensionality: float, repeat_count: int) -> float:
    """Dimensionality of the repeated point counted over its R identical copies: R D_t.

    Identical copies share one direction, so each copy's D_t is at most 1/R; R D_t is the share of the hidden space
    the point holds as a whole (at most 1), comparable with a feature's D_i and across R.
    """
    return repeat_count * point_dimensionality


def repetition_summary(instances: pd.DataFrame, features: pd.DataFrame, datapoints: pd.DataFrame,
                       fraction: float = LARGE_FRACTION) -> pd.DataFrame:
    """One row per repeat count R (best seed): how many features are large, how many the R = 1 model's count lost,
    the repeated point's share R D_t and norm, and the dimensionality of the feature lying most along the point.

    ``threshold`` = ``fraction`` x the largest D_i of the reference model (the smallest R, which must be 1): the
    features above it are the generalising ones (the pentagon at m = 2); ``point_large`` says whether the repeated
    point's share clears the same bar, i.e. whether it is embedded like a feature. ``aligned_dimensionality`` is
    D_i of the feature with the largest projection W_i . h_hat onto the repeated point's direction: the feature whose
    place the point takes.
    """
    counts = sorted(instances["repeat_count"].unique())
    if counts[0] != 1:
        raise ValueError(f"the reference repeat_count must be 1, the grid's smallest is {counts[0]}")
    keys = ("repeat_count",)
    best_features = best_rows(features, instances, keys)
    best_points = best_rows(datapoints, instances, keys)
    threshold = fraction * float(best_features.loc[best_features["repeat_count"] == 1, "dimensionality"].max())
    rows = []
    for r in counts:
        f = best_features[best_features["repeat_count"] == r]
        point = best_points[(best_points["repeat_count"] == r) & (best_points["sample"] == 0)].iloc[0]
        direction = np.array([point["x"], point["y"]], float)
        direction = direction / max(float(np.linalg.norm(direction)), 1e-30)
        along = f["x"].to_numpy(float) * direction[0] + f["y"].to_numpy(float) * direction[1]
        share = repeated_share(float(point["dimensionality"]), int(r))
        rows.append({"repeat_count": int(r), "large_features": int((f["dimensionality"] >= threshold).sum()),
                     "repeated_share": share, "repeated_norm": float(point["norm"]), "point_large": share >= threshold,
                     "aligned_dimensionality": float(f["dimensionality"].to_numpy()[int(np.argmax(along))]),
                     "threshold": threshold})
    summary = pd.DataFrame(rows)
    summary["features_lost"] = int(summary.loc[summary["repeat_count"] == 1, "large_features"].iloc[0]) - summary["large_features"]
    return summary
