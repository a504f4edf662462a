"""Per-cell tables of the connectivity study (columns documented in docs/studies/connectivity.md)."""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from toymodels.studies.connectivity import TABLES
from toymodels.studies.connectivity.bundle import Bundle, Endpoint, cell_labels, data_stream
from toymodels.studies.connectivity.families import evaluate, family_of
from toymodels.studies.connectivity.fit import (
    FINETUNE_START,
    STITCH_PAIRS,
    along_setup,
    curve_setup,
    hop_setup,
    pair_split,
    stitch_setup,
    stitched_output,
)
from toymodels.studies.connectivity.landscape import (
    alphas,
    barriers,
    basin_labels,
    curve_points,
    interpolate,
    mli_bumps,
    neuron_correlations,
    relative_distance,
)

SPLITS = ("train", "test")


def _mono(e: Endpoint) -> float:
    return float(e.instance.get("mono_fraction_features", math.nan))


def _optimizer(e: Endpoint) -> str:
    """The optimiser the source model was trained with (the training loop's default, adamw, when unset)."""
    return str(e.params.get("optimizer", "adamw"))


def _describe(bundle: Bundle, classes: Mapping[int, str], names: list[str], a: Endpoint, b: Endpoint) -> dict[str, Any]:
    """Columns naming a pair: artifact paths, cells, seeds, order values, monosemanticity, classes and pair type."""
    label = {"low": names[0], "high": names[1]}
    ca, cb = label[classes[a.index]], label[classes[b.index]]
    return {"model_a": a.model, "seed_a": a.seed, "cell_a": a.cell, "model_b": b.model, "seed_b": b.seed, "cell_b": b.cell,
            "order_a": a.order, "order_b": b.order, "mono_a": _mono(a), "mono_b": _mono(b),
            "class_a": ca, "class_b": cb, "pair_type": "-".join(sorted([ca, cb], key=lambda c: -names.index(c)))}


