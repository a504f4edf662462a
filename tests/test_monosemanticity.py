"""Hand-checked cases for the monosemanticity study: data, metric, bias handling, masks, LAMB, tables."""

from __future__ import annotations

import math

import pytest
import torch

from toymodels.studies.monosemanticity.data import feature_probabilities, make_dataset, random_embedding, sample_features, task_target
from toymodels.studies.monosemanticity.figures import sfa_matrix, steps_to_reach
from toymodels.studies.monosemanticity.measure import lottery_round, weight_fraction
from toymodels.studies.monosemanticity.metrics import (
    feature_status,
    frac_mono,
    is_dead,
    mono_fractions,
    monosemantic,
    single_feature_activations,
)
from toymodels.studies.monosemanticity.model import bias_below_max, decay_bias, forward, init_params, loss_and_grads, losses, solu
from toymodels.studies.monosemanticity.sparsity import prune_and_grow, prune_global, random_mask


def identity_layer(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """P = I (d = N) and W1 = I, b1 = 0: neuron n reads feature n only."""
    return torch.eye(n)[None], torch.zeros(1, n), torch.eye(n)


def test_identity_layer_is_fully_monosemantic():
    W1, b1, P = identity_layer(4)
    sfa = single_feature_activations(W1, b1, P)
    assert torch.equal(sfa[0], torch.eye(4))
    assert torch.allclose(frac_mono(sfa), torch.ones(1, 4))
    fractions = mono_fractions(sfa)
    assert fractions["mono_fraction_features"].item() == 1.0
    assert fractions["mono_fraction_neurons"].item() == 1.0


def test_neuron_reading_two_features_equally_is_not_monosemantic():
    W1, b1, P = identity_layer(4)
    W1[0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    sfa = single_feature_activations(W1, b1, P)
    assert frac_mono(sfa)[0, 0].item() == pytest.approx(0.5)
    assert monosemantic(sfa)[0].tolist() == [False, True, True, True]
    assert mono_fractions(sfa)["mono_fraction_features"].item() == 0.75


def test_dead_neurons_are_excluded():
    W1, b1, P = identity_layer(4)
    b1[0, 2] = -5.0                     # feature 2 alone gives 1 - 5 < 0: neuron 2 never fires
    sfa = single_feature_activations(W1, b1, P)
    assert is_dead(sfa)[0].tolist() == [False, False, True, False]
    assert frac_mono(sfa)[0, 2].item() == 0.0
    assert mono_fractions(sfa)["mono_fraction_neurons"].item() == 0.75


def test_a_small_second_feature_breaks_the_0999_threshold():
    W1, b1, P = identity_layer(3)
    W1[0, 0, 1] = 0.002                 # 1 / 1.002 = 0.998 < 0.999
    W1[0, 1, 0] = 0.0005                # 1 / 1.0005 = 0.9995 > 0.999
    assert monosemantic(single_feature_activations(W1, b1, P))[0].tolist() == [False, True, True]


def test_feature_status_monosemantic_shared_dropped():
    sfa = torch.tensor([[[1.0, 0.0, 0.0, 0.0],     # monosemantic for feature 0
                         [0.0, 0.5, 0.5, 0.0],     # features 1 and 2 share this neuron
                         [0.0, 0.0, 0.0, 0.0]]])   # dead; feature 3 activates nothing
    status, mono_neurons, active = feature_status(sfa)
    assert status[0].tolist() == [0, 1, 1, 2]
    assert mono_neurons[0].tolist() == [1, 0, 0, 0]
    assert active[0].tolist() == [1, 1, 1, 0]


def test_uniform_and_power_law_probabilities():
    assert torch.allclose(feature_probabilities(8, 0.125, "uniform"), torch.full((8,), 0.125))
    p = feature_probabilities(512, 1 / 1024, "power_law")          # no clipping: sum is exactly N eps
    assert p[0].item() < 1 and p.sum().item() == pytest.approx(0.5, rel=1e-5)
    assert p[1].item() / p[0].item() == pytest.approx(2 ** -1.1, rel=1e-5)
    paper = feature_probabilities(512, 1 / 64, "power_law")        # the paper's setting clips the commonest features
    assert paper.max().item() == 1.0 and paper.sum().item() < 8.0
    clipped = feature_probabilities(10, 0.5, "power_law")
    raw = torch.arange(1, 11, dtype=torch.float64).pow(-1.1)
    raw = raw * 5 / raw.sum()
    assert raw[0] > 1 and clipped[0].item() == 1.0
    assert torch.allclose(clipped[1:], raw[1:].float())
    assert clipped.sum().item() < 5.0


def test_sampled_frequencies_and_values():
    p = torch.tensor([0.5, 0.1, 1.0, 0.0])
    v = sample_features(p, 40000, torch.Generator().manual_seed(0))
    assert torch.allclose((v > 0).float().mean(0), p, atol=0.01)
    assert v[:, 2].mean().item() == pytest.approx(0.5, abs=0.01)        # U[0, 1] values
    assert v[v[:, 0] > 0, 0].mean().item() == pytest.approx(0.5, abs=0.01)
    assert v.max() <= 1.0


def test_embedding_has_unit_columns_and_is_shared_across_sparsities():
    P = random_embedding(64, 8, torch.Generator().manual_seed(1))
    assert P.shape == (8, 64)
    assert torch.allclose(P.norm(dim=0), torch.ones(64), atol=1e-5)
    base = dict(n_features=32, d=4, frequencies="uniform", eps=0.1, task="decoder", eval_size=16, data_seed=0)
    a, b = make_dataset(base), make_dataset({**base, "eps": 0.2, "task": "abs"})
    assert torch.equal(a["P"], b["P"]) and torch.equal(a["Q"], b["Q"])
    assert not torch.equal(a["eval_v"], b["eval_v"])
    assert (b["eval_v"] < 0).any()                                     # abs task: v = v1 - v2


def test_task_targets():
    v = torch.tensor([[0.5, -0.25]])
    Q = torch.tensor([[1.0, 2.0]])
    assert torch.equal(task_target("decoder", v, Q), v)
    assert torch.equal(task_target("abs", v, Q), torch.tensor([[0.5, 0.25]]))
    assert torch.equal(task_target("reproject", v, Q), torch.tensor([[0.0]]))


def test_loss_sums_outputs_and_averages_batch_and_l1_is_separate():
    params = {"W1": torch.eye(2)[None], "b1": torch.zeros(1, 2), "W2": torch.eye(2)[None]}
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    target = torch.zeros(1, 2, 2)
    loss, penalty = losses(params, x, target, "relu", l1=0.5)
    assert loss.item() == pytest.approx((1 + 4) / 2)
    assert penalty.item() == pytest.approx(0.5 * (1 + 2) / 2)
    h, _ = forward(params, torch.tensor([[[-1.0, 1.0]]]), "solu")
    assert torch.allclose(h, torch.tensor([[[-math.exp(-1), math.e]]]))
    assert solu(torch.tensor(0.0)).item() == 0.0


@pytest.mark.parametrize("hidden_layers", [1, 2])
@pytest.mark.parametrize("nonlinearity", ["relu", "gelu", "solu"])
@pytest.mark.parametrize("l1", [0.0, 0.05])
def test_hand_derived_gradients_equal_autograd(nonlinearity, l1, hidden_layers):
    params = {k: v.double() for k, v in init_params(6, 10, 9, [3, 4], -0.1, hidden_layers=hidden_layers).items()}
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 6, generator=generator, dtype=torch.float64)
    target = torch.rand(2, 7, 9, generator=generator, dtype=torch.float64)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    loss, penalty = losses(leaves, x, target, nonlinearity, l1)
    expected = torch.autograd.grad((loss + penalty).sum(), list(leaves.values()))
    hand_loss, hand_penalty, grads = loss_and_grads(params, x, target, nonlinearity, l1)
    assert torch.allclose(hand_loss, loss.detach()) and torch.allclose(hand_penalty, penalty.detach())
    for name, grad in zip(leaves, expected):
        assert torch.allclose(grads[name], grad, atol=1e-12), name


@pytest.mark.parametrize("hidden_layers", [1, 2])
@pytest.mark.parametrize("nonlinearity", ["relu", "gelu"])
def test_a_workspace_gives_the_same_numbers_and_keeps_its_tensors(nonlinearity, hidden_layers):
    params = init_params(6, 10, 9, [3, 4], -0.1, hidden_layers=hidden_layers)
    generator = torch.Generator().manual_seed(1)
    x, target = torch.randn(2, 7, 6, generator=generator), torch.rand(2, 7, 9, generator=generator)
    fresh = loss_and_grads(params, x, target, nonlinearity, 0.05)
    workspace: dict[str, torch.Tensor] = {}
    for _ in range(2):      # the second call writes into the first call's tensors
        kept = loss_and_grads(params, x, target, nonlinearity, 0.05, workspace)
        assert torch.equal(kept[0], fresh[0]) and torch.equal(kept[1], fresh[1])
        assert all(torch.equal(kept[2][name], fresh[2][name]) for name in fresh[2])
    assert all(kept[2][name] is workspace[name] for name in fresh[2])


def test_bias_decay_acts_in_the_first_half_only():
    b = torch.tensor([[-1.0, 2.0]])
    decay_bias(b, step=0, steps=10, decay=0.1, lr=0.5)
    assert torch.allclose(b, torch.tensor([[-0.95, 1.9]]))
    decay_bias(b, step=4, steps=10, decay=0.1, lr=0.5)
    assert torch.allclose(b, torch.tensor([[-0.9025, 1.805]]))
    decay_bias(b, step=5, steps=10, decay=0.1, lr=0.5)
    assert torch.allclose(b, torch.tensor([[-0.9025, 1.805]]))


def test_bias_just_below_the_largest_preactivation():
    W1 = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    x = torch.tensor([[3.0, 1.0], [1.0, 0.5]])            # pre-activations: neuron 0 -> 3, 1; neuron 1 -> 2, 1
    assert torch.allclose(bias_below_max(W1, x, per_neuron=True, margin=0.1), torch.tensor([[-3.1, -2.1]]))
    assert torch.allclose(bias_below_max(W1, x, per_neuron=False, margin=0.0), torch.tensor([[-3.0, -3.0]]))


def test_init_matches_pytorch_linear_bounds_and_offset():
    params = init_params(d=16, k=8, n_out=4, seeds=[1, 2, 3], bias_offset=-1.0)
    assert params["W1"].shape == (3, 8, 16) and params["b1"].shape == (3, 8) and params["W2"].shape == (3, 4, 8)
    assert params["W1"].abs().max() <= 0.25 and params["W2"].abs().max() <= 1 / math.sqrt(8)
    assert ((params["b1"] + 1).abs() <= 0.25).all()
    assert not torch.equal(params["W1"][0], params["W1"][1])


def test_random_mask_keeps_exactly_the_density():
    mask = random_mask((3, 10, 8), 0.25, torch.Generator().manual_seed(0))
    assert mask.flatten(1).sum(1).tolist() == [20, 20, 20]
    assert not torch.equal(mask[0], mask[1])


def test_prune_and_grow_keeps_the_count_and_drops_the_smallest():
    weight = torch.tensor([[[0.1, -5.0, 3.0, 0.0, 0.0, 0.0]]])
    mask = torch.tensor([[[True, True, True, False, False, False]]])
    new = prune_and_grow(weight, mask, fraction=1 / 3, generator=torch.Generator().manual_seed(0))
    assert new.sum().item() == 3
    assert new[0, 0, :3].tolist() == [False, True, True]      # |0.1| was the smallest active weight
    assert new[0, 0, 3:].sum().item() == 1                     # one previously inactive weight enabled


def test_global_magnitude_pruning_removes_20_percent_over_both_layers():
    W1 = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]], [[5.0, 4.0, 3.0, 2.0, 1.0]]])
    W2 = torch.tensor([[[0.5, 6.0, 7.0, 8.0, 9.0]], [[9.0, 8.0, 7.0, 6.0, 0.5]]])
    masks = {"W1": torch.ones_like(W1, dtype=torch.bool), "W2": torch.ones_like(W2, dtype=torch.bool)}
    new = prune_global({"W1": W1, "W2": W2}, masks, 0.2, "imp", torch.Generator().manual_seed(0))
    assert new["W1"][0, 0].tolist() == [False, True, True, True, True]   # 0.5 (W2) and 1.0 (W1) are the 2 smallest
    assert new["W2"][0, 0].tolist() == [False, True, True, True, True]
    assert new["W1"][1, 0].tolist() == [True, True, True, True, False]
    again = prune_global({"W1": W1, "W2": W2}, new, 0.2, "imp", torch.Generator().manual_seed(0))
    assert sum(m.flatten(1).sum(1) for m in again.values()).tolist() == [6, 6]   # 8 remaining -> prune 2
    randomly = prune_global({"W1": W1, "W2": W2}, masks, 0.2, "random", torch.Generator().manual_seed(0))
    assert sum(m.flatten(1).sum(1) for m in randomly.values()).tolist() == [8, 8]


