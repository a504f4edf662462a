"""Hand-checked cases of the connectivity formulas: barriers, MLI bumps, matching, stitching, correlations."""

import math

import pytest
import torch

from toymodels.studies.connectivity.bundle import cell_labels
from toymodels.studies.connectivity.families import OneHiddenLayer, TiedReLU, evaluate
from toymodels.studies.connectivity.fit import stitch_init, stitched_output
from toymodels.studies.connectivity.landscape import (
    alphas,
    barriers,
    interpolate,
    match_permutation,
    mli_bumps,
    neuron_correlations,
    procrustes,
    relative_distance,
)


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
