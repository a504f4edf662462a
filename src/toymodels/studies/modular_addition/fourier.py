"""Fourier signals of an embedding E [..., p, d], the survivor rule, Fourier planes and band-limited rebuilds."""

from __future__ import annotations

import math

import torch


def n_frequencies(p: int) -> int:
    """K = (p - 1) / 2 distinct non-zero frequencies (k and p - k carry the same signal for real E)."""
    return (p - 1) // 2


def signal(embedding: torch.Tensor) -> torch.Tensor:
    """S_k = || sum_j E[j, :] exp(-2 pi i j k / p) ||_2 for k = 1..K: [..., K] from [..., p, d]."""
    p = embedding.shape[-2]
    spectrum = torch.fft.fft(embedding, dim=-2)[..., 1:n_frequencies(p) + 1, :]
    return spectrum.abs().pow(2).sum(-1).sqrt()


def survivors(final_signal: torch.Tensor, factor: float) -> torch.Tensor:
    """Boolean [..., K]: S_k(final) > factor x mean_k S_k(final) (the paper's rule with factor 2)."""
    return final_signal > factor * final_signal.mean(-1, keepdim=True)


def early_gradient(signals: torch.Tensor, t: int) -> torch.Tensor:
    """g_k = (S_k(t) - S_k(t - 1)) / S_k(0) from a trajectory [steps, ..., K] logged at every step 0..t."""
    return (signals[t] - signals[t - 1]) / signals[0]


def fourier_plane(embedding: torch.Tensor, k: int) -> torch.Tensor:
    """Coordinates [p, 2] of the centred tokens E[j] - mean_j E[j] in the plane of frequency k, spanned by the
    orthonormalised real and imaginary parts of c_k = sum_j E[j] exp(-2 pi i j k / p). For a circle at frequency k
    the tokens sit on a circle around the origin, ordered by j k mod p."""
    p = embedding.shape[-2]
    phase = -2 * math.pi * k * torch.arange(p, dtype=embedding.dtype) / p
    real, imag = torch.cos(phase) @ embedding, torch.sin(phase) @ embedding
    u = real / real.norm().clamp_min(1e-30)
    v = imag - (imag @ u) * u
    v = v / v.norm().clamp_min(1e-30)
    centred = embedding - embedding.mean(-2, keepdim=True)
    return torch.stack([centred @ u, centred @ v], dim=-1)


def band_limited(embedding: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """E rebuilt from its mean (k = 0) and the frequencies ``keep`` (each with its mirror p - k) only: [p, d]."""
    p = embedding.shape[-2]
    spectrum = torch.fft.fft(embedding, dim=-2)
    mask = torch.zeros(p, dtype=torch.bool)
    mask[0] = True
    for k in keep:
        mask[k] = mask[p - k] = True
    return torch.fft.ifft(spectrum * mask[:, None], dim=-2).real.to(embedding.dtype)
