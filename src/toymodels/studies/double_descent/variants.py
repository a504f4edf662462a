"""Names of the model variants of the double-descent study (the default ReLU-output model, other losses, a hidden ReLU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def variant_label(table: pd.DataFrame) -> list[str]:
    """Which model each row belongs to, from its optional `loss` and `hidden_activation` columns (cells of the
    default model have neither set): "default (mse)", "loss l1", "hidden ReLU", "loss huber, hidden ReLU", ..."""
    n = len(table)
    losses = table["loss"] if "loss" in table else [None] * n
    activations = table["hidden_activation"] if "hidden_activation" in table else [None] * n
    labels = []
    for loss, activation in zip(losses, activations):
        parts = ([f"loss {loss}"] if isinstance(loss, str) and loss != "mse" else []) + (
            ["hidden ReLU"] if activation == "relu" else [])
        labels.append(", ".join(parts) or "default (mse)")
    return labels
