"""Hand-checked cases of the connectivity formulas: barriers, curves, basins, seed pairs, MLI bumps, matching,
stitching, correlations."""

import json
import math

import numpy as np
import pytest
import torch

from toymodels.studies.connectivity.bundle import Bundle, cell_labels
from toymodels.studies.connectivity.families import OneHiddenLayer, TiedReLU, evaluate
from toymodels.studies.connectivity.fit import (
    along_setup,
    curve_setup,
    fit_stitches,
    stitch_init,
    stitched_output,
    train_curves,
    train_finetune,
)
from toymodels.studies.connectivity.landscape import (
    alphas,
    barriers,
    basin_labels,
    combine,
    curve_coefficients,
    curve_points,
    interpolate,
    match_permutation,
    mli_bumps,
    neuron_correlations,
    procrustes,
    relative_distance,
)
from toymodels.studies.connectivity.measure import (
    basin_tables,
    connectivity_tables,
    finetune_table,
    noise_sources,
    seed_pairs_table,
    stitch_training_table,
)
from toymodels.training import Stages


def test_barriers_on_a_hand_built_curve():
    alpha = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    loss = torch.tensor([1.0, 3.0, 2.0, 2.0, 3.0])
    mean_endpoints, linear = barriers(alpha, loss)
    assert mean_endpoints == pytest.approx(3.0 - (1.0 + 3.0) / 2)          # 1.0
    assert linear == pytest.approx(3.0 - (0.75 * 1.0 + 0.25 * 3.0))       # 1.5 at alpha = 0.25
    flat = barriers(alpha, torch.full((5,), 2.0))
    assert flat == (0.0, 0.0)


def test_mli_bumps_on_hand_built_paths():
    assert mli_bumps(torch.tensor([4.0, 3.0, 3.5, 1.0, 2.0, 0.5])) == pytest.approx((1.0, 0.0))  # rise 1 -> 2, never above 4
    assert mli_bumps(torch.tensor([1.0, 1.5, 0.2])) == pytest.approx((0.5, 0.5))
    assert mli_bumps(torch.tensor([3.0, 2.0, 1.0])) == (0.0, 0.0)


def test_relative_distance():
    assert relative_distance({"w": torch.zeros(2)}, {"w": torch.tensor([3.0, 4.0])}) == pytest.approx(1.0)
    assert relative_distance({"w": torch.tensor([3.0, 0.0])}, {"w": torch.tensor([3.0, 4.0])}) == pytest.approx(0.8)


def test_interpolation_endpoints_and_midpoint():
    a, b = {"w": torch.tensor([0.0, 2.0])}, {"w": torch.tensor([4.0, 2.0])}
    path = interpolate(a, b, torch.tensor([0.0, 0.5, 1.0]))["w"]
    assert torch.equal(path, torch.tensor([[0.0, 2.0], [2.0, 2.0], [4.0, 2.0]]))


@pytest.mark.parametrize(("kind", "t", "expected"), [
    ("line", 0.25, (0.75, 0.0, 0.25)),
    ("bezier", 0.5, (0.25, 0.5, 0.25)),        # (1 - t)^2, 2 t (1 - t), t^2
    ("bezier", 0.25, (0.5625, 0.375, 0.0625)),
    ("chain", 0.25, (0.5, 0.5, 0.0)),          # halfway from A to the bend
    ("chain", 0.5, (0.0, 1.0, 0.0)),           # the corner is the bend
    ("chain", 0.75, (0.0, 0.5, 0.5)),
    ("chain", 1.0, (0.0, 0.0, 1.0)),
])
def test_curve_coefficients(kind, t, expected):
    assert tuple(float(c) for c in curve_coefficients(kind, torch.tensor([t]))) == pytest.approx(expected)


