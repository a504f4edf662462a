import math

import pandas as pd
import pytest
import torch

from toymodels.studies.double_descent.data import from_sparse_tensors, make_dataset, sample_features, to_sparse_tensors
from toymodels.studies.double_descent.metrics import dimensionality, dimensions_per_feature, leverage
from toymodels.studies.double_descent.model import (
    Variant,
    fresh_batches,
    hidden,
    init_params,
    loss_and_grads,
    prepare_samples,
    reconstruction_loss,
)
from toymodels.studies.double_descent.repetition import repeated_share, repetition_summary
from toymodels.studies.double_descent.scale import onset_spread, post_onset_curves

PARAMS = dict(n_features=30, sparsity=0.8, T=12, data_seed=0, repeat_count=1, test_size=50)


def polygon(n: int, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(n) * 2 * math.pi / n
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


@pytest.mark.parametrize("T", [3, 5, 8])
def test_regular_polygon_datapoints_have_dimensionality_m_over_T(T):
    assert dimensionality(polygon(T, 0.7)) == pytest.approx(torch.full((T,), 2 / T), abs=1e-6)


def test_orthogonal_features_have_dimensionality_one_and_antipodal_pairs_half():
    assert dimensionality(torch.eye(3) * torch.tensor([2.0, 0.5, 1.0])[:, None]) == pytest.approx(torch.ones(3))
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    assert dimensionality(antipodal) == pytest.approx(torch.full((4,), 0.5))


def test_zero_vector_has_dimensionality_zero_and_batch_axes_work():
    vectors = torch.stack([torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])])
    assert dimensionality(vectors).tolist() == [[1.0, 0.0], [0.5, 0.5]]


def test_leverage_of_a_basis_is_one_and_sums_to_rank():
    h = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    assert leverage(torch.eye(2)) == pytest.approx(torch.ones(2))
    assert float(leverage(h).sum()) == pytest.approx(3.0, abs=1e-4)


def test_samples_have_unit_norm_or_are_zero_and_the_expected_sparsity():
    x = sample_features(4000, 50, 0.9, torch.Generator().manual_seed(1))
    norms = x.norm(dim=1)
    assert torch.all(((norms - 1).abs() < 1e-5) | (norms == 0))
    assert float((x > 0).float().mean()) == pytest.approx(0.1, abs=0.01)


def test_dataset_is_deterministic_sparse_roundtrip_and_repeats_sample_zero():
    a, b = make_dataset(PARAMS), make_dataset(PARAMS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = from_sparse_tensors("train", a)
    assert x.shape == (12, 30)
    assert torch.equal(from_sparse_tensors("t", to_sparse_tensors("t", x)), x)
    repeated = from_sparse_tensors("train", make_dataset({**PARAMS, "repeat_count": 4}))
    assert all(torch.equal(repeated[i], repeated[0]) for i in range(4))
    assert not torch.equal(make_dataset({**PARAMS, "data_seed": 1})["train_values"], a["train_values"])


def test_predicting_zero_gives_loss_one_on_unit_norm_data():
    x = sample_features(64, 30, 0.5, torch.Generator().manual_seed(2))
    x = x[x.norm(dim=1) > 0]
    W = torch.zeros(2, 3, 30)
    assert reconstruction_loss(W, torch.zeros(2, 30), x) == pytest.approx(torch.ones(2))


def test_hand_derived_gradients_match_autograd():
    x = sample_features(37, 30, 0.8, torch.Generator().manual_seed(3))
    params = init_params(3, 30, [1, 2])
    params["b"] = torch.randn(2, 30, generator=torch.Generator().manual_seed(4)) * 0.1
    W = params["W"].clone().requires_grad_()
    b = params["b"].clone().requires_grad_()
    reconstruction_loss(W, b, x).sum().backward()
    loss, grads = loss_and_grads(params["W"], params["b"], prepare_samples(x, chunk=8))
    assert loss == pytest.approx(reconstruction_loss(params["W"], params["b"], x), rel=1e-5)
    assert torch.allclose(grads["W"], W.grad, atol=1e-6)
    assert torch.allclose(grads["b"], b.grad, atol=1e-6)


def test_init_is_xavier_normal_per_seed():
    params = init_params(2, 2000, [5, 6, 5])
    assert torch.equal(params["W"][0], params["W"][2]) and not torch.equal(params["W"][0], params["W"][1])
    assert float(params["W"].std()) == pytest.approx(math.sqrt(2 / 2002), rel=0.05)
    assert torch.count_nonzero(params["b"]) == 0


def repeat_tables(dims: dict[int, list[float]], share: dict[int, float]) -> tuple:
    """instances / features / datapoints of a repeated grid: best seed 0 with features along the x axis at
    (i + 1, i) scaled down, the repeated point (sample 0) along +x with D_t = share / R; a worse seed 1 of junk."""
    instances = pd.DataFrame([(r, s, s == 0) for r in dims for s in (0, 1)], columns=["repeat_count", "seed", "selected"])
    features = pd.DataFrame([(r, s, i, d if s == 0 else 0.99, 0.1 * (i + 1), 1.0 - 0.3 * i)
                             for r, ds in dims.items() for s in (0, 1) for i, d in enumerate(ds)],
                            columns=["repeat_count", "seed", "feature", "dimensionality", "x", "y"])
    points = pd.DataFrame([(r, s, t, share.get(r, 0.0) / r if t == 0 else 0.01, 2.0 if t == 0 else 0.1, 1.0, 0.0)
                           for r in dims for s in (0, 1) for t in range(3)],
                          columns=["repeat_count", "seed", "sample", "dimensionality", "norm", "x", "y"])
    return instances, features, points


def test_repeated_share_counts_every_copy():
    assert repeated_share(0.05, 10) == pytest.approx(0.5)
    # R identical copies alone in the hidden space: each has D_t = 1/R, the point as a whole holds one dimension
    copies = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]])
    assert repeated_share(float(dimensionality(copies)[0]), 4) == pytest.approx(1.0)


