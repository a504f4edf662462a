"""Geometry of features and data points: dimensionalities, norms, leverage."""

from __future__ import annotations

import torch


def dimensionality(vectors: torch.Tensor) -> torch.Tensor:
    """D_i = ||v_i||^2 / sum_j (v_i_hat . v_j)^2 for vectors [..., n, m]; 0 for a zero vector.

    Uses sum_j (v_i . v_j)^2 = v_i^T (V^T V) v_i, so it costs O(n m^2), never an n x n Gram matrix.
    Feature dimensionality: pass W^T (the columns W_i); data-point dimensionality: pass the hidden vectors h_t.
    """
    gram = vectors.transpose(-1, -2) @ vectors
    norm_sq = vectors.pow(2).sum(-1)
    interference = torch.einsum("...nm,...mk,...nk->...n", vectors, gram, vectors)
    return torch.where(norm_sq > 0, norm_sq.pow(2) / interference.clamp_min(1e-30), torch.zeros_like(norm_sq))


def leverage(vectors: torch.Tensor) -> torch.Tensor:
    """Maximal data dimensionality (leverage score) v_t^T (sum_s v_s v_s^T)^+ v_t for vectors [..., n, m]."""
    gram_inv = torch.linalg.pinv(vectors.transpose(-1, -2) @ vectors)
    return torch.einsum("...nm,...mk,...nk->...n", vectors, gram_inv, vectors)