def test_curves_through_the_midpoint_are_the_line_and_a_known_bend_avoids_the_barrier():
    """On the ring of minima L(theta) = (|theta|^2 - 1)^2, A = (1, 0) and B = (-1, 0) are joined by a straight line over
    the peak L(0) = 1; the Bezier curve with bend (0, 2) passes through (0, 1), on the ring, at t = 1/2."""
    a, b = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([-1.0, 0.0])}
    t = alphas(5)
    midpoint = {"w": (a["w"] + b["w"]) / 2}
    for kind in ("bezier", "chain"):
        assert torch.allclose(curve_points(a, midpoint, b, kind, t)["w"], interpolate(a, b, t)["w"])
    ring = lambda w: (w.pow(2).sum(1) - 1).pow(2)  # noqa: E731
    assert barriers(t, ring(interpolate(a, b, t)["w"]))[0] == pytest.approx(1.0)
    curve = curve_points(a, {"w": torch.tensor([0.0, 2.0])}, b, "bezier", t)["w"]
    assert torch.allclose(curve[2], torch.tensor([0.0, 1.0]))
    assert ring(curve[2:3]).item() == pytest.approx(0.0)
    assert barriers(t, ring(curve))[0] < 0.2


def _mlp(k=12, d=5, out=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W1": torch.randn(k, d, generator=g), "b1": torch.randn(k, generator=g), "W2": torch.randn(out, k, generator=g)}


@pytest.mark.parametrize("method", ["weight", "activation"])
def test_a_permuted_copy_is_matched_back_exactly_with_zero_barrier(method):
    family = OneHiddenLayer("relu")
    a = _mlp()
    shuffle = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    b = family.permute(a, shuffle)
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(2))
    aligned = family.align(method, a, b, x)
    for name in a:
        assert torch.equal(aligned[name], a[name])
    y = family.decode({n: t[None] for n, t in a.items()}, family.encode({n: t[None] for n, t in a.items()}, x))[0]
    alpha = alphas(25)
    with torch.no_grad():
        loss, _ = evaluate(family, interpolate(a, aligned, alpha), x, y)
        naive, _ = evaluate(family, interpolate(a, b, alpha), x, y)
    assert barriers(alpha, loss) == pytest.approx((0.0, 0.0), abs=1e-9)  # (1 - alpha) a + alpha a rounds at 1e-12
    assert barriers(alpha, naive)[0] > 0.1  # the unmatched copy does have a barrier


def test_weight_similarity_includes_the_bias():
    family = OneHiddenLayer("relu")
    a = {"W1": torch.zeros(2, 1), "b1": torch.tensor([1.0, -1.0]), "W2": torch.zeros(1, 2)}
    b = {"W1": torch.zeros(2, 1), "b1": torch.tensor([-2.0, 3.0]), "W2": torch.zeros(1, 2)}
    assert torch.equal(family.weight_similarity(a, b), torch.tensor([[-2.0, 3.0], [2.0, -3.0]]))
    assert match_permutation(family.weight_similarity(a, b)).tolist() == [1, 0]


def test_tied_model_orthogonal_and_permutation_matching():
    family = TiedReLU()
    g = torch.Generator().manual_seed(4)
    a = {"W": torch.randn(3, 20, generator=g, dtype=torch.float64), "b": torch.randn(20, generator=g, dtype=torch.float64)}
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    rotated = {"W": q @ a["W"], "b": a["b"]}
    x = torch.rand(50, 20, generator=g, dtype=torch.float64)
    # the model is invariant under W -> O W ...
    batched, original = {n: t[None] for n, t in rotated.items()}, {n: t[None] for n, t in a.items()}
    assert torch.allclose(family.decode(batched, family.encode(batched, x)), family.decode(original, family.encode(original, x)))
    # ... and Procrustes undoes the rotation
    assert torch.allclose(family.align("orthogonal", a, rotated, x)["W"], a["W"], atol=1e-10)
    assert torch.allclose(procrustes(a["W"], rotated["W"]), q.T, atol=1e-10)
    permuted = family.permute(a, torch.tensor([2, 0, 1]))
    assert torch.equal(family.align("weight", a, permuted, x)["W"], a["W"])


def test_stitching_a_model_to_itself_costs_nothing():
    family = OneHiddenLayer("relu")
    a = _mlp(seed=5)
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(6))
    y = torch.randn(300, 7, generator=torch.Generator().manual_seed(7))
    za = family.encode({n: t[None] for n, t in a.items()}, x)[0]
    M, c = stitch_init(za, za)
    stitched = (stitched_output(family, a, M, c, za) - y).pow(2).sum(1).mean()
    own, _ = evaluate(family, {n: t[None] for n, t in a.items()}, x, y)
    assert float(stitched) - float(own[0]) == pytest.approx(0.0, abs=1e-4)