def test_repetition_summary_counts_large_features_lost_and_the_feature_the_point_sits_on():
    # R = 1: max 0.4 -> bar 0.2, three large; R = 5: two large (one lost), the point holds 5 x 0.06 = 0.3 >= 0.2;
    # the feature with the largest projection on the point's direction (+x) is the last one (x = 0.4, y = 0.1)
    instances, features, points = repeat_tables({1: [0.4, 0.4, 0.3, 0.05], 5: [0.4, 0.3, 0.1, 0.15]}, {5: 0.3})
    summary = repetition_summary(instances, features, points).set_index("repeat_count")
    assert summary["threshold"].tolist() == pytest.approx([0.2, 0.2])
    assert summary["large_features"].tolist() == [3, 2]
    assert summary["features_lost"].tolist() == [0, 1]
    assert summary["repeated_share"].tolist() == pytest.approx([0.0, 0.3])
    assert summary["point_large"].tolist() == [False, True]
    assert summary.loc[5, "aligned_dimensionality"] == pytest.approx(0.15)
    assert summary.loc[5, "repeated_norm"] == 2.0
    with pytest.raises(ValueError, match="reference repeat_count must be 1"):
        repetition_summary(instances[instances["repeat_count"] == 5], features, points)


def test_onset_spread_is_zero_when_curves_collapse_in_T_times_density():
    # m = 2: onsets T = 100 (S = 0.9) and 1000 (S = 0.99): T(1-S) = 10 both -> 0; m = 3: 10 and 1000 x 0.01 x 10 -> 1 dex
    curves = {(2, 0.9): [0.05, 0.3, 0.3, 0.3], (2, 0.99): [0.05, 0.05, 0.3, 0.3],
              (3, 0.9): [0.05, 0.3, 0.3, 0.3], (3, 0.99): [0.05, 0.05, 0.05, 0.3]}
    ts = (10, 100, 1000, 10000)
    instances = pd.DataFrame([(m, s, t, d) for (m, s), ds in curves.items() for t, d in zip(ts, ds)],
                             columns=["m", "sparsity", "T", "max_feature_dimensionality"])
    assert onset_spread(instances) == pytest.approx({2: 0.0, 3: 1.0})
    flat = instances.assign(max_feature_dimensionality=0.3)
    assert onset_spread(flat) == {2: None, 3: None}
    post = post_onset_curves(instances[instances["sparsity"] == 0.99], "m")
    assert post[2].to_dict() == {1000: 0.3, 10000: 0.3} and post[3].to_dict() == {10000: 0.3}
    assert post_onset_curves(flat[flat["sparsity"] == 0.99], "m")[2].empty