def test_weight_fraction_and_lottery_rounds():
    weights = {"W1": torch.tensor([[[1.0, 0.0]]]), "W2": torch.tensor([[[0.0, 0.0], [2.0, 3.0]]])}
    assert weight_fraction(weights).tolist() == [0.5]
    assert [lottery_round(s, 100) for s in (0, 50, 100, 101, 200, 300)] == [0, 0, 0, 1, 1, 2]


def test_steps_to_reach_and_sfa_ordering():
    import pandas as pd

    history = pd.DataFrame({"step": [0, 1, 3, 7], "value": [0.0, 0.2, 0.5, 0.9]})
    assert steps_to_reach(history, "value", 0.5) == 3
    assert math.isnan(steps_to_reach(history, "value", 1.0))
    sfa = pd.DataFrame({"neuron": [0, 0, 1], "feature": [0, 1, 1], "activation": [0.5, 0.5, 2.0]})
    neurons = pd.DataFrame({"neuron": [0, 1], "frac_mono": [0.5, 1.0], "top_activation": [0.5, 2.0]})
    matrix = sfa_matrix(sfa, neurons, 3)
    assert matrix.tolist() == [[2.0, 0.0, 0.0], [0.5, 0.5, 0.0]]    # monosemantic neuron first, its feature first