def test_neuron_correlations():
    za = torch.tensor([[1.0, 5.0, 1.0], [2.0, 5.0, 0.0], [3.0, 5.0, 2.0]])
    zb = torch.tensor([[2.0, 1.0, -1.0], [4.0, 2.0, 0.0], [6.0, 3.0, -2.0]])
    corr = neuron_correlations(za, zb)
    assert corr[0].item() == pytest.approx(1.0)
    assert math.isnan(corr[1].item())  # a constant (dead) neuron has no correlation
    assert corr[2].item() == pytest.approx(-1.0)


def test_cell_labels_name_models_by_the_hyperparameters_that_differ():
    params = [{"m": 2, "T": 6, "lr": 0.01}, {"m": 2, "T": 6, "lr": 0.01}, {"m": 2, "T": 100, "lr": 0.01}, {"m": 3, "T": 6, "lr": 0.01}]
    assert cell_labels(params) == ["m=2/T=6", "m=2/T=6", "m=2/T=100", "m=3/T=6"]
    assert cell_labels([{"lr": 0.1}]) == ["default"]
    optional = [{"lr": 0.1}, {"lr": 0.1, "data_order": 1}, {"lr": 0.1, "data_order": 2}]  # a key only some cells set
    assert cell_labels(optional) == ["data_order=None", "data_order=1", "data_order=2"]


def _teacher_bundle(k: int = 6, d: int = 3, cells: tuple[str, ...] = ("c0", "c1", "c2", "c3"),
                    checkpoints: bool = False) -> dict[str, torch.Tensor]:
    """Four one-hidden-layer models whose top two (by #mono) are a teacher and a hidden-unit permutation of it; targets
    are the teacher's outputs, so both have loss 0 and any barrier between them comes from the path. ``cells`` names
    each model's source cell (models of one cell are its seeds); init = final weights; with ``checkpoints``, step=0
    (the final weights shrunk by half) and step=5 (the final weights) as the bundle's checkpoints."""
    g = torch.Generator().manual_seed(3)
    teacher = {"W1": torch.randn(k, d, generator=g), "b1": torch.rand(k, generator=g), "W2": torch.randn(d, k, generator=g)}
    family = OneHiddenLayer("relu")
    models = [_mlp(k, d, d, seed=11), _mlp(k, d, d, seed=12), family.permute(teacher, torch.arange(k).roll(3)), teacher]
    tensors, index = {}, []
    for j, weights in enumerate(models):
        for which in ("model", "init"):
            tensors.update({f"{which}/{j}/{n}": t.clone() for n, t in weights.items()})
        if checkpoints:
            tensors.update({f"step=0/{j}/{n}": t / 2 for n, t in weights.items()})
            tensors.update({f"step=5/{j}/{n}": t.clone() for n, t in weights.items()})
        index.append({"model": "m", "seed": j, "dataset": 0, "cell": cells[j],
                      "params": {"nonlinearity": "relu", "hidden_layers": 1, "k": k, "lr": 0.01},
                      "instance": {"mono_fraction_features": j / 4, "loss": 1.0}})
    for name, size in (("train", 256), ("stitch", 1024), ("test", 256)):
        x = torch.randn(size, d, generator=g)
        tensors[f"split/0/{name}_x"] = x
        tensors[f"split/0/{name}_y"] = evaluate_outputs(family, teacher, x)
    tensors["split/0/P"] = torch.randn(d, 4, generator=g)
    tensors["index"] = torch.tensor(list(json.dumps({"source": "monosemanticity", "models": index}).encode()), dtype=torch.uint8)
    return tensors


def evaluate_outputs(family, w, x):
    one = {n: t[None] for n, t in w.items()}
    return family.decode(one, family.encode(one, x))[0]


