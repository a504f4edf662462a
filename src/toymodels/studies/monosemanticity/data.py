"""Sparse features, their frequencies, the fixed random embeddings P and Q, and the task targets."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from toymodels.grid import derive_seed
from toymodels.studies.monosemanticity import DATA_KEYS

FREQUENCIES = ("uniform", "power_law")
TASKS = ("decoder", "reproject", "abs")
POWER_LAW_EXPONENT = 1.1


def feature_probabilities(n_features: int, eps: float, frequencies: str) -> torch.Tensor:
    """p_i = eps (uniform), or p_i ~ i^-1.1 rescaled so that sum_i p_i = N eps, then clipped at 1 (power law)."""
    if frequencies == "uniform":
        return torch.full((n_features,), float(eps), dtype=torch.float64).float()
    if frequencies != "power_law":
        raise ValueError(f"frequencies must be one of {FREQUENCIES}, got {frequencies!r}")
    p = torch.arange(1, n_features + 1, dtype=torch.float64).pow(-POWER_LAW_EXPONENT)
    return (p * (n_features * eps / p.sum())).clamp(max=1.0).float()


def random_embedding(n_features: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """[d, N] with unit-norm columns: U of the SVD of an N x d Gaussian, each row normalised, transposed."""
    u, _, _ = torch.linalg.svd(torch.randn(n_features, d, generator=generator, dtype=torch.float64), full_matrices=False)
    return (u / u.norm(dim=1, keepdim=True)).T.contiguous().float()


def sample_features(probabilities: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """v_i = U[0, 1] * Bernoulli(p_i): [batch, N], from one uniform u per entry: v = u / p where u < p, else 0.

    Given u < p, u / p is U[0, 1], so this is exactly the two-draw definition at half the random numbers.
    """
    u = torch.rand(batch, probabilities.shape[0], generator=generator, device=probabilities.device)
    return torch.where(u < probabilities, u / probabilities, torch.zeros_like(u))


def sample_task(task: str, probabilities: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Feature vectors v for ``task``: as sampled, or v1 - v2 with each drawn at half the frequency (abs task)."""
    if task == "abs":
        half = probabilities / 2
        return sample_features(half, batch, generator) - sample_features(half, batch, generator)
    return sample_features(probabilities, batch, generator)


def task_target(task: str, v: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """What the model must output: v (decoder), Q v (re-projector), |v| (absolute value)."""
    if task == "decoder":
        return v
    if task == "reproject":
        return v @ Q.T
    if task == "abs":
        return v.abs()
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def output_size(task: str, n_features: int, d: int) -> int:
    """Width of the second layer's output: d for the re-projector, N otherwise."""
    return d if task == "reproject" else n_features


def make_dataset(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """P, Q [d, N] (seeded by N, d, data_seed only, so every sparsity and task shares them), p [N], eval v [E, N]."""
    n_features, d = int(params["n_features"]), int(params["d"])
    embed = torch.Generator().manual_seed(derive_seed("monosemanticity", "embedding", n_features, d, int(params["data_seed"])))
    P = random_embedding(n_features, d, embed)
    Q = random_embedding(n_features, d, embed)
    probabilities = feature_probabilities(n_features, float(params["eps"]), params["frequencies"])
    evaluation = torch.Generator().manual_seed(derive_seed("monosemanticity", "eval", {k: params[k] for k in DATA_KEYS}))
    eval_v = sample_task(params["task"], probabilities, int(params["eval_size"]), evaluation)
    return {"P": P, "Q": Q, "probabilities": probabilities, "eval_v": eval_v}
