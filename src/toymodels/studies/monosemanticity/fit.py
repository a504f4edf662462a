"""Training of every seed of a cell at once: plain runs, sparse first layers, and lottery-ticket pruning rounds."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import torch

from toymodels.grid import derive_seed
from toymodels.studies.monosemanticity.data import output_size, sample_task, task_target
from toymodels.studies.monosemanticity.metrics import mono_fractions, single_feature_activations
from toymodels.studies.monosemanticity.model import bias_below_max, decay_bias, init_params, loss_and_grads, losses
from toymodels.studies.monosemanticity.sparsity import prune_and_grow, prune_global, random_mask
from toymodels.training import Stages, Stateful, TensorState, TrainConfig, TrainResult, step_generator, train

PRUNED = ("W1", "W2")


class Task:
    """The data side of a cell on one device: embeddings, feature probabilities, fresh batches, the eval set."""

    def __init__(self, params: Mapping[str, Any], data: Mapping[str, torch.Tensor], device: torch.device | str) -> None:
        self.name, self.batch = params["task"], int(params["batch_size"])
        order = params.get("data_order")
        self.order_seed = None if order is None else derive_seed("monosemanticity", "data_order", int(order))
        self.P, self.Q = data["P"].to(device), data["Q"].to(device)
        self.probabilities = data["probabilities"].to(device)
        self.eval_v = data["eval_v"].to(device)
        self.eval_x, self.eval_target = self.eval_v @ self.P.T, task_target(self.name, self.eval_v, self.Q)

    def batches(self, seeds: list[int], step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs x = P v [I, B, d] and targets, each instance's batch drawn from (its seed, step) only, or with
        ``data_order`` set from (that order, step): one stream shared by every instance and every cell of that order."""
        device = self.P.device
        streams = seeds if self.order_seed is None else [self.order_seed] * len(seeds)
        v = torch.stack([sample_task(self.name, self.probabilities, self.batch, step_generator(seed, step, device))
                         for seed in streams])
        return v @ self.P.T, task_target(self.name, v, self.Q)

    def evaluate(self, model: Mapping[str, torch.Tensor], nonlinearity: str, l1: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Task loss and L1 penalty on the fixed evaluation set, per instance."""
        x = self.eval_x.expand(model["W1"].shape[0], *self.eval_x.shape)
        target = self.eval_target.expand(model["W1"].shape[0], *self.eval_target.shape)
        return losses(model, x, target, nonlinearity, l1)


def summary(model: Mapping[str, torch.Tensor], task: Task, nonlinearity: str, l1: float) -> dict[str, torch.Tensor]:
    """Per-instance eval loss, #mono/#features, #mono/#neurons and mean first-layer bias."""
    loss, _ = task.evaluate(model, nonlinearity, l1)
    sfa = single_feature_activations(model["W1"], model["b1"], task.P, nonlinearity)
    return {"eval_loss": loss, **mono_fractions(sfa), "mean_bias": model["b1"].mean(dim=1)}


def initial_model(params: Mapping[str, Any], task: Task, seeds: list[int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Initial weights (bias by offset, or just below -B) and the first-layer mask of sparse runs."""
    n_out = output_size(params["task"], int(params["n_features"]), int(params["d"]))
    bias_init = params["bias_init"]
    offset = float(params["bias_offset"]) if bias_init == "offset" else 0.0
    model = init_params(int(params["d"]), int(params["k"]), n_out, seeds, offset, task.P.device,
                        int(params["hidden_layers"]))
    if bias_init != "offset":
        model["b1"] = bias_below_max(model["W1"], task.eval_x, bias_init == "max_neuron", float(params["bias_margin"]))
    masks = {}
    if params["mask"] != "dense":
        generator = torch.Generator().manual_seed(derive_seed("monosemanticity", "mask", seeds))
        masks["W1"] = random_mask(model["W1"].shape, float(params["density"]), generator).to(task.P.device)
        model["W1"].mul_(masks["W1"])
    return model, masks


def run(params: Mapping[str, Any], task: Task, seeds: list[int], model: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
        steps: int, offset: int = 0, on_update: Callable[[int], None] | None = None, state: Mapping[str, Stateful] | None = None,
        resume_path: str | Path | None = None, description: str = "monosemanticity") -> TrainResult:
    """Train ``model`` in place for ``steps`` updates that are updates offset .. offset + steps of a run of params['steps'].

    Masked weights get zero gradient and are re-zeroed after every update; prune-and-grow rewires the W1 mask every
    ``regrow_every`` updates during the first ``regrow_until`` of training; bias decay acts in the first half.
    The masks, and the ``state`` of ``on_update``, are in the loop's snapshot, so masked runs resume exactly.
    """
    nonlinearity, l1, total = params["nonlinearity"], float(params["l1"]), int(params["steps"])
    lr, decay = float(params["lr"]), float(params["bias_decay"])
    regrow = params["mask"] == "prune_grow"
    config = TrainConfig.from_params(params, steps=steps, no_decay=("b1",))
    workspace: dict[str, torch.Tensor] = {}

    def loss_fn(step: int):
        x, target = task.batches(seeds, offset + step)
        if not torch.is_grad_enabled():  # the loop's final evaluation: no update follows
            return losses(model, x, target, nonlinearity, l1)[0]
        with torch.no_grad():
            loss, _, grads = loss_and_grads(model, x, target, nonlinearity, l1, workspace)
        for name, mask in masks.items():
            grads[name].mul_(mask)
        return loss, grads

    def after_step(step: int) -> None:
        update = offset + step
        decay_bias(model["b1"], update, total, decay, lr)
        if regrow and (update + 1) % int(params["regrow_every"]) == 0 and update < float(params["regrow_until"]) * total:
            generator = torch.Generator().manual_seed(derive_seed("monosemanticity", "regrow", seeds, update))
            masks["W1"] = prune_and_grow(model["W1"], masks["W1"], float(params["regrow_fraction"]), generator)
        for name, mask in masks.items():
            model[name].mul_(mask)
        if on_update is not None:
            on_update(update + 1)

    def record(current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return summary(current, task, nonlinearity, l1)

    return train(model, loss_fn, config, seeds, after_step=after_step, record=record, resume_path=resume_path,
                 state={"masks": TensorState(masks), **(state or {})},
                 fingerprint={**params, "offset": offset, "masks": sorted(masks)}, description=description)


def train_lottery(params: Mapping[str, Any], task: Task, seeds: list[int], description: str,
                  resume_path: str | Path | None = None) -> TrainResult:
    """Dense training, then ``prune_rounds`` rounds: prune ``prune_fraction`` of the remaining W1 and W2 weights
    (global magnitude for ``imp``, random for ``random``; biases kept), rewind the survivors to their values after
    ``rewind_step`` updates, retrain the remaining steps - rewind_step updates with a fresh optimiser.

    Steps are cumulative: round j (0 = dense) ends at step (j + 1) * steps; the history gets a ``round`` column and
    the checkpoints hold the dense run's log-spaced ones plus every round's final weights.
    Each round is a stage of :class:`~toymodels.training.Stages`: a resumed run reads finished rounds back (the dense
    one with its rewind weights) and continues the unfinished round from its snapshot.
    """
    steps, rewind_step = int(params["steps"]), int(params["rewind_step"])
    stages = Stages(resume_path, {"params": params, "seeds": seeds}, task.P.device)
    model, _ = initial_model(params, task, seeds)
    rewind = {n: t.clone() for n, t in model.items()}
    kept = {"rewind": TensorState(rewind)}

    def keep_rewind(updates: int) -> None:
        if updates == rewind_step:
            for name, tensor in model.items():
                rewind[name].copy_(tensor)

    result = stages.run("dense", partial(run, params, task, seeds, model, {}, steps, on_update=keep_rewind, state=kept,
                                         description=f"{description} dense"), kept)
    histories, checkpoints = [result.history.assign(round=0)], dict(result.checkpoints)
    masks = {n: torch.ones_like(model[n], dtype=torch.bool) for n in PRUNED}
    for round_index in range(1, int(params["prune_rounds"]) + 1):
        generator = torch.Generator().manual_seed(derive_seed("monosemanticity", "prune", seeds, round_index))
        masks = prune_global({n: result.params[n] for n in PRUNED}, masks, float(params["prune_fraction"]),
                             params["pruning"], generator)
        model = {n: (t * masks[n] if n in masks else t).clone() for n, t in rewind.items()}
        result = stages.run(f"round={round_index}", partial(run, params, task, seeds, model, masks, steps - rewind_step,
                                                            offset=rewind_step, description=f"{description} round {round_index}"))
        start = round_index * steps + rewind_step
        histories.append(result.history.assign(step=result.history["step"] + start, round=round_index))
        checkpoints[(round_index + 1) * steps] = result.checkpoints[steps - rewind_step]
    stages.clear()
    return TrainResult(result.params, pd.concat(histories, ignore_index=True), checkpoints)


def train_model(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int], device: torch.device | str,
                resume_path: str | Path | None = None) -> TrainResult:
    """One cell: lottery rounds when ``pruning`` is set, else a single run; both resume from ``resume_path``."""
    task = Task(params, data, device)
    description = f"monosemanticity k={params['k']} lr={params['lr']}"
    if params["pruning"] != "none":
        return train_lottery(params, task, seeds, description, resume_path)
    model, masks = initial_model(params, task, seeds)
    return run(params, task, seeds, model, masks, int(params["steps"]), resume_path=resume_path, description=description)
