"""Feature recovery (MMCS, steps to a threshold) and the usual SAE health metrics (L0, FVE, dead fraction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


def mmcs(features: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """Mean max cosine similarity (1/N) sum_i max_j cos(F_i, D_j) of ground truth F [N, d] and atoms [..., M, d].

    Signed (not absolute) cosines: an atom pointing opposite to a feature does not recover it. One instance
    at a time, so only an [N, M] matrix is ever held. Returns [...].
    """
    f = features / features.norm(dim=-1, keepdim=True)
    flat = atoms.reshape(-1, *atoms.shape[-2:])
    flat = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    values = torch.stack([(f @ a.T).max(dim=1).values.mean() for a in flat])
    return values.reshape(atoms.shape[:-2])


def steps_to_threshold(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first logged step at which ``values`` reaches ``threshold``; None when it never does, or when an
    unlogged (NaN) entry precedes that step, so the crossing may have happened earlier."""
    values = np.asarray(values, dtype=float)
    reached = np.nonzero(values >= threshold)[0]
    if not len(reached):
        return None
    first = int(reached[0])
    if np.isnan(values[:first]).any():
        return None
    return int(steps[first])


def reconstruction_stats(W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor, x: torch.Tensor,
                         chunk: int = 512) -> dict[str, torch.Tensor]:
    """On inputs x [E, d] for every instance: ``l0`` (mean active latents per input), ``fve`` (1 - SSE / total sum
    of squares about the mean input), ``dead_fraction`` (latents active on no input) and ``mse`` (squared error
    per input, averaged over inputs and dimensions), each [I], and ``fired`` [I, M] (latent active on some input)."""
    n_inst, n_atoms, _ = W_enc.shape
    active_count = torch.zeros(n_inst, device=x.device)
    fired = torch.zeros(n_inst, n_atoms, dtype=torch.bool, device=x.device)
    sse = torch.zeros(n_inst, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        codes = torch.relu(torch.matmul(part, W_enc.transpose(1, 2)) + b_enc[:, None, :])
        active = codes > 0
        active_count += active.sum(dim=(1, 2))
        fired |= active.any(dim=1)
        sse += (torch.bmm(codes, W_dec) - part).pow(2).sum(dim=(1, 2)).double()
    total = (x - x.mean(0)).pow(2).sum().double()
    return {"l0": active_count / x.shape[0], "fve": (1 - sse / total).float(),
            "dead_fraction": 1 - fired.float().mean(1), "mse": (sse / x.numel()).float(), "fired": fired}


@dataclass(frozen=True)
class PowerLaw:
    """y ~ prefactor * x ** exponent, fitted by least squares on log y against log x over ``points`` points;
    ``stderr`` is the exponent's standard error (NaN with two points) and ``r_squared`` the fit's R^2 in log space."""

    exponent: float
    prefactor: float
    stderr: float
    r_squared: float
    points: int


def power_law_fit(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Ordinary least squares of log y on log x (natural logs; needs two distinct positive x and positive y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y) or len(np.unique(x)) < 2 or not (x > 0).all() or not (y > 0).all():
        raise ValueError("a power-law fit needs positive x and y of equal length with at least two distinct x")
    log_x, log_y = np.log(x), np.log(y)
    centred = log_x - log_x.mean()
    slope = float(centred @ (log_y - log_y.mean()) / (centred @ centred))
    intercept = float(log_y.mean() - slope * log_x.mean())
    residual = log_y - intercept - slope * log_x
    total = float(((log_y - log_y.mean()) ** 2).sum())
    dof = len(log_x) - 2
    stderr = float(np.sqrt(residual @ residual / dof / (centred @ centred))) if dof > 0 else float("nan")
    r_squared = 1 - float(residual @ residual) / total if total > 0 else 1.0
    return PowerLaw(slope, float(np.exp(intercept)), stderr, r_squared, len(log_x))