def test_lamb_is_torch_optimizer_lamb_with_the_weight_norm_clamped_at_10():
    """The paper trains with torch_optimizer.Lamb (defaults: clamp_value 10, debias False): the trust ratio is
    min(||p||, 10) / ||update||, so a step moves a parameter by at most 10 lr (a bias of norm 100 by 1, not 10)."""
    from toymodels.optimizers import make_optimizer

    p = torch.tensor([[60.0, 80.0], [0.3, 0.4]], requires_grad=True)   # norms 100 and 0.5, one instance each
    optimizer = make_optimizer("lamb", {"p": p}, lr=0.1, weight_decay=0.0)
    p.grad = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    before = p.detach().clone()
    optimizer.step()
    assert (before - p.detach()).norm(dim=1) == pytest.approx(torch.tensor([1.0, 0.05]), rel=1e-4)

    generator = torch.Generator().manual_seed(0)
    start = torch.randn(2, 3, 4, generator=generator) * torch.tensor([20.0, 0.1])[:, None, None]
    ours = start.clone().requires_grad_()
    optimizer = make_optimizer("lamb", {"w": ours}, lr=0.05, weight_decay=0.0)
    reference = [start[i].clone() for i in range(2)]
    moments = [(torch.zeros(3, 4), torch.zeros(3, 4)) for _ in range(2)]
    for _ in range(4):
        grad = torch.randn(2, 3, 4, generator=generator) * 1e-3
        ours.grad = grad.clone()
        optimizer.step()
        for i, (m, v) in enumerate(moments):       # torch_optimizer.Lamb.step, one tensor per instance
            m.mul_(0.9).add_(grad[i], alpha=0.1)
            v.mul_(0.999).addcmul_(grad[i], grad[i], value=0.001)
            adam_step = m / v.sqrt().add(1e-6)
            trust = reference[i].norm().clamp(0, 10) / adam_step.norm()
            reference[i] = reference[i] - 0.05 * trust * adam_step
    assert torch.allclose(ours.detach(), torch.stack(reference), rtol=1e-5, atol=1e-6)


