"""Counting the features without ground truth (Sharkey, Braun, Millidge 2022): compare learned dictionaries of
consecutive sizes, trained at the same L1 coefficient.

A dictionary smaller than the number of features N learns mixtures of features that a larger dictionary does not
share; one at least N large learns the features themselves, which the next larger one also finds, and beyond N the
extra atoms die or duplicate. So the MMCS of a dictionary against the next larger one (the mean over the smaller
dictionary's atoms of their max cosine to the larger's) rises up to M = N and falls beyond it: the size at the peak
estimates N (Sharkey et al.'s rule). The other direction is computed beside it: the live atoms of the larger
dictionary (those that fire at all) against the smaller one, which rises once the smaller one holds every feature
(the larger one's atoms then find partners in it) - its peak is a second estimate, and the live atoms of the
largest dictionary a third count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from toymodels.studies.sae.metrics import mmcs

GROUP = ["scenario", "init", "alpha", "seed"]  # one family of dictionaries of different sizes


def _stacked(part: pd.DataFrame) -> np.ndarray:
    return np.stack(part.sort_values("atom")["direction"].to_numpy()).astype(np.float32)


def consecutive_mmcs(atoms: pd.DataFrame) -> pd.DataFrame:
    """One row per dictionary and the next larger one of its family (same scenario, init, alpha, seed): ``dict_ratio``
    and ``next_ratio`` (M/N), ``dict_size`` and ``next_size`` (atoms), ``mmcs_next`` (every atom of the smaller
    against every atom of the larger), ``mmcs_next_live`` (live atoms only, both sides; NaN when either has none),
    ``mmcs_back`` (the larger's live atoms against every atom of the smaller; NaN when it has none), ``live`` and
    ``live_next`` (atoms that fired on the evaluation set)."""
    rows = []
    for key, family in atoms.groupby(GROUP):
        ratios = list(family.groupby("dict_ratio"))  # ascending M/N
        for (ratio, small), (next_ratio, large) in zip(ratios, ratios[1:]):
            a, b = torch.from_numpy(_stacked(small)), torch.from_numpy(_stacked(large))
            live_a = torch.from_numpy(small.sort_values("atom")["fired"].to_numpy(dtype=bool).copy())
            live_b = torch.from_numpy(large.sort_values("atom")["fired"].to_numpy(dtype=bool).copy())
            live = float(mmcs(a[live_a], b[live_b])) if live_a.any() and live_b.any() else float("nan")
            back = float(mmcs(b[live_b], a)) if live_b.any() else float("nan")
            rows.append({**dict(zip(GROUP, key)), "n_features": int(family["n_features"].iloc[0]),
                         "dict_ratio": ratio, "next_ratio": next_ratio, "dict_size": len(small), "next_size": len(large),
                         "mmcs_next": float(mmcs(a, b)), "mmcs_next_live": live, "mmcs_back": back,
                         "live": int(live_a.sum()), "live_next": int(live_b.sum())})
    return pd.DataFrame(rows)


def estimate_feature_count(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per family of :func:`consecutive_mmcs` rows: ``estimate`` (the smaller size of the pair with the highest
    ``mmcs_next``), ``peak_mmcs`` (that MMCS), ``estimate_back`` and ``peak_back`` (the same for ``mmcs_back``),
    ``live_largest`` (live atoms of the largest dictionary) and the true ``n_features`` beside them."""
    rows = []
    for key, family in pairs.groupby(GROUP):
        peak = family.loc[family["mmcs_next"].idxmax()]
        back = family.loc[family["mmcs_back"].idxmax()]
        largest = family.loc[family["next_ratio"].idxmax()]
        rows.append({**dict(zip(GROUP, key)), "n_features": int(peak["n_features"]), "estimate": int(peak["dict_size"]),
                     "peak_mmcs": float(peak["mmcs_next"]), "estimate_back": int(back["dict_size"]),
                     "peak_back": float(back["mmcs_back"]), "live_largest": int(largest["live_next"])})
    return pd.DataFrame(rows)
