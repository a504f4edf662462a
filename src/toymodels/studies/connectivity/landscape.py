"""Formulas of the connectivity study: interpolation, curves, barriers, basins, MLI bumps, matchings, neuron
correlations."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

Weights = Mapping[str, torch.Tensor]


def alphas(points: int) -> torch.Tensor:
    """alpha_0 = 0 .. alpha_{n-1} = 1, evenly spaced."""
    return torch.linspace(0.0, 1.0, points)


def interpolate(a: Weights, b: Weights, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
    """theta(alpha) = (1 - alpha) theta_A + alpha theta_B for every alpha, stacked as the instance axis."""
    out = {}
    for name in a:
        shape = (-1,) + (1,) * a[name].dim()
        out[name] = (1 - alpha.view(shape)) * a[name] + alpha.view(shape) * b[name]
    return out


CURVES = ("line", "bezier", "chain")


def curve_coefficients(kind: str, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_A, c_bend, c_B) of theta(t) = c_A theta_A + c_bend theta_bend + c_B theta_B, for t in [0, 1] (Garipov et al. 2018).

    line: (1 - t, 0, t); bezier, the quadratic Bezier curve: ((1 - t)^2, 2 t (1 - t), t^2); chain, the polygonal chain
    A -> bend -> B with its corner at t = 1/2: (1 - 2t, 2t, 0) for t <= 1/2, (0, 2 - 2t, 2t - 1) after.
    """
    zero = torch.zeros_like(t)
    if kind == "line":
        return 1 - t, zero, t
    if kind == "bezier":
        return (1 - t) ** 2, 2 * t * (1 - t), t**2
    if kind == "chain":
        first = t <= 0.5
        return (torch.where(first, 1 - 2 * t, zero), torch.where(first, 2 * t, 2 - 2 * t),
                torch.where(first, zero, 2 * t - 1))
    raise ValueError(f"curve must be one of {CURVES}, got {kind!r}")


def combine(coefficients: torch.Tensor, a: Weights, bend: Weights, b: Weights) -> dict[str, torch.Tensor]:
    """c_A a + c_bend bend + c_B b for every row of ``coefficients`` [n, 3]; a, bend and b carry a leading instance
    axis of n or 1 (broadcast)."""
    out = {}
    for name in a:
        ca, cm, cb = (coefficients[:, j].view((-1,) + (1,) * (a[name].dim() - 1)) for j in range(3))
        out[name] = ca * a[name] + cm * bend[name] + cb * b[name]
    return out


def curve_points(a: Weights, bend: Weights, b: Weights, kind: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """theta(t) of the curve ``kind`` from a through bend to b (single models) for every t, stacked as the instance axis."""
    one = [{n: w[None] for n, w in weights.items()} for weights in (a, bend, b)]
    return combine(torch.stack(curve_coefficients(kind, t), dim=1), *one)


def barriers(alpha: torch.Tensor, losses: torch.Tensor) -> tuple[float, float]:
    """(barrier_mean_endpoints, barrier_linear) of a loss curve L(alpha) sampled at ``alpha`` (0 and 1 included).

    mean endpoints (Frankle et al. 2020): max_alpha L(alpha) - (L(0) + L(1)) / 2;
    linear (Entezari et al. 2021): max_alpha [L(alpha) - ((1 - alpha) L(0) + alpha L(1))].
    """
    start, end = losses[0], losses[-1]
    mean_endpoints = losses.max() - (start + end) / 2
    linear = (losses - ((1 - alpha) * start + alpha * end)).max()
    return float(mean_endpoints), float(linear)


def basin_labels(barrier: np.ndarray, threshold: float) -> np.ndarray:
    """Basin 0, 1, .. of every model from a symmetric matrix of pairwise barriers [n, n]: complete linkage, so two
    models share a basin only if every pair in it has a barrier at most ``threshold``; basins are numbered in order of
    their first model. Negative barriers count as 0."""
    n = barrier.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    distance = np.clip((barrier + barrier.T) / 2, 0, None)
    np.fill_diagonal(distance, 0)
    labels = fcluster(linkage(squareform(distance, checks=False), method="complete"), t=threshold, criterion="distance")
    first = {label: rank for rank, label in enumerate(dict.fromkeys(labels))}
    return np.array([first[label] for label in labels])


def mli_bumps(losses: torch.Tensor) -> tuple[float, float]:
    """(bump, bump_above_start) of a loss curve from init (first) to final (last).

    bump: the largest rise max_{alpha < alpha'} L(alpha') - L(alpha) (0 iff L is non-increasing: MLI holds);
    bump_above_start: max(0, max_alpha L(alpha) - L(0)).
    """
    running_min = torch.cummin(losses, dim=0).values
    return float((losses - running_min).max()), float((losses.max() - losses[0]).clamp_min(0))


def relative_distance(init: Weights, final: Weights) -> float:
    """||theta_T - theta_0|| / ||theta_T|| over all parameters."""
    diff = sum(float((final[n] - init[n]).pow(2).sum()) for n in final)
    norm = sum(float(final[n].pow(2).sum()) for n in final)
    return float(np.sqrt(diff / norm)) if norm > 0 else float("nan")


def match_permutation(similarity: torch.Tensor) -> torch.Tensor:
    """perm maximising sum_i similarity[i, perm[i]] (scipy's linear_sum_assignment): B's unit perm[i] goes to slot i."""
    rows, cols = linear_sum_assignment(similarity.detach().double().cpu().numpy(), maximize=True)
    perm = np.empty_like(cols)
    perm[rows] = cols
    return torch.as_tensor(perm, dtype=torch.long)


def procrustes(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Orthogonal O maximising <A, O B>_F for A, B [m, n]: O = U V^T from the SVD U S V^T of A B^T."""
    u, _, vh = torch.linalg.svd(a.double() @ b.double().T)
    return (u @ vh).to(a.dtype)


def neuron_correlations(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over samples of za[:, i] and zb[:, i], [k]; NaN where either neuron is constant (dead)."""
    za, zb = za.double() - za.double().mean(0), zb.double() - zb.double().mean(0)
    sa, sb = za.norm(dim=0), zb.norm(dim=0)
    corr = (za * zb).sum(0) / (sa * sb)
    return torch.where((sa > 1e-12) & (sb > 1e-12), corr, torch.full_like(corr, float("nan"))).float()
