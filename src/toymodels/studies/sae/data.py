"""Toy data with a known dictionary: sparse, correlated, rank-decaying features in superposition.

Following the generator of Sharkey et al. (2022) as replicated in HoagyC/sparse_coding (written by
P. Peigne), with the choices made explicit:

- ground truth F [N, d]: rows drawn N(0, I_d) and scaled to unit norm;
- correlation matrix C [N, N]: the replication's symmetrised U(0, 1) matrix shifted by 1.001 |lambda_min|
  to be positive definite, then rescaled to unit diagonal (a true correlation matrix, so Phi(z_i) ~ U(0, 1));
- feature probabilities p = k * (Phi(z) * decay) / sum(Phi(z) * decay), decay_i = prob_decay ** i,
  with z ~ N(0, C) drawn once per sample (``correlation: per_sample``) or once per batch
  (``per_batch``, the replication's choice); every draw of z gives exactly k expected active
  features (p clipped at 1);
- codes: feature i active with probability p_i, coefficient U(0, 1); a sample with no active feature
  gets one, chosen with probability proportional to p (coefficient U(0, 1));
- x = codes @ F. Training draws fresh batches every step; a fixed evaluation set lives in the dataset file.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from toymodels.grid import derive_seed
from toymodels.studies.sae import DATA_KEYS

CORRELATIONS = ("per_sample", "per_batch")


def ground_truth_features(n_features: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """F [N, d]: N isotropic Gaussian directions in R^d, unit norm."""
    features = torch.randn(n_features, d, generator=generator, dtype=torch.float64)
    return (features / features.norm(dim=1, keepdim=True)).float()


def correlation_cholesky(n_features: int, generator: torch.Generator) -> torch.Tensor:
    """Lower Cholesky factor L of a random correlation matrix C = L L^T [N, N] (unit diagonal)."""
    base = torch.rand(n_features, n_features, generator=generator, dtype=torch.float64)
    base = (base + base.T) / 2
    min_eig = float(torch.linalg.eigvalsh(base)[0])
    if min_eig < 0:
        base = base - 1.001 * min_eig * torch.eye(n_features, dtype=torch.float64)
    scale = base.diagonal().rsqrt()
    corr = base * scale[:, None] * scale[None, :]
    return torch.linalg.cholesky(corr).float()


def rank_decay(n_features: int, prob_decay: float) -> torch.Tensor:
    """decay_i = prob_decay ** i: feature 0 is the most frequent."""
    return (prob_decay ** torch.arange(n_features, dtype=torch.float64)).float()


def feature_probabilities(z: torch.Tensor, decay: torch.Tensor, active_features: float) -> torch.Tensor:
    """p = k Phi(z) decay / sum(Phi(z) decay) along the last axis, clipped at 1 (sum p = k unless clipped)."""
    weights = torch.special.ndtr(z) * decay
    return (active_features * weights / weights.sum(-1, keepdim=True)).clamp(max=1.0)


def sample_codes(n_samples: int, cholesky: torch.Tensor, decay: torch.Tensor, active_features: float,
                 correlation: str, generator: torch.Generator) -> torch.Tensor:
    """Sparse non-negative codes [n, N]: the coefficients of each sample on the ground-truth features."""
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    n_features, device = cholesky.shape[0], cholesky.device
    draws = n_samples if correlation == "per_sample" else 1
    z = torch.randn(draws, n_features, generator=generator, device=device) @ cholesky.T
    probs = feature_probabilities(z, decay, active_features).expand(n_samples, n_features)
    active = torch.rand(n_samples, n_features, generator=generator, device=device) < probs
    empty = torch.nonzero(~active.any(dim=1)).flatten()
    if len(empty):
        chosen = torch.multinomial(probs[empty], 1, generator=generator).flatten()
        active[empty, chosen] = True
    rows, columns = torch.nonzero(active, as_tuple=True)
    codes = torch.zeros(n_samples, n_features, device=device)
    codes[rows, columns] = torch.rand(len(rows), generator=generator, device=device)
    return codes


def make_dataset(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Ground truth ``features`` [N, d], ``cholesky`` [N, N], ``decay`` [N] and a fixed ``eval_x`` [E, d]."""
    generator = torch.Generator().manual_seed(derive_seed("sae", "data", {key: params[key] for key in DATA_KEYS}))
    n, d = int(params["n_features"]), int(params["d"])
    features = ground_truth_features(n, d, generator)
    cholesky = correlation_cholesky(n, generator)
    decay = rank_decay(n, float(params["prob_decay"]))
    codes = sample_codes(int(params["eval_size"]), cholesky, decay, float(params["active_features"]),
                         str(params["correlation"]), generator)
    return {"features": features, "cholesky": cholesky, "decay": decay, "eval_x": codes @ features}


class Stream:
    """Draws batches x = codes @ F from a stored dataset (the ground truth and the correlation factor)."""

    def __init__(self, data: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> None:
        self.features = data["features"]
        self.cholesky = data["cholesky"]
        self.decay = data["decay"]
        self.active_features = float(params["active_features"])
        self.correlation = str(params["correlation"])

    def sample(self, n_samples: int, generator: torch.Generator) -> torch.Tensor:
        """[n, d] fresh inputs."""
        codes = sample_codes(n_samples, self.cholesky, self.decay, self.active_features, self.correlation, generator)
        return codes @ self.features
