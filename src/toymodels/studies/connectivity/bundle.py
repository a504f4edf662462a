"""The endpoint bundle: every cached model of one source grid, its init, its measured row and its data splits.

The package's ``upstream`` names the source grid's artifacts (Snakemake inputs of the bundle's dataset job);
``make_dataset`` reads them into one safetensors file, so the study's train and measure jobs never touch another study's files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from toymodels.artifacts import load_tensors, read_table
from toymodels.grid import cell_path, derive_seed
from toymodels.training import unflatten_checkpoints

SOURCE_FILES = ("model", "checkpoints", "instances", "data")


def _splits(source: str, params: Mapping[str, Any], data: Mapping[str, torch.Tensor], limit: int, stitch_limit: int,
            seed: int) -> dict[str, torch.Tensor]:
    """train and test inputs x and targets y of one source dataset, at most ``limit`` samples each, and the stitch
    split (at most ``stitch_limit`` samples) that stitching layers are trained on.

    monosemanticity: train = fresh samples of the training distribution (its batches are fresh every step), test = the
    study's fixed evaluation set, stitch = more fresh samples (drawn after train); double_descent: its finite training
    set (train and stitch) and its test set (targets = inputs).
    """
    if source == "monosemanticity":
        from toymodels.studies.monosemanticity.data import sample_task, task_target
        generator = torch.Generator().manual_seed(seed)
        drawn = {"train": sample_task(params["task"], data["probabilities"], limit, generator),
                 "stitch": sample_task(params["task"], data["probabilities"], stitch_limit, generator),
                 "test": data["eval_v"][:limit]}
        return {"P": data["P"], **{f"{name}_{part}": value for name, v in drawn.items()
                                   for part, value in (("x", v @ data["P"].T), ("y", task_target(params["task"], v, data["Q"])))}}
    from toymodels.studies.double_descent.data import load_dataset
    x_train, x_test = load_dataset(data)
    return {"train_x": x_train[:limit], "train_y": x_train[:limit].clone(), "test_x": x_test[:limit], "test_y": x_test[:limit].clone(),
            "stitch_x": x_train[:stitch_limit].clone(), "stitch_y": x_train[:stitch_limit].clone()}


def _numeric(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items() if isinstance(v, (int, float, bool, str, np.generic))}


def cell_labels(params: list[Mapping[str, Any]], drop: tuple[str, ...] = ()) -> list[str]:
    """A cell path per model from the hyperparameters that differ among the models (``lr=0.01/bias_offset=-1``),
    leaving out the keys in ``drop``.

    Grid-independent on purpose: a source cell shared by several grids lives in one home, named by its values off
    the study's defaults, whichever grid it is read for.
    """
    keys = [key for key in dict.fromkeys(k for p in params for k in p) if key not in drop
            and len({json.dumps(p.get(key), sort_keys=True) for p in params}) > 1]
    return [cell_path({key: p.get(key) for key in keys}) for p in params]


def make_dataset(values: Mapping[str, Any], inputs: Mapping[str, list[str]]) -> dict[str, torch.Tensor]:
    """model/<j>/<w> (final), init/<j>/<w> (step-0 checkpoint), with ``bundle_checkpoints`` every checkpoint as
    step=<s>/<j>/<w>, split/<g>/<x|y> per source dataset g, and ``index``: the JSON list of models (artifact path,
    cell, seed, dataset, source hyperparameters, instances row), as bytes."""
    source, limit, stitch_limit = values["source_study"], int(values["eval_samples"]), int(values["stitch_samples"])
    tensors, models, datasets = {}, [], []
    for model_path, ckpt_path, table_path, data_path_ in zip(*(list(inputs[k]) for k in SOURCE_FILES)):
        weights, meta = load_tensors(model_path)
        steps = unflatten_checkpoints(load_tensors(ckpt_path)[0])
        if 0 not in steps:
            raise ValueError(f"{ckpt_path}: no step-0 checkpoint (needed for the init -> final path)")
        if data_path_ not in datasets:
            g = len(datasets)
            datasets.append(data_path_)
            seed = derive_seed("connectivity", "train_split", source, data_path_)
            split = _splits(source, meta["values"], load_tensors(data_path_)[0], limit, stitch_limit, seed)
            tensors.update({f"split/{g}/{k}": v for k, v in split.items()})
        instances = read_table(table_path).sort_values("seed")
        for seed_index in range(next(iter(weights.values())).shape[0]):
            j = len(models)
            tensors.update({f"model/{j}/{n}": t[seed_index] for n, t in weights.items()})
            tensors.update({f"init/{j}/{n}": t[seed_index] for n, t in steps[0].items()})
            if values["bundle_checkpoints"]:
                tensors.update({f"step={step}/{j}/{n}": t[seed_index] for step, w in steps.items() for n, t in w.items()})
            row = instances[instances["seed"] == seed_index].iloc[0].to_dict()
            models.append({"model": model_path, "seed": seed_index,
                           "dataset": datasets.index(data_path_), "params": meta["values"], "instance": _numeric(row)})
    labels = cell_labels([m["params"] for m in models])
    for model, label in zip(models, labels):
        model["cell"] = label
    tensors = {name: t.clone() for name, t in tensors.items()}  # own storage each (safetensors refuses shared views)
    tensors["index"] = torch.tensor(list(json.dumps({"source": source, "models": models}).encode()), dtype=torch.uint8)
    return tensors


@dataclass(frozen=True)
class Endpoint:
    """One trained model of the bundle, as an endpoint of paths."""

    index: int
    model: str            # artifact path of the source model.safetensors (all seeds of the cell)
    cell: str
    seed: int
    dataset: int
    params: dict
    instance: dict
    order: float          # the value the study orders models by (source instances column ``order_by``)
    loss: float           # the source's own final loss (ties in ``order`` are broken by it)

    @property
    def label(self) -> str:
        return f"{self.cell} s{self.seed}"


def data_stream(source: str, params: Mapping[str, Any], seed: int) -> str:
    """The batch stream a source model trained on: monosemanticity draws fresh batches from its instance seed, or from
    ``data_order`` when set (shared by every instance and cell of that value); double descent trains full-batch on its
    fixed training set, so its stream is that set."""
    if source == "monosemanticity":
        order = params.get("data_order")
        return f"order {order}" if order is not None else f"seed {seed}"
    return "full batch"


LOSS_COLUMN = {"monosemanticity": "loss", "double_descent": "train_loss"}


def _matches(params: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    return all(params.get(k) in (v if isinstance(v, list) else [v]) for k, v in where.items())


# Analyses that pair models of different source cells or need the four representatives: their models share one shape.
ACROSS_CELLS = ("matrix", "basins", "curves", "stitching", "stitch_training", "hopping", "finetune")


class Bundle:
    """Read access to a bundle for one connectivity cell: the selected endpoints, their weights and data splits.

    A cell whose ``analyses`` pair models of different source cells (:data:`ACROSS_CELLS`) needs at least 4 models
    of one shape; one that only pairs seeds of a cell (seed_pairs, mli, universality) needs 2 and takes any shapes
    and families (one or two hidden layers).
    """

    def __init__(self, data: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> None:
        index = json.loads(bytes(data["index"].tolist()).decode())
        self.source, self.data = index["source"], data
        where, order_by = params["source_where"] or {}, params["order_by"]
        chosen = [m for m in index["models"] if _matches(m["params"], where)]
        across = bool(set(params["analyses"]) & set(ACROSS_CELLS))
        if len(chosen) < (4 if across else 2):
            raise ValueError(f"source_where {where} keeps {len(chosen)} models of {params['source_grid']}; need at least "
                             f"{4 if across else 2} for analyses {list(params['analyses'])}")
        if params["matrix_seeds"] == "best":
            best = {}
            for m in chosen:
                key = LOSS_COLUMN[self.source]
                if m["cell"] not in best or m["instance"][key] < best[m["cell"]]["instance"][key]:
                    best[m["cell"]] = m
            self.matrix_cells = {(m["cell"], m["seed"]) for m in best.values()}
        else:
            self.matrix_cells = {(m["cell"], m["seed"]) for m in chosen}
        self.endpoints = []
        for j, m in enumerate(index["models"]):
            if m in chosen:
                value = m["instance"].get(order_by, m["params"].get(order_by))
                if value is None:
                    raise ValueError(f"order_by {order_by!r} is neither an instances column nor a hyperparameter of {self.source}")
                self.endpoints.append(Endpoint(j, m["model"], m["cell"], m["seed"], m["dataset"], m["params"], m["instance"],
                                               float(value), float(m["instance"][LOSS_COLUMN[self.source]])))
        self.endpoints.sort(key=lambda e: (e.order, -e.loss))
        shapes = {tuple(self.weights(e)[n].shape for n in sorted(self.weights(e))) for e in self.endpoints}
        if across and len(shapes) > 1:
            raise ValueError(f"source_where {where} keeps models of different shapes {sorted(shapes)}, which analyses "
                             f"{sorted(set(params['analyses']) & set(ACROSS_CELLS))} pair; narrow it")

    def weights(self, e: Endpoint, which: str = "model") -> dict[str, torch.Tensor]:
        """Weights of e: ``model`` (final), ``init`` (step 0) or ``step=<s>`` (a checkpoint, with bundle_checkpoints)."""
        prefix = f"{which}/{e.index}/"
        return {k.removeprefix(prefix): v for k, v in self.data.items() if k.startswith(prefix)}

    def checkpoint_steps(self) -> list[int]:
        """Steps of the checkpoints the bundle carries (``bundle_checkpoints``), ascending; [] without them."""
        first = self.endpoints[0].index
        return sorted({int(k.split("/")[0].removeprefix("step=")) for k in self.data
                       if k.startswith("step=") and k.split("/")[1] == str(first)})

    def split(self, datasets: list[int], name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of split ``name`` (train | test | stitch) over the distinct datasets given, concatenated."""
        unique = sorted(set(datasets))
        return (torch.cat([self.data[f"split/{g}/{name}_x"] for g in unique]),
                torch.cat([self.data[f"split/{g}/{name}_y"] for g in unique]))

    def embedding(self, e: Endpoint) -> torch.Tensor | None:
        return self.data.get(f"split/{e.dataset}/P")

    def classes(self) -> dict[int, str]:
        """'high' for the upper half of the ranking by ``order`` (ties by lower source loss), else 'low'."""
        n = len(self.endpoints)
        return {e.index: ("high" if rank >= n // 2 else "low") for rank, e in enumerate(self.endpoints)}

    def representatives(self) -> dict[str, Endpoint]:
        """low1, low2: the two lowest-ranked models; high1, high2: the two highest."""
        e = self.endpoints
        return {"low1": e[0], "low2": e[1], "high1": e[-1], "high2": e[-2]}