def test_a_trained_bend_lowers_the_naive_barrier_between_a_model_and_its_permuted_copy():
    params = {"source_where": {}, "source_grid": "g", "order_by": "mono_fraction_features", "matrix_seeds": "all",
              "analyses": ["curves"], "curve_alignment": "weight", "curve_steps": 300, "curve_lr": 3e-2, "curve_batch": 128,
              "history_points": 3}
    bundle = Bundle(_teacher_bundle(), params)
    runs = curve_setup(params, bundle)
    assert [(a.seed, b.seed, method, kind) for a, b, method, _, kind in runs[:4]] == [
        (3, 2, "naive", "bezier"), (3, 2, "naive", "chain"), (3, 2, "weight", "bezier"), (3, 2, "weight", "chain")]
    result = train_curves(params, bundle, 0, Stages(None, {}))
    family, t = OneHiddenLayer("relu"), alphas(25)
    x, y = bundle.split([0], "test")
    a = bundle.weights(runs[0][0])
    for i in (0, 1):  # naive bezier, naive chain: the line has a barrier, the trained curve much less of one
        _, _, _, b, kind = runs[i]
        bend = {n: result.params[n][i] for n in family.names}
        line, _ = evaluate(family, interpolate(a, b, t), x, y)
        curve, _ = evaluate(family, curve_points(a, bend, b, kind, t), x, y)
        assert float(line.max()) > 0.5
        assert float(curve.max()) < 0.25 * float(line.max()), kind
    matched_line, _ = evaluate(family, interpolate(a, runs[2][3], t), x, y)
    assert float(matched_line.max()) == pytest.approx(0.0, abs=1e-8)  # weight matching undoes the planted permutation


def test_combine_weights_each_instance_by_its_own_coefficients():
    a, bend, b = {"w": torch.tensor([[1.0, 0.0], [2.0, 2.0]])}, {"w": torch.tensor([[0.0, 4.0], [0.0, 0.0]])}, {"w": torch.zeros(2, 2)}
    out = combine(torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.0, 0.75]]), a, bend, b)["w"]
    assert torch.equal(out, torch.tensor([[0.5, 2.0], [0.5, 0.5]]))


def test_complete_linkage_basins_split_a_chain_that_single_linkage_would_join():
    near, far = 0.1, 1.0
    blocks = np.array([[0, near, far, far], [near, 0, far, far], [far, far, 0, near], [far, far, near, 0]])
    assert basin_labels(blocks, 0.2).tolist() == [0, 0, 1, 1]
    assert basin_labels(blocks, 1.0).tolist() == [0, 0, 0, 0]
    assert basin_labels(blocks, 0.05).tolist() == [0, 1, 2, 3]
    chain = np.array([[0, 0.1, 0.3], [0.1, 0, 0.1], [0.3, 0.1, 0]])  # 0-1 and 1-2 near, 0-2 not
    assert basin_labels(chain, 0.2).tolist() in ([0, 0, 1], [0, 1, 1])
    assert basin_labels(-blocks, 0.0).tolist() == [0, 0, 0, 0]  # negative barriers count as 0


BASIN_PARAMS = {"source_where": {}, "source_grid": "g", "order_by": "mono_fraction_features", "matrix_seeds": "all",
                "analyses": ["matrix", "basins", "seed_pairs"], "class_names": ["poly", "mono"],
                "basin_alignment": "weight", "basin_margin": 1.0, "sweep_key": "k"}


def test_seed_pairs_of_a_planted_permutation_have_zero_matched_barrier_trained_and_at_init():
    bundle = Bundle(_teacher_bundle(cells=("c0", "c1", "t", "t")), BASIN_PARAMS)
    table = seed_pairs_table(BASIN_PARAMS, bundle, alphas(25))
    assert set(zip(table["seed_a"], table["seed_b"])) == {(2, 3)}  # only the two seeds of cell t are a seed pair
    assert set(table["state"]) == {"trained", "init"} and set(table["sweep_value"]) == {6.0}
    test = table[table["split"] == "test"].set_index(["state", "alignment"])
    for state in ("trained", "init"):
        assert test.loc[(state, "weight"), "barrier_mean_endpoints"] == pytest.approx(0.0, abs=1e-8)
        assert test.loc[(state, "naive"), "barrier_mean_endpoints"] > 0.1
    assert test.loc[("trained", "naive"), "relative_barrier"] > 1e6  # endpoint loss 0: the relative barrier explodes


