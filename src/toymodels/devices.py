"""Run-time choice of device and thread count."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` falls back to cpu (with a warning) when absent."""
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {preference!r}")
    if preference == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if preference == "cuda":
        print("toymodels: device 'cuda' requested but torch.cuda.is_available() is false; using cpu")
    return torch.device("cpu")


def set_threads(threads: int) -> None:
    """One torch thread per job by default: on small CPUs two jobs beat one job with two threads."""
    torch.set_num_threads(max(1, int(threads)))