@pytest.mark.parametrize("loss", ["mse", "l1", "huber"])
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_hand_derived_gradients_of_the_variants_match_autograd(loss, activation):
    x = sample_features(37, 30, 0.8, torch.Generator().manual_seed(3))
    params = init_params(3, 30, [1, 2])
    params["b"] = torch.randn(2, 30, generator=torch.Generator().manual_seed(4)) * 0.1
    variant = Variant(loss, activation)
    W = params["W"].clone().requires_grad_()
    b = params["b"].clone().requires_grad_()
    reconstruction_loss(W, b, x, variant=variant).sum().backward()
    value, grads = loss_and_grads(params["W"], params["b"], prepare_samples(x, chunk=8), variant)
    assert value == pytest.approx(reconstruction_loss(params["W"], params["b"], x, variant=variant), rel=1e-5)
    assert torch.allclose(grads["W"], W.grad, atol=1e-6)
    assert torch.allclose(grads["b"], b.grad, atol=1e-6)


def test_variant_losses_by_hand():
    """x = (1, 0), x' = ReLU(W^T h + b) with W = 0, b = (0.5, 2): errors (-0.5, 2), squared 0.25 + 4, absolute 0.5 + 2;
    importances I = (1, 0.5)."""
    x = torch.tensor([[1.0, 0.0]])
    W, b = torch.zeros(1, 1, 2), torch.tensor([[0.5, 2.0]])
    assert reconstruction_loss(W, b, x) == pytest.approx(torch.tensor([4.25]))
    assert reconstruction_loss(W, b, x, variant=Variant("l1")) == pytest.approx(torch.tensor([2.5]))
    # Huber, delta 1: 0.5^2 / 2 (quadratic inside delta) + 1 (2 - 1/2) (linear beyond)
    assert reconstruction_loss(W, b, x, variant=Variant("huber", huber_delta=1.0)) == pytest.approx(torch.tensor([1.625]))
    weighted = Variant.from_params({"n_features": 2, "importance_decay": 0.5})
    assert reconstruction_loss(W, b, x, variant=weighted) == pytest.approx(torch.tensor([0.25 + 2.0]))


def test_hidden_relu_clips_negative_hidden_units():
    W = torch.tensor([[[1.0, -2.0], [-1.0, 0.0]]])
    assert hidden(W, torch.tensor([[1.0, 1.0]])).tolist() == [[[-1.0, -1.0]]]
    assert hidden(W, torch.tensor([[1.0, 1.0]]), "relu").tolist() == [[[0.0, 0.0]]]


def test_infinite_data_has_only_a_test_set_and_fresh_seeded_batches():
    params = {**PARAMS, "T": None, "batch_size": 16}
    data = make_dataset(params)
    assert "train_shape" not in data and from_sparse_tensors("test", data).shape == (50, 30)
    batch, again = fresh_batches(params), fresh_batches(params)
    assert batch(0).shape == (16, 30) and torch.equal(batch(3), again(3)) and not torch.equal(batch(0), batch(1))


def test_pentagon_features_have_dimensionality_two_fifths_and_dims_per_feature_two_fifths():
    W = polygon(5, 1.3)  # [N, m] feature vectors
    assert dimensionality(W) == pytest.approx(torch.full((5,), 0.4), abs=1e-6)
    assert dimensions_per_feature(W.T[None]) == pytest.approx(torch.tensor([2 / (5 * 1.3**2)]))
    assert dimensions_per_feature(polygon(5)[None].transpose(1, 2)) == pytest.approx(torch.tensor([0.4]))


def test_infinite_batches_are_elhage_data_not_rescaled():
    x = fresh_batches({**PARAMS, "T": None, "batch_size": 4000, "sparsity": 0.5})(0)
    assert float((x > 0).float().mean()) == pytest.approx(0.5, abs=0.02)
    assert float(x.max()) <= 1 and float(x[x > 0].mean()) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(("values", "message"), [
    ({"T": None}, "needs batch_size"),
    ({"T": None, "batch_size": 8, "repeat_count": 2}, "repeat_count must be 1"),
    ({"batch_size": 8}, "batch_size is only allowed with T: null"),
    ({"importance_decay": 0.9}, "importance_decay is only allowed"),
    ({"huber_delta": 0.5, "loss": "l1"}, "huber_delta is only allowed with loss: huber"),
])
def test_check_cell_rejects_contradicting_keys(values, message):
    from toymodels.studies.double_descent import check_cell

    with pytest.raises(ValueError, match=message):
        check_cell({**PARAMS, **values}, {})
    check_cell({**PARAMS, "T": None, "batch_size": 8, "importance_decay": 0.9}, {})
