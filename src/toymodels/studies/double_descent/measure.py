"""Per-cell metric tables of the double-descent study (see docs/tables.md for the schemas)."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from toymodels.studies.double_descent.data import load_dataset
from toymodels.studies.double_descent.metrics import dimensionality, dimensions_per_feature, leverage
from toymodels.studies.double_descent.model import Variant, hidden, reconstruction_loss


def _first_two(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates along hidden dimensions 0 and 1 (y is NaN when m = 1)."""
    y = vectors[..., 1] if vectors.shape[-1] > 1 else torch.full_like(vectors[..., 0], float("nan"))
    return vectors[..., 0], y


def _long(values: dict[str, torch.Tensor], index_name: str) -> pd.DataFrame:
    """[I, n] tensors -> one row per (seed, index)."""
    first = next(iter(values.values()))
    n_inst, n = first.shape
    frame = {"seed": torch.arange(n_inst).repeat_interleave(n).numpy(), index_name: torch.arange(n).repeat(n_inst).numpy()}
    frame.update({key: value.reshape(-1).numpy() for key, value in values.items()})
    return pd.DataFrame(frame)


def measure_cell(params: Mapping[str, Any], seeds: list[int], data: Mapping[str, torch.Tensor],
            model: Mapping[str, torch.Tensor], checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> dict[str, pd.DataFrame]:
    """instances, features, datapoints (final weights) and trajectory (every checkpoint) tables.

    With infinite data (``T: null``) the test set, a fresh sample of the training distribution, stands in for the
    training set (train loss, data points)."""
    x_train, x_test = load_dataset(data)
    x_train = x_test if x_train is None else x_train
    variant = Variant.from_params(params)
    W, b = model["W"], model["b"]
    repeat_count = int(params["repeat_count"])
    with torch.no_grad():
        train_loss = reconstruction_loss(W, b, x_train, variant=variant)
        test_loss = reconstruction_loss(W, b, x_test, variant=variant)
        feature_vectors = W.transpose(1, 2)
        feature_dim = dimensionality(feature_vectors)
        h = hidden(W, x_train, variant.activation)
        point_dim = dimensionality(h)
        instances = pd.DataFrame({
            "seed": range(len(seeds)), "init_seed": seeds,
            "train_loss": train_loss.numpy(), "test_loss": test_loss.numpy(),
            "W_frobenius": W.flatten(1).norm(dim=1).numpy(), "b_norm": b.norm(dim=1).numpy(),
            "max_feature_dimensionality": feature_dim.max(dim=1).values.numpy(),
            "mean_datapoint_dimensionality": point_dim.mean(dim=1).numpy(),
            "selected": (torch.arange(len(seeds)) == train_loss.argmin()).numpy(),
            "dims_per_feature": dimensions_per_feature(W).numpy(),
            "zero_test_loss": float(reconstruction_loss(torch.zeros_like(W[:1]), torch.zeros_like(b[:1]), x_test, variant=variant)[0]),
        })
        for key in ("n_features", "sparsity", "m", "T", "data_seed", "repeat_count", "steps", "lr", "weight_decay"):
            instances[key] = params[key]
        fx, fy = _first_two(feature_vectors)
        features = _long({"dimensionality": feature_dim, "norm": feature_vectors.norm(dim=-1), "x": fx, "y": fy}, "feature")
        hx, hy = _first_two(h)
        points = _long({"dimensionality": point_dim, "norm": h.norm(dim=-1), "leverage": leverage(h), "x": hx, "y": hy}, "sample")
        points["repeated"] = points["sample"] < repeat_count if repeat_count > 1 else False
        rows = []
        for step, weights in checkpoints.items():
            Wc, bc = weights["W"], weights["b"]
            step_train = reconstruction_loss(Wc, bc, x_train, variant=variant)
            step_test = reconstruction_loss(Wc, bc, x_test, variant=variant)
            step_feature = dimensionality(Wc.transpose(1, 2)).max(dim=1).values
            step_points = dimensionality(hidden(Wc, x_train, variant.activation))
            for index in range(len(seeds)):
                rows.append({"seed": index, "step": step, "train_loss": float(step_train[index]),
                             "test_loss": float(step_test[index]), "max_feature_dimensionality": float(step_feature[index]),
                             "repeated_dimensionality": float(step_points[index, 0]) if repeat_count > 1 else float("nan"),
                             "mean_datapoint_dimensionality": float(step_points[index].mean())})
    return {"instances": instances, "features": features, "datapoints": points, "trajectory": pd.DataFrame(rows)}
