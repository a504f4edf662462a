"""Per-cell tables of the modular-addition study (every column is documented in docs/studies/modular_addition.md)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from toymodels.schedules import log_spaced_steps
from toymodels.studies.modular_addition.data import split_masks
from toymodels.studies.modular_addition.fourier import band_limited, early_gradient, fourier_plane, n_frequencies, signal, survivors
from toymodels.studies.modular_addition.model import logits, pair_losses, split_metrics
from toymodels.studies.modular_addition.ode import fit_linear_ode, r2, rollout

ABLATION_COUNTS = (1, 2, 3)


def signal_trace(checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """(steps [S], signals [S, I, K]) from the ``signal`` entries training stored at every logged step."""
    steps = np.array([step for step, tensors in checkpoints.items() if "signal" in tensors])
    return steps, np.stack([checkpoints[int(step)]["signal"].double().numpy() for step in steps])


def fixed_from(steps: np.ndarray, alive: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Per instance, the first logged step from which the survivor set (``alive`` [S, I, K]) equals ``final`` [I, K]
    at every later logged step."""
    differs = (alive != final[None]).any(-1)  # [S, I]
    last_diff = np.where(differs.any(0), differs.shape[0] - 1 - np.argmax(differs[::-1], axis=0), -1)
    return steps[np.minimum(last_diff + 1, len(steps) - 1)]


def _ablation(model: Mapping[str, torch.Tensor], final_signal: torch.Tensor, data: Mapping[str, torch.Tensor],
              test_mask: torch.Tensor) -> pd.DataFrame:
    """Test loss / accuracy with the embedding rebuilt from its mean and the n strongest frequencies (MLP unchanged)."""
    rows = []
    order = final_signal.argsort(dim=-1, descending=True)
    counts = (*ABLATION_COUNTS, final_signal.shape[-1])
    for count in counts:
        kept = [sorted((order[i, :count] + 1).tolist()) for i in range(order.shape[0])]
        rebuilt = torch.stack([band_limited(model["embedding"][i], keep) for i, keep in enumerate(kept)])
        output = logits({**model, "embedding": rebuilt}, data["a"], data["b"])
        metrics = split_metrics(output, pair_losses(output, data["label"]), data["label"], ~test_mask)
        for i, keep in enumerate(kept):
            rows.append({"seed": i, "n_kept": count, "kept": ",".join(map(str, keep)),
                         "test_loss": float(metrics["test_loss"][i]), "test_accuracy": float(metrics["test_accuracy"][i])})
    return pd.DataFrame(rows)


def measure_cell(params: Mapping[str, Any], seeds: list[int], data: Mapping[str, torch.Tensor],
            model: Mapping[str, torch.Tensor], checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> dict[str, pd.DataFrame]:
    p, factor = int(params["p"]), float(params["survivor_factor"])
    n_k, n_inst = n_frequencies(p), len(seeds)
    ks = np.arange(1, n_k + 1)
    steps, trace = signal_trace(checkpoints)
    early = min(int(params["early_steps"]), int(params["steps"]))
    if not np.array_equal(steps[:early + 1], np.arange(early + 1)):
        raise ValueError(f"signals were not logged at every step 0..{early}; retrain this cell")
    final_signal = signal(model["embedding"])
    alive = survivors(final_signal, factor).numpy()
    fixed = fixed_from(steps, survivors(torch.from_numpy(trace), factor).numpy(), alive)
    gradient = early_gradient(torch.from_numpy(trace), int(params["gradient_step"])).numpy()
    train_mask = split_masks(len(data["label"]), float(params["train_fraction"]), seeds)
    with torch.no_grad():
        output = logits(model, data["a"], data["b"])
        metrics = split_metrics(output, pair_losses(output, data["label"]), data["label"], train_mask)
        metrics = {k: v.double().numpy() for k, v in metrics.items()}
        ablation = _ablation(model, final_signal, data, ~train_mask)

    instances = pd.DataFrame({
        "seed": range(n_inst), "init_seed": seeds, "n_survivors": alive.sum(1),
        "survivors": [",".join(map(str, ks[row])) for row in alive], **metrics,
        "total_signal": final_signal.sum(1).double().numpy(),
        "embedding_norm": model["embedding"].flatten(1).norm(dim=1).double().numpy(),
        "survivors_fixed_step": fixed,
    })
    for key in ("steps", "lr", "weight_decay", "dtype"):
        instances[key] = params[key]
    instances["embedding_seed"] = pd.array([params["embedding_seed"]] * n_inst, dtype="Int64")

    frequencies = pd.DataFrame({
        "seed": np.repeat(np.arange(n_inst), n_k), "k": np.tile(ks, n_inst),
        "initial_signal": trace[0].reshape(-1), "early_gradient": gradient.reshape(-1),
        "final_signal": final_signal.double().numpy().reshape(-1), "survived": alive.reshape(-1),
    })
    frequencies["final_rank"] = frequencies.groupby("seed")["final_signal"].rank(ascending=False, method="first").astype(int)

    planes = [pd.DataFrame({"seed": i, "k": int(k), "token": np.arange(p),
                            **dict(zip(("x", "y"), fourier_plane(model["embedding"][i].double(), int(k)).numpy().T))})
              for i in range(n_inst) for k in ks[alive[i]]]

    alpha = float(params["lasso_alpha"])
    fits, matrices = [], []
    predicted = {name: np.full(trace.shape, np.nan) for name in ("ode_lasso", "ode_least_squares")}
    for i in range(n_inst):
        window = trace[:early + 1, i]
        for name, method_alpha in (("ode_lasso", alpha), ("ode_least_squares", 0.0)):
            ode = fit_linear_ode(window, method_alpha)
            path = rollout(ode, window[0], early)
            predicted[name][:early + 1, i] = path
            fits.append({"seed": i, "method": name.removeprefix("ode_"), "alpha": method_alpha, "window_steps": early,
                         "r2_derivative": ode.r2_derivative, "r2_rollout": r2(window, path),
                         "nonzero_fraction": float(np.mean(ode.A != 0))})
            matrices.append(pd.DataFrame({"seed": i, "method": name.removeprefix("ode_"), "k": np.repeat(ks, n_k),
                                          "j": np.tile(ks, n_k), "A": ode.A.reshape(-1)}))
            matrices.append(pd.DataFrame({"seed": i, "method": name.removeprefix("ode_"), "k": ks, "j": 0, "A": ode.b}))

    # every step of the early window, then the loop's usual log-spaced history steps (not the denser grid it logged)
    late = set(log_spaced_steps(int(params["steps"]), int(params.get("history_points", 60))))
    rows = np.array([step <= early or step in late for step in steps])
    n_steps = int(rows.sum())
    signals = pd.DataFrame({
        "seed": np.tile(np.repeat(np.arange(n_inst), n_k), n_steps), "step": np.repeat(steps[rows], n_inst * n_k),
        "k": np.tile(ks, n_steps * n_inst), "signal": trace[rows].reshape(-1),
        **{name: values[rows].reshape(-1) for name, values in predicted.items()},
    })
    return {"instances": instances, "frequencies": frequencies, "signals": signals,
            "planes": pd.concat(planes, ignore_index=True) if planes else pd.DataFrame(columns=["seed", "k", "token", "x", "y"]),
            "ode": pd.DataFrame(fits), "ode_matrix": pd.concat(matrices, ignore_index=True), "ablation": ablation}
