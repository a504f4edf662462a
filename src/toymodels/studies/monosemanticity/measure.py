"""Per-cell tables of the monosemanticity study (columns documented in docs/studies/monosemanticity.md)."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from toymodels.studies.monosemanticity.data import task_target
from toymodels.studies.monosemanticity.fit import PRUNED
from toymodels.studies.monosemanticity.metrics import (
    STATUSES,
    feature_status,
    frac_mono,
    is_dead,
    mono_fractions,
    monosemantic,
    single_feature_activations,
)
from toymodels.studies.monosemanticity.model import forward, losses


def _long(values: Mapping[str, torch.Tensor], index_name: str) -> pd.DataFrame:
    """[I, n] tensors -> one row per (seed, index)."""
    n_inst, n = next(iter(values.values())).shape
    frame = {"seed": torch.arange(n_inst).repeat_interleave(n).numpy(), index_name: torch.arange(n).repeat(n_inst).numpy()}
    frame.update({key: value.reshape(-1).cpu().numpy() for key, value in values.items()})
    return pd.DataFrame(frame)


def _eval_losses(weights: Mapping[str, torch.Tensor], params: Mapping[str, Any], data: Mapping[str, torch.Tensor]):
    n_inst = weights["W1"].shape[0]
    x = (data["eval_v"] @ data["P"].T).expand(n_inst, -1, -1)
    target = task_target(params["task"], data["eval_v"], data["Q"]).expand(n_inst, -1, -1)
    return losses(weights, x, target, params["nonlinearity"], float(params["l1"]))


def weight_fraction(weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Fraction of W1 and W2 entries that are non-zero, per instance (1 for a dense model, density after pruning)."""
    nonzero = sum((weights[n] != 0).flatten(1).sum(1) for n in PRUNED)
    return nonzero.float() / sum(weights[n][0].numel() for n in PRUNED)


def lottery_round(step: int, steps: int) -> int:
    """Pruning round of a cumulative checkpoint step: 0 up to ``steps``, then j for steps in (j steps, (j + 1) steps]."""
    return max(0, -(-step // steps) - 1)


def self_output(weights: Mapping[str, torch.Tensor], P: torch.Tensor, nonlinearity: str) -> torch.Tensor:
    """Decoder output at feature f for feature f alone (value 1): 1 when the feature is recovered, [I, N]."""
    x = P.T.expand(weights["W1"].shape[0], -1, -1)
    _, out = forward(weights, x, nonlinearity)
    return out.diagonal(dim1=1, dim2=2)


def measure_cell(params: Mapping[str, Any], seeds: list[int], data: Mapping[str, torch.Tensor],
            model: Mapping[str, torch.Tensor], checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> dict[str, pd.DataFrame]:
    """instances, neurons, features, sfa (final weights) and trajectory (every checkpoint) tables."""
    nonlinearity, P = params["nonlinearity"], data["P"]
    steps = int(params["steps"])
    with torch.no_grad():
        sfa = single_feature_activations(model["W1"], model["b1"], P, nonlinearity)
        loss, penalty = _eval_losses(model, params, data)
        mono, dead = monosemantic(sfa), is_dead(sfa)
        instances = pd.DataFrame({
            "seed": range(len(seeds)), "init_seed": seeds, "loss": loss.numpy(), "l1_penalty": penalty.numpy(),
            **{k: v.numpy() for k, v in mono_fractions(sfa).items()},
            "n_mono": mono.sum(1).numpy(), "n_dead": dead.sum(1).numpy(),
            "mean_bias": model["b1"].mean(1).numpy(), "weight_fraction": weight_fraction(model).numpy(),
        })
        neurons = _long({
            "frac_mono": frac_mono(sfa), "bias": model["b1"], "is_monosemantic": mono, "is_dead": dead,
            "top_feature": sfa.argmax(-1), "top_activation": sfa.amax(-1), "n_features_active": (sfa > 0).sum(-1),
            "in_norm": model["W1"].norm(dim=-1), "out_norm": model["W2"].norm(dim=-2),
        }, "neuron")
        status, mono_neurons, active_neurons = feature_status(sfa)
        probabilities = data["probabilities"].expand(len(seeds), -1)
        rank = torch.argsort(torch.argsort(-data["probabilities"], stable=True)).expand(len(seeds), -1)
        decoded = (self_output(model, P, nonlinearity) if params["task"] == "decoder"
                   else torch.full(status.shape, float("nan")))
        features = _long({"probability": probabilities, "frequency_rank": rank, "mono_neurons": mono_neurons,
                          "active_neurons": active_neurons, "max_activation": sfa.amax(-2), "self_output": decoded},
                         "feature")
        features.insert(2, "status", [STATUSES[i] for i in status.reshape(-1).tolist()])
        nonzero = torch.nonzero(sfa[0] > 0)
        sfa_rows = pd.DataFrame({"seed": 0, "neuron": nonzero[:, 0].numpy(), "feature": nonzero[:, 1].numpy(),
                                 "activation": sfa[0][sfa[0] > 0].numpy()})
        rows = []
        for step, weights in checkpoints.items():
            step_sfa = single_feature_activations(weights["W1"], weights["b1"], P, nonlinearity)
            step_loss, _ = _eval_losses(weights, params, data)
            fractions = mono_fractions(step_sfa)
            fraction, dead_count = weight_fraction(weights), is_dead(step_sfa).sum(1)
            for index in range(len(seeds)):
                rows.append({"seed": index, "step": step, "round": lottery_round(step, steps),
                             "weight_fraction": float(fraction[index]), "loss": float(step_loss[index]),
                             **{k: float(v[index]) for k, v in fractions.items()},
                             "mean_bias": float(weights["b1"][index].mean()), "n_dead": int(dead_count[index])})
    return {"instances": instances, "neurons": neurons, "features": features, "trajectory": pd.DataFrame(rows), "sfa": sfa_rows}
