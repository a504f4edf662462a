"""What the instances of one SAE cell are (initialisation x rare ratio x alpha x seed) and its dictionary size.

Torch-free: the workflow reads it to size a cell's scheduler request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

INITS = ("xavier", "orthogonal", "data", "svd", "rare_mean", "rare_centroid", "rare_outlier")
RARE_METHODS = ("rare_mean", "rare_centroid", "rare_outlier")


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
