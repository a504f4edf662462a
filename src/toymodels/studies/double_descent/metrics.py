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


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """Elhage et al. 2022's D* = m / ||W||_F^2 for weights [..., m, N]: the hidden dimensions per (unit-norm,
    represented) feature; 2/5 for a pentagon of unit vectors in m = 2."""
    return W.shape[-2] / W.pow(2).sum(dim=(-2, -1))
