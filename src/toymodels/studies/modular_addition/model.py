"""Embedding + MLP on (a + b) mod p with a leading instance axis, and its full-batch training."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from toymodels.grid import derive_seed
from toymodels.studies.modular_addition.data import split_masks
from toymodels.studies.modular_addition.fourier import n_frequencies, signal
from toymodels.training import TrainConfig, TrainResult, train

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch.nn.Linear's default for weights and biases (float64)."""
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


def init_params(p: int, d: int, hidden: int, seeds: list[int], embedding_seed: int | None,
                dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """embedding [I, p, d] ~ N(0, 1); W1 [I, 2d, H], W2 [I, H, H], W3 [I, H, p] and biases, nn.Linear-style.

    Drawn in float64 and then cast, so float32 and float64 runs of one seed start from the same point.
    The MLP of instance i comes from its seed. The embedding comes from the seed too, unless ``embedding_seed``
    is given: then every instance starts from the one embedding drawn from it.
    """
    layers = []
    for seed in seeds:
        g = torch.Generator().manual_seed(derive_seed("modular_addition", "mlp", seed))
        layers.append({"W1": _uniform((2 * d, hidden), 2 * d, g), "b1": _uniform((hidden,), 2 * d, g),
                       "W2": _uniform((hidden, hidden), hidden, g), "b2": _uniform((hidden,), hidden, g),
                       "W3": _uniform((hidden, p), hidden, g), "b3": _uniform((p,), hidden, g)})
    sources = seeds if embedding_seed is None else [("shared", embedding_seed)] * len(seeds)
    embeddings = [torch.randn(p, d, dtype=torch.float64, generator=torch.Generator().manual_seed(
        derive_seed("modular_addition", "embedding", source))) for source in sources]
    params = {"embedding": torch.stack(embeddings)}
    params.update({name: torch.stack([layer[name] for layer in layers]) for name in layers[0]})
    return {name: tensor.to(device=device, dtype=dtype) for name, tensor in params.items()}


def logits(params: Mapping[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MLP(SiLU) on [E_a ; E_b] for every instance: [I, N, p].

    The first layer is applied to the p embedding rows before gathering the N pairs:
    [E_a ; E_b] W1 = (E W1[:d])_a + (E W1[d:])_b, which is exact and ~p/N the cost.
    """
    embedding, W1 = params["embedding"], params["W1"]
    d = embedding.shape[-1]
    first, second = torch.bmm(embedding, W1[:, :d]), torch.bmm(embedding, W1[:, d:])
    h = F.silu(first[:, a] + second[:, b] + params["b1"][:, None])
    h = F.silu(torch.baddbmm(params["b2"][:, None], h, params["W2"]))
    return torch.baddbmm(params["b3"][:, None], h, params["W3"])


def pair_losses(output: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every pair: [I, N]."""
    n_inst, n_pairs, p = output.shape
    return F.cross_entropy(output.reshape(-1, p), label.repeat(n_inst), reduction="none").reshape(n_inst, n_pairs)


def split_metrics(output: torch.Tensor, losses: torch.Tensor, label: torch.Tensor, train_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean cross-entropy and accuracy on each instance's train and test pairs: {name: [I]}."""
    correct = (output.argmax(-1) == label).to(losses.dtype)
    out = {}
    for name, mask in (("train", train_mask), ("test", ~train_mask)):
        weight = mask.to(losses.dtype)
        count = weight.sum(1).clamp_min(1)
        out[f"{name}_loss"] = (losses * weight).sum(1) / count
        out[f"{name}_accuracy"] = (correct * weight).sum(1) / count
    return out


def dense_history_points(steps: int, dense_until: int) -> int:
    """The smallest ``history_points`` for which the loop's log-spaced history includes every step 0..dense_until.

    Consecutive grid values expm1(i D) differ by (1 + x)(e^D - 1); with D = log1p(1 / (2 + dense_until)) that is < 1
    for x <= dense_until, so their roundings leave no integer out.
    """
    spacing = math.log1p(1.0 / (2 + min(dense_until, steps)))
    return int(math.ceil(math.log1p(steps) / spacing)) + 1


def signal_columns(p: int) -> list[str]:
    return [f"signal_{k}" for k in range(1, n_frequencies(p) + 1)]


def _signals_to_checkpoints(result: TrainResult, p: int) -> TrainResult:
    """Move the logged S_k columns out of the history into ``checkpoints[step]["signal"]`` ([I, K]) for ``measure``."""
    columns = signal_columns(p)
    history = result.history.sort_values(["step", "seed"])
    values = history[columns].to_numpy(np.float64)
    n_inst = int(history["seed"].nunique())
    for row, step in enumerate(history["step"].to_numpy()[::n_inst]):
        result.checkpoints.setdefault(int(step), {})["signal"] = torch.from_numpy(values[row * n_inst:(row + 1) * n_inst].copy())
    result.checkpoints = dict(sorted(result.checkpoints.items()))
    result.history = result.history.drop(columns=columns)
    return result


def train_model(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device | str = "cpu",
                *, resume_path: str | Path | None = None, progress: bool = True) -> TrainResult:
    """Full-batch AdamW on every instance's training pairs; history (losses, accuracies, S_k) at every step up to
    ``early_steps`` and log-spaced after, through the loop's ``record`` hook (so a resumed run keeps it)."""
    p, steps = int(params["p"]), int(params["steps"])
    if not 1 <= int(params["gradient_step"]) <= min(int(params["early_steps"]), steps):
        raise ValueError(f"gradient_step ({params['gradient_step']}) must lie in 1..min(early_steps, steps)")
    dtype = DTYPES[params["dtype"]]
    a, b, label = (data[key].to(device) for key in ("a", "b", "label"))
    train_mask = split_masks(len(label), float(params["train_fraction"]), seeds).to(device)
    model = init_params(p, int(params["d"]), int(params["hidden"]), seeds, params["embedding_seed"], dtype, device)
    points = max(int(params.get("history_points", 60)), dense_history_points(steps, int(params["early_steps"])))
    config = TrainConfig.from_params(params, history_points=points, progress=progress)
    latest: dict[str, torch.Tensor] = {}

    def loss_fn(step: int) -> torch.Tensor:
        output = logits(model, a, b)
        losses = pair_losses(output, label)
        latest.update(output=output.detach(), losses=losses.detach())
        return (losses * train_mask).sum(1) / train_mask.sum(1)

    def record(current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        metrics = split_metrics(latest["output"], latest["losses"], label, train_mask)
        del metrics["train_loss"]  # the loop's ``loss`` column
        signals = signal(current["embedding"].detach())
        return {**metrics, **{name: signals[:, k] for k, name in enumerate(signal_columns(p))}}

    result = train(model, loss_fn, config, seeds, record=record, resume_path=resume_path, fingerprint=dict(params),
                   description=f"modular_addition p={p} d={params['d']}")
    return _signals_to_checkpoints(result, p)
