"""Finite datasets of sparse, unit-norm feature vectors (Henighan et al. 2023)."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from toymodels.grid import derive_seed
from toymodels.studies.double_descent import DATA_KEYS


def sample_features(n_samples: int, n_features: int, sparsity: float, generator: torch.Generator,
                    unit_norm: bool = True) -> torch.Tensor:
    """Each x_i is 0 with probability ``sparsity``, else U[0, 1]; rows rescaled to unit norm (all-zero rows stay 0)
    unless ``unit_norm`` is false (Elhage et al. 2022's data, the infinite-data setting)."""
    active = torch.rand(n_samples, n_features, generator=generator) >= sparsity
    values = torch.rand(n_samples, n_features, generator=generator) * active
    if not unit_norm:
        return values
    norms = values.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, values / norms.clamp_min(1e-30), values)


def with_repeated_sample(x: torch.Tensor, repeat_count: int) -> torch.Tensor:
    """Replace the first ``repeat_count`` rows with copies of row 0 (one sample seen ``repeat_count`` times)."""
    if repeat_count > x.shape[0]:
        raise ValueError(f"repeat_count ({repeat_count}) exceeds the dataset size T ({x.shape[0]})")
    x = x.clone()
    x[:repeat_count] = x[0]
    return x


def to_sparse_tensors(prefix: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """A dense [T, N] matrix as COO tensors (``<prefix>_indices``, ``_values``, ``_shape``): ~1% of the bytes."""
    sparse = x.to_sparse_coo().coalesce()
    return {f"{prefix}_indices": sparse.indices(), f"{prefix}_values": sparse.values(),
            f"{prefix}_shape": torch.tensor(list(x.shape))}


def from_sparse_tensors(prefix: str, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    shape = tuple(int(v) for v in tensors[f"{prefix}_shape"])
    return torch.sparse_coo_tensor(tensors[f"{prefix}_indices"], tensors[f"{prefix}_values"], shape, check_invariants=True).to_dense()


def make_dataset(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Training set of T samples (seeded by the data keys) and a fresh test set from the same distribution; with
    ``T: null`` (infinite data, :func:`toymodels.studies.double_descent.model.fresh_batches`) the test set only."""
    seed = derive_seed("double_descent", "data", {key: params[key] for key in DATA_KEYS})
    generator = torch.Generator().manual_seed(seed)
    n_features, sparsity = int(params["n_features"]), float(params["sparsity"])
    if params["T"] is None:  # infinite data (Elhage et al.'s, not rescaled): training draws fresh batches
        return to_sparse_tensors("test", sample_features(int(params["test_size"]), n_features, sparsity, generator, False))
    train = with_repeated_sample(sample_features(int(params["T"]), n_features, sparsity, generator), int(params["repeat_count"]))
    test = sample_features(int(params["test_size"]), n_features, sparsity, generator)
    return {**to_sparse_tensors("train", train), **to_sparse_tensors("test", test)}


def load_dataset(tensors: Mapping[str, torch.Tensor], device: torch.device | str = "cpu") -> tuple[torch.Tensor | None, torch.Tensor]:
    """(train [T, N], test [T_test, N]) dense on ``device``; train is None for infinite data (``T: null``)."""
    train = from_sparse_tensors("train", tensors).to(device) if "train_shape" in tensors else None
    return train, from_sparse_tensors("test", tensors).to(device)