def test_data_order_gives_every_instance_and_cell_of_one_value_the_same_batches():
    from toymodels.config import load_config_file
    from toymodels.studies.monosemanticity.fit import Task

    params = load_config_file("config/quick.yaml")["studies"]["monosemanticity"]["defaults"]
    data = make_dataset(params)
    per_seed = Task(params, data, "cpu").batches([0, 1], 3)[0]
    assert not torch.equal(per_seed[0], per_seed[1])  # default: each instance its own stream
    shared = Task({**params, "data_order": 1}, data, "cpu").batches([0, 1], 3)[0]
    assert torch.equal(shared[0], shared[1])
    assert torch.equal(shared, Task({**params, "data_order": 1}, data, "cpu").batches([5, 9], 3)[0])  # any seeds
    other = Task({**params, "data_order": 2}, data, "cpu").batches([0, 1], 3)[0]
    assert not torch.equal(shared[0], other[0])


def test_a_second_hidden_layer_adds_its_weights_after_the_shared_ones():
    one, two = init_params(6, 10, 9, [3, 4], -1.0), init_params(6, 10, 9, [3, 4], -1.0, hidden_layers=2)
    assert set(two) == {"W1", "b1", "W2", "Wh", "bh"} and two["Wh"].shape == (2, 10, 10) and two["bh"].shape == (2, 10)
    assert all(torch.equal(one[n], two[n]) for n in one)  # the same seed draws the same first and output layers
    x = torch.randn(2, 3, 6)
    h, out = forward(two, x, "relu")
    expected = torch.relu(torch.relu(x @ two["W1"].transpose(1, 2) + two["b1"][:, None]) @ two["Wh"].transpose(1, 2)
                          + two["bh"][:, None]) @ two["W2"].transpose(1, 2)
    assert torch.allclose(out, expected, atol=1e-6) and torch.equal(h, forward(one, x, "relu")[0])
