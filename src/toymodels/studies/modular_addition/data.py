"""All p^2 pairs (a, b) with label (a + b) mod p, and the seeded train/test split of each instance."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from toymodels.grid import derive_seed


def make_dataset(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``a``, ``b``, ``label`` (int64, [p^2]) in row-major order: pair n = (n // p, n % p)."""
    p = int(params["p"])
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return {"a": a, "b": b, "label": (a + b) % p}


def split_mask(n_pairs: int, train_fraction: float, seed: int) -> torch.Tensor:
    """Boolean [n_pairs]: exactly round(train_fraction * n_pairs) pairs in the training set, chosen by ``seed``."""
    n_train = int(round(train_fraction * n_pairs))
    order = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(derive_seed("modular_addition", "split", seed)))
    mask = torch.zeros(n_pairs, dtype=torch.bool)
    mask[order[:n_train]] = True
    return mask


def split_masks(n_pairs: int, train_fraction: float, seeds: list[int]) -> torch.Tensor:
    """One split per instance seed: [I, n_pairs] (instances never share a split, even with a shared embedding)."""
    return torch.stack([split_mask(n_pairs, train_fraction, seed) for seed in seeds])
