"""Learning-rate schedules and log-spaced step sets."""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("warmup_cosine", "cosine_annealing", "cosine_restarts", "constant")


def learning_rate(step: int, total_steps: int, peak: float, schedule: str = "warmup_cosine",
                  warmup_steps: int = 0, restart_period: int = 1024) -> float:
    """Learning rate used for update ``step`` (0-based).

    - ``warmup_cosine``: linear from peak/warmup to peak over ``warmup_steps``, then cosine to 0 at ``total_steps``.
    - ``cosine_annealing``: a smooth cosine of period ``restart_period``, peak at multiples of it and 0 half-way:
      torch's ``CosineAnnealingLR(T_max=restart_period / 2)`` stepped every update, as in the code of Jermyn et al.
      2022 (T_max = 512).
    - ``cosine_restarts``: cosine from peak to 0 over each period of ``restart_period`` steps, then a jump back to
      the peak (SGDR without warm-up).
    - ``constant``: peak throughout.
    """
    if schedule == "constant":
        return peak
    if schedule == "cosine_annealing":
        return peak * 0.5 * (1.0 + math.cos(2.0 * math.pi * step / restart_period))
    if schedule == "cosine_restarts":
        return peak * 0.5 * (1.0 + math.cos(math.pi * (step % restart_period) / restart_period))
    if schedule != "warmup_cosine":
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / decay_steps))


def log_spaced_steps(total_steps: int, points: int) -> list[int]:
    """About ``points`` steps spaced evenly in log(1 + step) from 0 to ``total_steps``, both included."""
    if points < 2 or total_steps <= 0:
        return sorted({0, max(0, total_steps)})
    grid = np.unique(np.round(np.expm1(np.linspace(0.0, math.log1p(total_steps), points))).astype(int))
    return sorted(set(grid.tolist()) | {0, total_steps})