def test_basins_put_the_planted_copies_together_and_every_other_model_apart():
    bundle = Bundle(_teacher_bundle(cells=("c0", "c1", "t", "t")), BASIN_PARAMS)
    pairs, _ = connectivity_tables(BASIN_PARAMS, bundle, OneHiddenLayer("relu"), alphas(25))
    basins, counts = basin_tables(BASIN_PARAMS, bundle, pairs)
    assert basins["within_seed_barrier"].iloc[0] == pytest.approx(0.0, abs=1e-8)  # t's two seeds, matched
    assert basins["n_basins"].iloc[0] == 3
    labels = dict(zip(basins["seed"], basins["basin"]))
    assert labels[2] == labels[3] and len({labels[0], labels[1], labels[2]}) == 3
    by_ratio = counts.set_index("threshold_ratio")["n_basins"]
    assert by_ratio.loc[1.0] == 3 and by_ratio.iloc[0] == 4 and by_ratio.iloc[-1] == 1  # threshold 0 .. the largest barrier
    assert counts["threshold"].is_monotonic_increasing and counts["n_basins"].is_monotonic_decreasing


def test_contradicting_cell_keys_fail_before_any_work_with_the_key_named():
    from toymodels.config import load_config_file
    from toymodels.studies.connectivity import check_cell

    config = load_config_file("config/quick.yaml")
    cell = {**config["studies"]["connectivity"]["defaults"], "source_grid": "neurons", "source_where": {}}
    check_cell({**cell, "sweep_key": "k"}, config)
    with pytest.raises(ValueError, match="sweep_key 'frequencies' must be a numeric hyperparameter"):
        check_cell({**cell, "sweep_key": "frequencies"}, config)
    with pytest.raises(ValueError, match="needs matrix_seeds: all"):
        check_cell({**cell, "analyses": ["matrix", "basins"], "matrix_seeds": "best"}, config)


def test_stitches_along_training_pair_each_checkpoint_with_the_final_model_and_the_other_seed():
    params = {**BASIN_PARAMS, "analyses": ["stitch_training"], "stitch_lr": 1e-3, "history_points": 2}
    bundle = Bundle(_teacher_bundle(checkpoints=True), params)
    assert bundle.checkpoint_steps() == [0, 5]
    setup = along_setup(bundle)
    assert [(kind, step, a.seed, wa, b.seed, wb) for kind, step, a, wa, b, wb in setup[:4]] == [
        ("within", 0, 3, "step=0", 3, "model"), ("across", 0, 3, "step=0", 2, "step=0"),
        ("within", 5, 3, "step=5", 3, "model"), ("across", 5, 3, "step=5", 2, "step=5")]
    result = fit_stitches(params, bundle, [(a, wa, b, wb) for _, _, a, wa, b, wb in setup], "along", 1, 16, 0,
                          Stages(None, {}))
    table = stitch_training_table(params, bundle, OneHiddenLayer("relu"), {f"along/{n}": t for n, t in result.params.items()})
    test = table[table["split"] == "test"].set_index(["cell_a", "kind", "step"])
    # the final model into itself, and into its hidden-unit permutation: both exact up to the map, so no penalty
    assert test.loc[("c3", "within", 5), "penalty"] == pytest.approx(0.0, abs=1e-3)
    assert test.loc[("c3", "across", 5), "penalty"] == pytest.approx(0.0, abs=1e-3)
    assert test.loc[("c3", "within", 5), "loss_b"] == pytest.approx(0.0, abs=1e-10)


def test_noise_sources_name_the_initialisation_the_data_order_and_the_hyperparameters_that_differ():
    tensors = _teacher_bundle()
    index = json.loads(bytes(tensors["index"].tolist()).decode())
    orders, batches = (1, 2, None, None), (128, 128, 128, 32)
    for model, order, batch in zip(index["models"], orders, batches):
        model["params"] = {**model["params"], "batch_size": batch, **({} if order is None else {"data_order": order})}
    tensors["index"] = torch.tensor(list(json.dumps(index).encode()), dtype=torch.uint8)
    tensors.update({f"init/1/{n}": tensors[f"init/0/{n}"].clone() for n in ("W1", "b1", "W2")})  # 0 and 1 share an init
    bundle = Bundle(tensors, BASIN_PARAMS)
    by_seed = {e.seed: e for e in bundle.endpoints}
    assert noise_sources(bundle, by_seed[0], by_seed[1]) == (True, "data order")  # one init, two batch streams
    assert noise_sources(bundle, by_seed[0], by_seed[2]) == (False, "init + data order")
    assert noise_sources(bundle, by_seed[2], by_seed[3]) == (False, "init + data order + batch_size")
    assert noise_sources(bundle, by_seed[2], by_seed[2]) == (True, "")


