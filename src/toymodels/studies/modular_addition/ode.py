"""A linear ODE dX/dt = A X + b for the signals X = [S_1 .. S_K](t), fitted on a trajectory logged every step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import Lasso, LinearRegression


@dataclass(frozen=True)
class LinearODE:
    A: np.ndarray  # [K, K]: row k says how each S_j drives dS_k/dt (per step)
    b: np.ndarray  # [K]
    r2_derivative: float  # R^2 of the fitted one-step change X(t+1) - X(t)


def fit_linear_ode(trajectory: np.ndarray, alpha: float, max_iter: int = 50_000) -> LinearODE:
    """Regress X(t+1) - X(t) on X(t) (dt = one step) for a trajectory [T + 1, K].

    ``alpha > 0``: scikit-learn's Lasso (objective ||Y - X A^T - b||^2 / (2T) + alpha sum |A|); ``alpha = 0``:
    ordinary least squares. R^2 is variance-weighted over the K outputs.
    """
    x, y = trajectory[:-1], np.diff(trajectory, axis=0)
    regression = Lasso(alpha=alpha, max_iter=max_iter, tol=1e-6) if alpha > 0 else LinearRegression()
    regression.fit(x, y)
    predicted = regression.predict(x)
    return LinearODE(np.atleast_2d(regression.coef_), np.atleast_1d(regression.intercept_), r2(y, predicted))


def rollout(ode: LinearODE, start: np.ndarray, n_steps: int) -> np.ndarray:
    """Integrate X(t+1) = X(t) + A X(t) + b from ``start`` (the fitted map itself, so no step-size error): [n_steps + 1, K]."""
    out = np.empty((n_steps + 1, len(start)))
    out[0] = start
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(n_steps):
            out[t + 1] = out[t] + ode.A @ out[t] + ode.b
    return out


def r2(true: np.ndarray, predicted: np.ndarray) -> float:
    """Variance-weighted R^2 over columns, 1 - sum (y - y_hat)^2 / sum (y - mean_t y)^2 (scikit-learn's
    ``variance_weighted``); -inf when a diverging roll-out overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        residual = float(np.sum((true - predicted) ** 2))
    total = float(np.sum((true - true.mean(0)) ** 2))
    return 1.0 - residual / total if np.isfinite(residual) else float("-inf")
