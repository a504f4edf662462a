"""What the instances of one SAE cell are (initialisation x rare ratio x alpha x seed) and its dictionary size.

Torch-free: the workflow reads it to size a cell's scheduler request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

INITS = ("xavier", "orthogonal", "data", "svd", "rare_mean", "rare_centroid", "rare_outlier", "rare_ward",
         "rare_isolation")
RARE_METHODS = ("rare_mean", "rare_centroid", "rare_outlier", "rare_ward", "rare_isolation")


@dataclass(frozen=True)
class InstanceSpec:
    """What one instance is: its decoder initialisation, rare-feature ratio (rare methods only), L1
    coefficient and seed index."""

    init: str
    rare_ratio: float | None
    alpha: float
    seed: int


def instance_specs(params: Mapping[str, Any]) -> list[InstanceSpec]:
    """Instances in order: each init (rare methods once per rare ratio), each alpha, then each seed index
    (fastest), so instance i uses seed index i % n_seeds."""
    variants = [(init, ratio, float(alpha)) for init in params["inits"]
                for ratio in (params["rare_ratios"] if init in RARE_METHODS else [None]) for alpha in params["alphas"]]
    return [InstanceSpec(*variant, seed) for variant in variants for seed in range(int(params["n_seeds"]))]


def dict_size(params: Mapping[str, Any]) -> int:
    """M = round(dict_ratio * N)."""
    return max(1, round(float(params["dict_ratio"]) * int(params["n_features"])))


def rare_count(n_atoms: int, rare_ratio: float) -> int:
    """Atoms filled by a rare-feature method: ceil(ratio * M), so any ratio in (0, 1] gives at least one."""
    if not 0 < rare_ratio <= 1:
        raise ValueError(f"rare_ratio must be in (0, 1], got {rare_ratio}")
    return math.ceil(rare_ratio * n_atoms - 1e-9)