def test_fine_tuning_starts_at_the_start_and_the_barrier_reward_moves_away_from_it():
    params = {**BASIN_PARAMS, "analyses": ["finetune"], "finetune_betas": [0.0, 8.0], "finetune_steps": 40,
              "finetune_lr": 3e-2, "finetune_batch": 128, "history_points": 3, "n_alpha": 25}
    tensors, g = _teacher_bundle(), torch.Generator().manual_seed(5)
    for n in ("W1", "b1", "W2"):  # the start (lowest-ranked, model 0) is the teacher: a minimum of the noisy task
        tensors[f"model/0/{n}"], tensors[f"model/3/{n}"] = tensors[f"model/3/{n}"], tensors[f"model/0/{n}"]
    for name in ("train", "stitch", "test"):
        tensors[f"split/0/{name}_y"] = tensors[f"split/0/{name}_y"] + 0.3 * torch.randn(tensors[f"split/0/{name}_y"].shape, generator=g)
    bundle = Bundle(tensors, params)
    result = train_finetune(params, bundle, 0, Stages(None, {}))
    first = result.history[result.history["step"] == 0].sort_values("seed")["loss"].tolist()
    x, y = bundle.split([0], "stitch")
    start = {n: t[None] for n, t in bundle.weights(bundle.representatives()["low1"]).items()}
    # at theta = theta_0 the midpoint is the start: the objective is (1 - beta) x the start's loss on that minibatch
    assert first[1] == pytest.approx(-7 * first[0], rel=1e-5)
    assert first[0] == pytest.approx(float(evaluate(OneHiddenLayer("relu"), start, x, y)[0][0]), rel=0.3)
    checkpoints = {step: {f"finetune/{n}": t for n, t in tensors.items()} for step, tensors in result.checkpoints.items()}
    table = finetune_table(params, bundle, OneHiddenLayer("relu"), checkpoints, alphas(25)).set_index(["beta", "step"])
    assert table.loc[(0.0, 0), "distance"] == 0
    assert table.loc[(0.0, 0), "barrier_naive"] == pytest.approx(0.0, abs=1e-5 * table.loc[(0.0, 0), "loss"])
    last = max(step for _, step in table.index)
    assert table.loc[(8.0, last), "barrier_naive"] > table.loc[(0.0, last), "barrier_naive"] + 0.1
    # plain fine-tuning stays in the start's basin: about its loss, no barrier back
    assert table.loc[(0.0, last), "loss"] == pytest.approx(table.loc[(0.0, 0), "loss"], rel=0.1)
    assert table.loc[(0.0, last), "barrier_naive"] < 0.02


def test_layer_wise_matching_undoes_a_permutation_planted_in_both_hidden_layers():
    from toymodels.studies.connectivity.families import TwoHiddenLayers

    g = torch.Generator().manual_seed(7)
    k, d, out = 10, 4, 5
    a = {"W1": torch.randn(k, d, generator=g), "b1": torch.rand(k, generator=g), "Wh": torch.randn(k, k, generator=g),
         "bh": torch.rand(k, generator=g), "W2": torch.randn(out, k, generator=g)}
    family = TwoHiddenLayers("relu")
    planted = (torch.randperm(k, generator=g), torch.randperm(k, generator=g))
    b = family.permute(a, planted)
    x = torch.randn(256, d, generator=g)
    assert torch.allclose(evaluate_outputs(family, a, x), evaluate_outputs(family, b, x), atol=1e-5)  # same function
    t = alphas(25)
    naive, _ = evaluate(family, interpolate(a, b, t), x, evaluate_outputs(family, a, x))
    assert float(naive.max()) > 0.1
    for method in ("weight", "activation"):
        aligned = family.align(method, a, b, x)
        assert all(torch.allclose(aligned[n], a[n]) for n in family.names), method
    p1, p2 = family.weight_matching(a, b)
    assert torch.equal(planted[0][p1], torch.arange(k)) and torch.equal(planted[1][p2], torch.arange(k))