def path_losses(family, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and error at every alpha of the straight path from a to b."""
    with torch.no_grad():
        return evaluate(family, interpolate(a, b, alpha), x, y)


def _pairs(bundle: Bundle) -> list[tuple[Endpoint, Endpoint, bool]]:
    """(a, b, in_matrix): every pair of matrix models, plus every pair of seeds of one source cell; a ranks lower."""
    out = []
    for a, b in itertools.combinations(bundle.endpoints, 2):
        in_matrix = (a.cell, a.seed) in bundle.matrix_cells and (b.cell, b.seed) in bundle.matrix_cells
        if in_matrix or a.cell == b.cell:
            out.append((a, b, in_matrix))
    return out


def _barrier_columns(alpha: torch.Tensor, loss: torch.Tensor, error: torch.Tensor) -> dict[str, float]:
    mean_endpoints, linear = barriers(alpha, loss)
    return {"loss_a": float(loss[0]), "loss_b": float(loss[-1]), "max_loss": float(loss.max()),
            "barrier_mean_endpoints": mean_endpoints, "barrier_linear": linear,
            "relative_barrier": mean_endpoints / max((float(loss[0]) + float(loss[-1])) / 2, 1e-30),
            "error_barrier_mean_endpoints": barriers(alpha, error)[0]}


def noise_sources(bundle: Bundle, a: Endpoint, b: Endpoint) -> tuple[bool, str]:
    """(same_init, differs) of a pair: whether their step-0 weights are identical, and what differs between their runs,
    joined by ' + ': ``init``, ``data order`` (their batch streams, :func:`bundle.data_stream`), then every source
    hyperparameter whose values differ; '' for none."""
    init_a, init_b = bundle.weights(a, "init"), bundle.weights(b, "init")
    same_init = all(init_a[n].shape == init_b[n].shape and torch.equal(init_a[n], init_b[n]) for n in init_a)
    differs = [] if same_init else ["init"]
    if data_stream(bundle.source, a.params, a.seed) != data_stream(bundle.source, b.params, b.seed):
        differs.append("data order")
    differs += [key for key in dict.fromkeys([*a.params, *b.params])
                if key not in ("data_order", "n_seeds") and a.params.get(key) != b.params.get(key)]
    return same_init, " + ".join(differs)


def connectivity_tables(params: Mapping[str, Any], bundle: Bundle, family, alpha: torch.Tensor) -> tuple[pd.DataFrame, pd.DataFrame]:
    """pairs (barriers per pair, alignment and split) and paths (loss and error along every path)."""
    classes, names = bundle.classes(), list(params["class_names"])
    pair_rows, path_rows = [], []
    for a, b, in_matrix in _pairs(bundle):
        wa, wb = bundle.weights(a), bundle.weights(b)
        x_match, _ = pair_split(bundle, a, b, "train")
        described = _describe(bundle, classes, names, a, b)
        same_init, differs = noise_sources(bundle, a, b)
        for method in family.alignments:
            aligned = family.align(method, wa, wb, x_match)
            for split in SPLITS:
                x, y = pair_split(bundle, a, b, split)
                loss, error = path_losses(family, wa, aligned, x, y, alpha)
                pair_rows.append({**described, "alignment": method, "permuted": method != "naive", "split": split,
                                  "same_cell": a.cell == b.cell, "in_matrix": in_matrix, "same_init": same_init,
                                  "differs": differs,
                                  **_barrier_columns(alpha, loss, error)})
                path_rows.extend({"model_a": a.model, "seed_a": a.seed, "model_b": b.model, "seed_b": b.seed,
                                  "pair_type": described["pair_type"], "alignment": method, "permuted": method != "naive",
                                  "split": split, "alpha": float(al), "loss": float(lo), "error": float(er)}
                                 for al, lo, er in zip(alpha, loss, error))
    return pd.DataFrame(pair_rows), pd.DataFrame(path_rows)


def seed_pairs_table(params: Mapping[str, Any], bundle: Bundle, alpha: torch.Tensor) -> pd.DataFrame:
    """Barriers between every two seeds of one source cell, trained and as initialised (step 0), per alignment and
    split, with the cell's value of ``sweep_key`` (the x of a barrier against width or difficulty) and its ``group``
    (the other hyperparameters that differ among the models)."""
    key = params["sweep_key"]
    groups = dict(zip((e.index for e in bundle.endpoints),
                      cell_labels([e.params for e in bundle.endpoints], drop=(key,) if key else ())))
    rows = []
    for a, b in itertools.combinations(bundle.endpoints, 2):
        if a.cell != b.cell:
            continue
        x_match, _ = pair_split(bundle, a, b, "train")
        family = family_of(bundle.source, a.params)
        described = {"model": a.model, "cell": a.cell, "group": groups[a.index], "optimizer": _optimizer(a),
                     "sweep_key": key or "",
                     "sweep_value": float(a.params[key]) if key else math.nan, "seed_a": a.seed, "seed_b": b.seed,
                     "mono_a": _mono(a), "mono_b": _mono(b)}
        for state, which in (("trained", "model"), ("init", "init")):
            wa, wb = bundle.weights(a, which), bundle.weights(b, which)
            for method in family.alignments:
                aligned = family.align(method, wa, wb, x_match)
                for split in SPLITS:
                    x, y = pair_split(bundle, a, b, split)
                    loss, error = path_losses(family, wa, aligned, x, y, alpha)
                    rows.append({**described, "state": state, "alignment": method, "permuted": method != "naive",
                                 "split": split, **_barrier_columns(alpha, loss, error)})
    return pd.DataFrame(rows)


def basin_tables(params: Mapping[str, Any], bundle: Bundle, pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """basins (per barrier-matrix model: its basin, by complete linkage of the ``basin_alignment`` test barriers at
    threshold ``basin_margin`` x the largest barrier between two seeds of one source cell) and basin_counts (the
    number of basins at every threshold where it changes)."""
    method, classes, names = params["basin_alignment"], bundle.classes(), list(params["class_names"])
    test = pairs[(pairs["split"] == "test") & (pairs["alignment"] == method) & pairs["in_matrix"]]
    models = [e for e in bundle.endpoints if (e.cell, e.seed) in bundle.matrix_cells]
    position = {(e.model, e.seed): i for i, e in enumerate(models)}
    barrier = np.zeros((len(models), len(models)))
    for row in test.itertuples():
        i, j = position[(row.model_a, row.seed_a)], position[(row.model_b, row.seed_b)]
        barrier[i, j] = barrier[j, i] = row.barrier_mean_endpoints
    within = test.loc[test["same_cell"], "barrier_mean_endpoints"]
    if within.empty:
        raise ValueError("basins: the barrier matrix has no two seeds of one source cell to set the threshold by")
    reference = max(float(within.max()), 0.0)
    threshold = float(params["basin_margin"]) * reference
    labels = basin_labels(barrier, threshold)
    label = {"low": names[0], "high": names[1]}
    basins = pd.DataFrame([{"model": e.model, "seed": e.seed, "cell": e.cell, "order": e.order, "mono": _mono(e),
                            "class": label[classes[e.index]], "alignment": method, "basin": int(labels[i]),
                            "n_basins": int(labels.max()) + 1, "threshold": threshold, "within_seed_barrier": reference}
                           for i, e in enumerate(models)])
    levels = np.unique(np.concatenate([[0.0], np.clip(barrier[np.triu_indices(len(models), 1)], 0, None)]))
    counts = pd.DataFrame([{"alignment": method, "threshold": float(level),
                            "threshold_ratio": float(level) / reference if reference > 0 else math.inf,
                            "n_basins": int(basin_labels(barrier, float(level)).max()) + 1} for level in levels])
    return basins, counts


def mli_tables(bundle: Bundle, alpha: torch.Tensor, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mli (bumps and distance per model and split) and mli_paths (loss from init, alpha 0, to final, alpha 1)."""
    classes = bundle.classes()
    label = {"low": names[0], "high": names[1]}
    rows, curve = [], []
    for e in bundle.endpoints:
        init, final = bundle.weights(e, "init"), bundle.weights(e)
        distance = relative_distance(init, final)
        for split in SPLITS:
            x, y = bundle.split([e.dataset], split)
            loss, _ = path_losses(family_of(bundle.source, e.params), init, final, x, y, alpha)
            bump, above = mli_bumps(loss)
            rows.append({"model": e.model, "seed": e.seed, "cell": e.cell, "order": e.order, "mono": _mono(e),
                         "class": label[classes[e.index]], "optimizer": _optimizer(e), "lr": float(e.params["lr"]),
                         "split": split, "loss_init": float(loss[0]),
                         "loss_final": float(loss[-1]), "bump": bump, "bump_above_start": above,
                         "relative_bump": bump / float(loss[0]) if float(loss[0]) > 0 else math.nan,
                         "distance": distance, "monotonic": bump <= 1e-6 * float(loss[0])})
            curve.extend({"model": e.model, "seed": e.seed, "order": e.order, "split": split, "alpha": float(al),
                          "loss": float(lo)} for al, lo in zip(alpha, loss))
    return pd.DataFrame(rows), pd.DataFrame(curve)


def _stitch_losses(family, wa: Mapping[str, torch.Tensor], wb: Mapping[str, torch.Tensor], M: torch.Tensor,
                   c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """loss_stitched (A's hidden layer through M, c into B's output layer), loss_a, loss_b and penalty = stitched - B."""
    with torch.no_grad():
        za = family.encode({n: t[None] for n, t in wa.items()}, x)[0]
        stitched = float((stitched_output(family, wb, M, c, za) - y).pow(2).sum(1).mean())
        loss_a = float(evaluate(family, {n: t[None] for n, t in wa.items()}, x, y)[0][0])
        loss_b = float(evaluate(family, {n: t[None] for n, t in wb.items()}, x, y)[0][0])
    return {"loss_stitched": stitched, "loss_a": loss_a, "loss_b": loss_b, "penalty": stitched - loss_b}


def stitching_table(params: Mapping[str, Any], bundle: Bundle, family, model: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Stitched loss, loss of A and of B, and penalty = loss(stitched) - loss(B), per stitched pair and split."""
    classes, names = bundle.classes(), list(params["class_names"])
    rows = []
    for i, ((a_name, b_name), (a, _, b, _)) in enumerate(zip(STITCH_PAIRS, stitch_setup(bundle))):
        for split in SPLITS:
            x, y = pair_split(bundle, a, b, split)
            rows.append({**_describe(bundle, classes, names, a, b), "stitch": f"{a_name} -> {b_name}", "split": split,
                         **_stitch_losses(family, bundle.weights(a), bundle.weights(b), model["stitch/M"][i],
                                          model["stitch/c"][i], x, y)})
    return pd.DataFrame(rows)


def stitch_training_table(params: Mapping[str, Any], bundle: Bundle, family, model: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Per stitch along training (along_setup) and split: the losses of :func:`stitching_table` and the relative
    penalty, with the checkpoint step and whether B is A's final model (within) or B's checkpoint (across)."""
    classes, names = bundle.classes(), list(params["class_names"])
    final = bundle.checkpoint_steps()[-1]
    rows = []
    for i, (kind, step, a, which_a, b, which_b) in enumerate(along_setup(bundle)):
        for split in SPLITS:
            x, y = pair_split(bundle, a, b, split)
            losses = _stitch_losses(family, bundle.weights(a, which_a), bundle.weights(b, which_b),
                                    model["along/M"][i], model["along/c"][i], x, y)
            rows.append({**_describe(bundle, classes, names, a, b), "kind": kind, "step": step, "final_step": final,
                         "split": split, **losses,
                         "relative_penalty": losses["penalty"] / max(losses["loss_b"], 1e-30)})
    return pd.DataFrame(rows)


def hopping_table(params: Mapping[str, Any], bundle: Bundle, family, model: Mapping[str, torch.Tensor],
                  alpha: torch.Tensor) -> pd.DataFrame:
    """Per (direction, lambda): the settled model's loss, monosemanticity, distance to pi(B), barriers to A and B."""
    classes, names = bundle.classes(), list(params["class_names"])
    method = params["hop_alignment"]
    rows = []
    for i, (a, b, target, lam) in enumerate(hop_setup(params, bundle)):
        final = {n: model[f"hop/{n}"][i] for n in family.names}
        wa = bundle.weights(a)
        x_match, _ = pair_split(bundle, a, b, "train")
        x, y = pair_split(bundle, a, b, "test")
        to_a, _ = path_losses(family, final, family.align(method, final, wa, x_match), x, y, alpha)
        to_b, _ = path_losses(family, final, family.align(method, final, bundle.weights(b), x_match), x, y, alpha)
        P = bundle.embedding(a)
        with torch.no_grad():
            mono = family.mono({n: t[None] for n, t in final.items()}, P)
        dist = sum(float((final[n] - target[n]).pow(2).sum()) for n in final) ** 0.5
        norm = sum(float(target[n].pow(2).sum()) for n in target) ** 0.5
        barrier_a, barrier_b = barriers(alpha, to_a)[0], barriers(alpha, to_b)[0]
        described = _describe(bundle, classes, names, a, b)
        rows.append({**described, "direction": f"{described['class_a']} -> {described['class_b']}", "lam": lam,
                     "loss": float(to_a[0]),
                     "mono_final": float(mono[0]), "distance_to_b": dist / norm,
                     "barrier_to_a": barrier_a, "barrier_to_b": barrier_b, "in_b_basin": barrier_b < barrier_a})
    return pd.DataFrame(rows)


def curves_table(params: Mapping[str, Any], bundle: Bundle, family, model: Mapping[str, torch.Tensor],
                 alpha: torch.Tensor) -> tuple[pd.DataFrame, pd.DataFrame]:
    """curves (barriers along each trained curve and along the straight line of the same pair and alignment, per split)
    and curve_paths (loss at every t of each)."""
    classes, names = bundle.classes(), list(params["class_names"])
    rows, points = [], []
    lines_done = set()
    for i, (a, b, method, aligned, curve) in enumerate(curve_setup(params, bundle)):
        wa = bundle.weights(a)
        bend = {n: model[f"curve/{n}"][i] for n in family.names}
        described = _describe(bundle, classes, names, a, b)
        shown = [curve] if (a.index, b.index, method) in lines_done else ["line", curve]
        lines_done.add((a.index, b.index, method))
        for kind in shown:
            for split in SPLITS:
                x, y = pair_split(bundle, a, b, split)
                with torch.no_grad():
                    loss, error = evaluate(family, curve_points(wa, bend, aligned, kind, alpha), x, y)
                rows.append({**described, "alignment": method, "permuted": method != "naive", "curve": kind,
                             "split": split, **_barrier_columns(alpha, loss, error),
                             "loss_middle": float(loss[len(loss) // 2]), "error_max": float(error.max())})
                points.extend({"model_a": a.model, "seed_a": a.seed, "model_b": b.model, "seed_b": b.seed,
                               "pair_type": described["pair_type"], "alignment": method, "curve": kind, "split": split,
                               "t": float(t), "loss": float(lo), "error": float(er)}
                              for t, lo, er in zip(alpha, loss, error))
    return pd.DataFrame(rows), pd.DataFrame(points)


def finetune_table(params: Mapping[str, Any], bundle: Bundle, family, checkpoints: Mapping[int, Mapping[str, torch.Tensor]],
                   alpha: torch.Tensor) -> pd.DataFrame:
    """Per beta of the fine-tuning runs and checkpoint step: test loss, #mono/#features, distance to the start and the
    barrier of the straight path back to the start, naive and weight-matched (the start matched to the checkpoint)."""
    start = bundle.representatives()[FINETUNE_START]
    w0 = bundle.weights(start)
    x_match, _ = bundle.split([start.dataset], "train")
    x, y = bundle.split([start.dataset], "test")
    P, norm = bundle.embedding(start), sum(float(t.pow(2).sum()) for t in w0.values()) ** 0.5
    rows = []
    for step, tensors in checkpoints.items():
        if f"finetune/{family.names[0]}" not in tensors:  # a step of another run's checkpoints only
            continue
        for i, beta in enumerate(params["finetune_betas"]):
            w = {n: tensors[f"finetune/{n}"][i] for n in family.names}
            with torch.no_grad():
                loss = float(evaluate(family, {n: t[None] for n, t in w.items()}, x, y)[0][0])
                mono = float(family.mono({n: t[None] for n, t in w.items()}, P)[0])
            naive, _ = path_losses(family, w, w0, x, y, alpha)
            matched, _ = path_losses(family, w, family.align("weight", w, w0, x_match), x, y, alpha)
            rows.append({"model": start.model, "seed": start.seed, "cell": start.cell, "mono_start": _mono(start),
                         "beta": float(beta), "step": int(step), "loss": loss, "loss_start": float(naive[-1]),
                         "mono": mono,
                         "distance": sum(float((w[n] - w0[n]).pow(2).sum()) for n in w) ** 0.5 / norm,
                         "barrier_naive": barriers(alpha, naive)[0], "barrier_matched": barriers(alpha, matched)[0]})
    return pd.DataFrame(rows).sort_values(["beta", "step"], ignore_index=True)


def universality_table(bundle: Bundle) -> pd.DataFrame:
    """Correlation over the test split of each hidden unit of A with its partner in B (another seed of the same source
    cell): paired by activation matching, and by index (naive) as the chance baseline; NaN for dead units."""
    rows = []
    for a, b in itertools.combinations(bundle.endpoints, 2):
        if a.cell != b.cell:
            continue
        wa, wb, family = bundle.weights(a), bundle.weights(b), family_of(bundle.source, a.params)
        x_match, _ = bundle.split([a.dataset], "train")
        x, _ = bundle.split([a.dataset], "test")
        for method in ("naive", "activation"):
            aligned = family.align(method, wa, wb, x_match)
            with torch.no_grad():
                za = family.encode({n: t[None] for n, t in wa.items()}, x)[0]
                zb = family.encode({n: t[None] for n, t in aligned.items()}, x)[0]
            corr = neuron_correlations(za, zb)
            rows.extend({"model": a.model, "cell": a.cell, "seed_a": a.seed, "seed_b": b.seed, "order": a.order,
                         "mono": _mono(a), "matching": method, "neuron": n, "correlation": float(c)}
                        for n, c in enumerate(corr))
    return pd.DataFrame(rows)


def measure_cell(params: Mapping[str, Any], seeds: list[int], data: Mapping[str, torch.Tensor],
            model: Mapping[str, torch.Tensor], checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> dict[str, pd.DataFrame]:
    """Every table of the package's TABLES: those of the cell's ``analyses`` measured, the others empty."""
    bundle = Bundle(data, params)
    family = family_of(bundle.source, bundle.endpoints[0].params)  # one family for the analyses across cells (one shape)
    alpha, wanted = alphas(int(params["n_alpha"])), set(params["analyses"])
    out: dict[str, pd.DataFrame] = {name: pd.DataFrame() for name in TABLES}
    if wanted & {"matrix", "basins"}:
        pairs, paths = connectivity_tables(params, bundle, family, alpha)
        if "matrix" in wanted:
            out.update(pairs=pairs, paths=paths)
        if "basins" in wanted:
            out["basins"], out["basin_counts"] = basin_tables(params, bundle, pairs)
    if "seed_pairs" in wanted:
        out["seed_pairs"] = seed_pairs_table(params, bundle, alpha)
    if "mli" in wanted:
        out["mli"], out["mli_paths"] = mli_tables(bundle, alpha, list(params["class_names"]))
    if "curves" in wanted:
        out["curves"], out["curve_paths"] = curves_table(params, bundle, family, model, alpha)
    if "stitching" in wanted:
        out["stitching"] = stitching_table(params, bundle, family, model)
    if "stitch_training" in wanted:
        out["stitch_training"] = stitch_training_table(params, bundle, family, model)
    if "hopping" in wanted:
        out["hopping"] = hopping_table(params, bundle, family, model, alpha)
    if "finetune" in wanted:
        out["finetune"] = finetune_table(params, bundle, family, checkpoints, alpha)
    if "universality" in wanted:
        out["universality"] = universality_table(bundle)
    return out
