"""Unit tests of the SAE study: generator, metrics, initialisations, gradients, resampling, tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from toymodels.grid import derive_seed
from toymodels.studies.sae import activation_cell, check_cell, data_identity
from toymodels.studies.sae.counting import consecutive_mmcs, estimate_feature_count
from toymodels.studies.sae.data import (
    ActivationStream,
    Stream,
    activation_dataset,
    feature_probabilities,
    make_dataset,
    make_stream,
    rank_decay,
    sample_codes,
    source_activations,
)
from toymodels.studies.sae.inits import InitSample, RareSettings, decoder_atoms, rare_count, rare_settings, svd_atoms, unit_rows
from toymodels.studies.sae.instances import INITS, RARE_METHODS, InstanceSpec, instance_specs
from toymodels.studies.sae.measure import measure_cell
from toymodels.studies.sae.metrics import mmcs, reconstruction_stats, steps_to_threshold
from toymodels.studies.sae.model import init_seeds, initial_encoder, loss_and_grads, resample_dead, stream_seeds, train_model
from toymodels.studies.sae.resampling import cluster_inputs, loss_squared_inputs, select_inputs, top_k_inputs

DATA = dict(d=16, n_features=32, active_features=5, prob_decay=0.99, correlation="per_sample", data_seed=0, eval_size=512)
CELL = dict(DATA, dict_ratio=1.0, inits=["orthogonal", "data", "rare_outlier"], rare_ratios=[0.1], alphas=[1e-3],
            init_sample_size=300, n_seeds=2, steps=30, lr=1e-2, batch_size=64, schedule="constant", resample=False,
            resample_every=10, resample_window=5, resample_samples=256, resample_encoder_scale=0.2, resample_method="loss_squared",
            resample_pool=64, resample_clusters=4, trace_every=5,
            history_points=5, checkpoint_points=2, encoder_init="tied")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- generator -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("correlation", ["per_sample", "per_batch"])
def test_generator_mean_active_features_is_k(correlation):
    data = make_dataset({**DATA, "n_features": 256, "d": 64})
    stream = Stream(data, {**DATA, "correlation": correlation})
    # per_batch shares one z per batch, so average over many batches
    codes = torch.cat([sample_codes(256, data["cholesky"], data["decay"], 5.0, correlation, _generator(i))
                       for i in range(80)])
    active = (codes > 0).sum(1).float()
    # E[#active] = k exactly for every z (no clipping at these sizes) plus P(no active) <= e^-5 from the fix-up
    assert active.mean().item() == pytest.approx(5.0, abs=0.08)
    assert int(active.min()) >= 1
    assert stream.sample(7, _generator()).shape == (7, 64)


def test_probabilities_sum_to_k_and_decay_with_rank():
    decay = rank_decay(100, 0.99)
    assert decay[0].item() == 1.0 and decay[99].item() == pytest.approx(0.99**99, rel=1e-5)
    z = torch.zeros(1, 100)  # Phi(0) = 1/2 everywhere: p proportional to the decay
    p = feature_probabilities(z, decay, 5.0)
    assert p.sum().item() == pytest.approx(5.0, rel=1e-5)
    assert p[0, 0].item() / p[0, 99].item() == pytest.approx(0.99**-99, rel=1e-4)


def test_dataset_holds_unit_ground_truth_and_a_correlation_matrix():
    data = make_dataset(DATA)
    assert data["features"].shape == (32, 16)
    assert torch.allclose(data["features"].norm(dim=1), torch.ones(32), atol=1e-6)
    corr = data["cholesky"] @ data["cholesky"].T
    assert torch.allclose(corr.diagonal(), torch.ones(32), atol=1e-5)
    assert float(corr.min()) > 0  # the replication's U(0, 1) construction correlates every pair positively
    assert data["eval_x"].shape == (512, 16)
    again = make_dataset(DATA)
    assert all(torch.equal(data[k], again[k]) for k in data)


def test_per_batch_correlation_shares_probabilities_within_a_batch():
    data = make_dataset({**DATA, "n_features": 64})
    codes = sample_codes(4000, data["cholesky"], data["decay"], 5.0, "per_batch", _generator(3))
    rates = (codes > 0).float().mean(0)
    # one z for the batch: empirical rates follow one probability vector, so their sum is ~k
    assert rates.sum().item() == pytest.approx(5.0, abs=0.2)


# --- metrics ---------------------------------------------------------------------------------------------

def test_mmcs_of_a_permuted_copy_is_one_and_of_a_negated_copy_is_low():
    features = unit_rows(torch.randn(40, 16, generator=_generator()))
    permuted = features[torch.randperm(40, generator=_generator(1))]
    assert mmcs(features, permuted).item() == pytest.approx(1.0, abs=1e-6)
    assert mmcs(features, torch.stack([permuted, -permuted])).tolist()[0] == pytest.approx(1.0, abs=1e-6)
    assert mmcs(features, -features).item() < 0.9  # signs matter: -F_i does not recover F_i


def test_mmcs_hand_computed():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    atoms = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # unnormalised on purpose
    # feature 0: max(cos 45deg, 1) = 1; feature 1: max(cos 45deg, 0) = 0.7071
    assert mmcs(features, atoms).item() == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-6)
    # more atoms than features: the extra atom cannot lower MMCS
    assert mmcs(features, torch.cat([atoms, -atoms[:1]])).item() == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-6)


def test_steps_to_threshold_first_hit_and_null():
    steps = [0, 10, 20, 30]
    assert steps_to_threshold(steps, [0.5, 0.96, 0.94, 0.99], 0.95) == 10
    assert steps_to_threshold(steps, [0.5, 0.96, 0.94, 0.99], 0.99) == 30
    assert steps_to_threshold(steps, [0.5, 0.6, 0.7, 0.949], 0.95) is None
    assert steps_to_threshold(steps, [0.5, float("nan"), 0.97, 0.99], 0.95) is None  # gap: crossing unknown


def test_reconstruction_stats_hand_checked():
    # one instance, identity dictionary in 2-D: exact reconstruction of non-negative inputs
    W = torch.eye(2)[None]
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    stats = reconstruction_stats(W, torch.zeros(1, 2), W, x)
    assert stats["l0"].item() == pytest.approx(1.0)
    assert stats["fve"].item() == pytest.approx(1.0)
    assert stats["dead_fraction"].item() == 0.0
    # encoder bias -10 on latent 1: it never fires, its coordinate is lost
    stats = reconstruction_stats(W, torch.tensor([[0.0, -10.0]]), W, x)
    assert stats["dead_fraction"].item() == 0.5
    assert stats["l0"].item() == pytest.approx(2 / 3)
    total = ((x - x.mean(0)) ** 2).sum().item()
    assert stats["fve"].item() == pytest.approx(1 - 4.0 / total)
    assert stats["mse"].item() == pytest.approx(4.0 / 6)


# --- initialisations -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample() -> InitSample:
    return InitSample(Stream(make_dataset(DATA), DATA).sample(600, _generator(5)))


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("n_atoms", [8, 16, 48])
def test_every_init_gives_unit_atoms_of_the_right_shape(sample, init, n_atoms):
    atoms = decoder_atoms(init, sample, n_atoms, 0.2 if init in RARE_METHODS else None, _generator(1))
    assert atoms.shape == (n_atoms, 16)
    assert torch.allclose(atoms.norm(dim=1), torch.ones(n_atoms), atol=1e-5)
    assert torch.isfinite(atoms).all()


def test_orthogonal_init_atoms_are_orthonormal_when_they_fit(sample):
    atoms = decoder_atoms("orthogonal", sample, 8, None, _generator(1))  # M = 8 <= d = 16
    assert torch.allclose(atoms @ atoms.T, torch.eye(8), atol=1e-5)
    wide = decoder_atoms("orthogonal", sample, 48, None, _generator(1))  # M > d: the atoms span R^d
    assert torch.linalg.matrix_rank(wide).item() == 16


def test_data_init_atoms_are_normalised_inputs(sample):
    atoms = decoder_atoms("data", sample, 16, None, _generator(2))
    inputs = unit_rows(sample.x)
    best = (atoms @ inputs.T).max(dim=1).values
    assert torch.allclose(best, torch.ones(16), atol=1e-5)
    assert len({tuple(a.round(decimals=5).tolist()) for a in atoms}) == 16  # distinct inputs


def test_svd_init_first_atoms_are_singular_vectors_then_inputs(sample):
    atoms = svd_atoms(sample, 20, _generator(3))
    _, _, vh = torch.linalg.svd(sample.x.double(), full_matrices=False)
    overlap = (atoms[:16].double() @ vh.T).abs()
    assert torch.allclose(overlap, torch.eye(16, dtype=torch.float64), atol=1e-4)
    assert ((atoms[:16] @ sample.x.mean(0)) >= 0).all()  # signed towards the data
    inputs = unit_rows(sample.x)
    assert torch.allclose((atoms[16:] @ inputs.T).max(dim=1).values, torch.ones(4), atol=1e-5)


def test_rare_count_is_a_ceiling_with_at_least_one():
    assert rare_count(256, 0.001) == 1
    assert rare_count(256, 0.05) == 13
    assert rare_count(1000, 0.2) == 200


def test_rare_mean_atoms_are_inputs_minus_the_sample_mean(sample):
    atoms = decoder_atoms("rare_mean", sample, 20, 0.1, _generator(4))  # 2 rare atoms, 18 raw inputs
    centred = unit_rows(sample.x - sample.x.mean(0))
    assert torch.allclose((atoms[:2] @ centred.T).max(dim=1).values, torch.ones(2), atol=1e-5)
    assert torch.allclose((atoms[2:] @ unit_rows(sample.x).T).max(dim=1).values, torch.ones(18), atol=1e-5)


def test_rare_outlier_atoms_are_the_most_outlying_inputs(sample):
    atoms = decoder_atoms("rare_outlier", sample, 20, 0.15, _generator(4))  # 3 rare atoms
    most = np.argsort(sample.outlier_scores())[:3]
    assert torch.allclose(atoms[:3], unit_rows(sample.x[torch.from_numpy(most)]), atol=1e-6)


def test_rare_centroid_atoms_are_inputs_minus_their_cluster_centroid():
    # two tight clusters at 10 e0 and 10 e1 with small noise in the other 14 dimensions: an input minus its
    # cluster's centroid is (nearly) pure noise, orthogonal to e0 and e1, whereas raw inputs lie along them
    g = _generator(7)
    centres = torch.zeros(2, 16)
    centres[0, 0], centres[1, 1] = 10.0, 10.0
    noise = torch.randn(400, 16, generator=g) * 0.1
    noise[:, :2] = 0
    x = centres[torch.arange(400) % 2] + noise
    atoms = decoder_atoms("rare_centroid", InitSample(x), 20, 0.1, _generator(4))  # 2 clusters, 2 rare atoms
    assert atoms[:2, :2].abs().max().item() < 0.1
    assert (atoms[2:, :2].abs().max(dim=1).values > 0.99).all()
    # subtracting the overall mean instead leaves the +-5 (e0 - e1) offset: not orthogonal to the clusters
    mean_atoms = decoder_atoms("rare_mean", InitSample(x), 20, 0.1, _generator(4))
    assert (mean_atoms[:2, :2].abs().max(dim=1).values > 0.6).all()


def test_unknown_init_is_rejected(sample):
    with pytest.raises(ValueError, match="init must be one of"):
        decoder_atoms("kaiming", sample, 8, None, _generator())


# --- model -----------------------------------------------------------------------------------------------

def _random_model(n_inst=3, n_atoms=12, d=6, seed=0):
    g = _generator(seed)
    W_dec = unit_rows(torch.randn(n_inst, n_atoms, d, generator=g))
    return {"W_enc": torch.randn(n_inst, n_atoms, d, generator=g) * 0.5,
            "b_enc": torch.randn(n_inst, n_atoms, generator=g) * 0.1, "W_dec": W_dec}


def test_hand_gradients_match_autograd():
    model = _random_model()
    x = torch.rand(3, 10, 6, generator=_generator(1))
    alpha = torch.tensor([0.0, 0.01, 0.1])
    losses, grads, fired = loss_and_grads(model, x, alpha)
    leaves = {k: v.clone().requires_grad_(True) for k, v in model.items()}
    codes = torch.relu(x @ leaves["W_enc"].transpose(1, 2) + leaves["b_enc"][:, None, :])
    recon = codes @ leaves["W_dec"]
    auto = ((recon - x) ** 2).mean(dim=(1, 2)) + alpha * codes.sum(-1).mean(-1)
    auto.sum().backward()
    assert torch.allclose(losses, auto.detach(), atol=1e-6)
    assert torch.allclose(grads["W_enc"], leaves["W_enc"].grad, atol=1e-6)
    assert torch.allclose(grads["b_enc"], leaves["b_enc"].grad, atol=1e-6)
    W = model["W_dec"]
    radial_free = leaves["W_dec"].grad - (leaves["W_dec"].grad * W).sum(-1, keepdim=True) * W
    assert torch.allclose(grads["W_dec"], radial_free, atol=1e-6)
    assert torch.equal(fired, (codes > 0).any(dim=1))


def _dense_reference(model, x, alpha):
    """The step written out plainly: a boolean mask, alpha added after the product, the mask multiplied in."""
    W_enc, b_enc, W_dec = model["W_enc"], model["b_enc"], model["W_dec"]
    batch, d = x.shape[1:]
    pre = torch.baddbmm(b_enc[:, None, :], x, W_enc.transpose(1, 2))
    active = pre > 0
    codes = pre.clamp(min=0)
    residual = torch.bmm(codes, W_dec) - x
    losses = residual.square().sum(dim=(1, 2)) / (batch * d) + alpha * codes.sum(dim=(1, 2)) / batch
    grad_out = residual * (2.0 / (batch * d))
    grad_dec = torch.bmm(codes.transpose(1, 2), grad_out)
    grad_dec = grad_dec - (grad_dec * W_dec).sum(-1, keepdim=True) * W_dec
    grad_pre = (torch.bmm(grad_out, W_dec.transpose(1, 2)) + alpha[:, None, None] / batch) * active
    return losses, {"W_enc": torch.bmm(grad_pre.transpose(1, 2), x), "b_enc": grad_pre.sum(dim=1), "W_dec": grad_dec}, active.any(dim=1)


@pytest.mark.parametrize("bias", [0.0, -1.2])  # dense codes (as at init) and sparse ones (L0 of a few, dead latents)
def test_step_equals_the_plain_dense_step(bias):
    model = _random_model(n_inst=4, n_atoms=40, d=8, seed=3)
    model["b_enc"] = model["b_enc"] + bias
    x = torch.rand(4, 32, 8, generator=_generator(4))
    alpha = torch.tensor([0.0, 1e-3, 1e-2, 0.1])
    losses, grads, fired = loss_and_grads({k: v.clone() for k, v in model.items()}, x, alpha)
    ref_losses, ref_grads, ref_fired = _dense_reference(model, x, alpha)
    if bias:
        assert 0 < (torch.relu(torch.baddbmm(model["b_enc"][:, None, :], x, model["W_enc"].transpose(1, 2))) > 0).float().mean() < 0.2
        assert not ref_fired.all()
    torch.testing.assert_close(losses, ref_losses, rtol=1e-6, atol=1e-7)
    for name in ref_grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-5, atol=1e-7)
    assert torch.equal(fired, ref_fired)


def test_encoder_inits_tied_and_linear():
    W_dec = unit_rows(torch.randn(3, 20, 16, generator=_generator(6)))
    W_enc, b_enc = initial_encoder("tied", W_dec, [1, 2, 3])
    assert torch.equal(W_enc, W_dec) and not b_enc.any()
    W_enc, b_enc = initial_encoder("linear", W_dec, [1, 2, 3])
    bound = 16**-0.5  # torch.nn.Linear(16, 20)'s default: U(-1/sqrt(d), 1/sqrt(d)) for weights and bias
    assert W_enc.shape == (3, 20, 16) and b_enc.shape == (3, 20)
    assert W_enc.abs().max() <= bound and b_enc.abs().max() <= bound
    assert W_enc.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert torch.equal(initial_encoder("linear", W_dec, [1, 2, 3])[0], W_enc)  # seeded by the init seeds
    assert not torch.equal(W_enc[0], W_enc[1])
    with pytest.raises(ValueError, match="encoder_init must be one of"):
        initial_encoder("kaiming", W_dec, [1, 2, 3])


def test_resampling_resets_exactly_the_dead_rows():
    model = {k: v.clone().requires_grad_(True) for k, v in _random_model().items()}
    optimizer = torch.optim.AdamW(list(model.values()), lr=1e-2, foreach=True)
    x = torch.rand(3, 10, 6, generator=_generator(1))
    for p, g in zip(model.values(), loss_and_grads({k: v.detach() for k, v in model.items()}, x, torch.zeros(3))[1].values()):
        p.grad = g
    optimizer.step()
    before = {k: v.detach().clone() for k, v in model.items()}
    moments = {k: {s: optimizer.state[v][s].clone() for s in ("exp_avg", "exp_avg_sq")} for k, v in model.items()}
    dead = torch.zeros(3, 12, dtype=torch.bool)
    dead[0, [1, 5]] = True
    dead[2, 11] = True
    inputs = torch.rand(50, 6, generator=_generator(2))
    with torch.no_grad():
        counts = resample_dead(model, optimizer, dead, inputs, 0.2, _generator(3))
    assert counts.tolist() == [2, 0, 1]
    for name, value in model.items():
        changed = (value.detach() != before[name]).reshape(3, 12, -1).any(-1)
        assert torch.equal(changed, dead), name
        for slot in ("exp_avg", "exp_avg_sq"):
            state = optimizer.state[value][slot]
            assert (state[dead] == 0).all()
            assert torch.equal(state[~dead], moments[name][slot][~dead])
    # new decoder atoms are unit-norm inputs; new encoder rows are 0.2 x the mean live encoder-row norm
    new_dec = model["W_dec"].detach()[0, [1, 5]]
    assert torch.allclose(new_dec.norm(dim=1), torch.ones(2), atol=1e-6)
    assert torch.allclose((new_dec @ unit_rows(inputs).T).max(dim=1).values, torch.ones(2), atol=1e-6)
    live = before["W_enc"][0, ~dead[0]].norm(dim=1).mean()
    assert torch.allclose(model["W_enc"].detach()[0, [1, 5]].norm(dim=1), torch.full((2,), 0.2 * live.item()), atol=1e-5)
    assert (model["b_enc"].detach()[dead] == 0).all()


@pytest.mark.parametrize("method", ["top_k", "cluster"])
def test_resampling_methods_reset_the_dead_rows_from_the_chosen_inputs(method):
    model = _random_model()
    optimizer = torch.optim.AdamW(list(model.values()), lr=1e-2)
    dead = torch.zeros(3, 12, dtype=torch.bool)
    dead[1, [0, 2, 4]] = True
    inputs = torch.rand(50, 6, generator=_generator(2))
    counts = resample_dead(model, optimizer, dead, inputs, 0.2, _generator(3), method, pool=20, clusters=3)
    assert counts.tolist() == [0, 3, 0]
    losses = (torch.relu(inputs @ _random_model()["W_enc"][1].T + _random_model()["b_enc"][1])
              @ _random_model()["W_dec"][1] - inputs).pow(2).sum(-1)
    if method == "top_k":  # the three worst-reconstructed inputs, worst first
        expected = unit_rows(inputs[torch.argsort(losses, descending=True)[:3]])
        assert torch.allclose(model["W_dec"][1, [0, 2, 4]], expected, atol=1e-6)
    else:  # each from the 20 worst, and three different ones
        cosines = model["W_dec"][1, [0, 2, 4]] @ unit_rows(inputs).T
        picked = cosines.argmax(dim=1)
        assert set(picked.tolist()) <= set(torch.argsort(losses, descending=True)[:20].tolist())
        assert len(set(picked.tolist())) == 3


def test_top_k_takes_the_largest_losses_worst_first_and_wraps():
    losses = torch.tensor([0.1, 5.0, 0.3, 2.0, 0.0])
    assert top_k_inputs(losses, 2).tolist() == [1, 3]
    assert top_k_inputs(losses, 7).tolist() == [1, 3, 2, 0, 4, 1, 3]


def test_loss_squared_draws_only_inputs_with_loss_and_prefers_large_ones():
    losses = torch.tensor([0.0, 1.0, 0.0, 3.0])
    draws = torch.cat([loss_squared_inputs(losses, 1, _generator(s)) for s in range(400)])
    assert set(draws.tolist()) == {1, 3}
    assert (draws == 3).float().mean().item() == pytest.approx(0.9, abs=0.05)  # 9 / (9 + 1)
    assert sorted(loss_squared_inputs(losses, 2, _generator(0)).tolist()) == [1, 3]  # without replacement


def test_cluster_takes_the_worst_cluster_of_the_worst_inputs():
    # three tight groups: A near e0 (losses 1), B near e1 (losses 4), C near e2 (losses 9 and one 0.5);
    # the pool of the 5 worst drops A's and the 0.5 input; of its clusters, C (mean loss 9) is worst, then B
    x = torch.tensor([[1.0, 0, 0], [1.0, 0.01, 0], [0, 1.0, 0], [0.01, 1.0, 0], [0, 0, 1.0], [0, 0.01, 1.0],
                      [0.01, 0, 1.0], [0, 0.02, 1.0]])
    losses = torch.tensor([1.0, 1.0, 4.0, 4.0, 9.0, 9.0, 9.0, 0.5])
    one = cluster_inputs(x, losses, 1, pool=5, clusters=2, generator=_generator(0))
    assert one.tolist()[0] in (4, 5, 6)
    two = cluster_inputs(x, losses, 2, pool=5, clusters=2, generator=_generator(1))
    assert two[0].item() in (4, 5, 6) and two[1].item() in (2, 3)
    four = cluster_inputs(x, losses, 4, pool=5, clusters=2, generator=_generator(2))  # round-robin, no repeat in C
    assert four[0].item() in (4, 5, 6) and four[2].item() in (4, 5, 6) and four[0] != four[2]
    assert {four[1].item(), four[3].item()} == {2, 3}
    with pytest.raises(ValueError, match="resample_method must be one of"):
        select_inputs("worst", x, losses, 1, _generator(0), 5, 2)


def test_consecutive_mmcs_and_the_feature_count_from_known_dictionaries():
    # true features e0..e3 in R^4; a 2-atom dictionary of mixtures, the 4 features, and 4 features + 4 dead copies
    e = np.eye(4)
    mix = np.array([[1, 1, 0, 0], [0, 0, 1, 1]]) / np.sqrt(2)
    dead = np.array([[1, -1, 0, 0], [0, 0, 1, -1], [1, 0, -1, 0], [0, 1, 0, -1]]) / np.sqrt(2)
    rows = []
    for ratio, atoms, fired in ((0.5, mix, [True, True]), (1.0, e, [True] * 4), (2.0, np.vstack([e, dead]), [True] * 4 + [False] * 4)):
        for index, (vector, live) in enumerate(zip(atoms, fired)):
            rows.append({"scenario": "4/4", "n_features": 4, "init": "orthogonal", "alpha": 1e-3, "seed": 0,
                         "dict_ratio": ratio, "atom": index, "fired": live, "direction": vector.astype(np.float32)})
    pairs = consecutive_mmcs(pd.DataFrame(rows))
    assert pairs["dict_size"].tolist() == [2, 4] and pairs["next_size"].tolist() == [4, 8]
    # mixtures against the features: max cosine 1/sqrt(2) each; the features against themselves: 1
    assert pairs["mmcs_next"].tolist() == pytest.approx([1 / np.sqrt(2), 1.0])
    assert pairs["live"].tolist() == [2, 4] and pairs["live_next"].tolist() == [4, 4]
    # the 8-atom dictionary against a larger one: its 4 dead atoms find partners at 1/sqrt(2) at best (here: itself)
    rows8 = [dict(r, dict_ratio=4.0) for r in rows if r["dict_ratio"] == 1.0]
    rows8 += [dict(r, dict_ratio=4.0, atom=r["atom"] + 4) for r in rows if r["dict_ratio"] == 1.0]
    pairs = consecutive_mmcs(pd.DataFrame(rows + rows8))
    assert pairs["mmcs_next"].tolist() == pytest.approx([1 / np.sqrt(2), 1.0, (4 + 4 / np.sqrt(2)) / 8])
    assert pairs["mmcs_next_live"].tolist() == pytest.approx([1 / np.sqrt(2), 1.0, 1.0])
    # back: the features against the two mixtures 1/sqrt(2) each; then the live features against the features: 1
    assert pairs["mmcs_back"].tolist() == pytest.approx([1 / np.sqrt(2), 1.0, 1.0])
    estimate = estimate_feature_count(pairs)
    assert estimate[["estimate", "estimate_back", "n_features", "live_largest"]].iloc[0].tolist() == [4, 4, 4, 8]
    assert estimate["peak_mmcs"].item() == pytest.approx(1.0) and estimate["peak_back"].item() == pytest.approx(1.0)


def test_instance_layout_and_paired_init_seeds():
    specs = instance_specs(CELL)
    # orthogonal, data, rare_outlier at 0.1; one alpha; two seeds, seed index fastest
    assert [(s.init, s.rare_ratio, s.seed) for s in specs] == [
        ("orthogonal", None, 0), ("orthogonal", None, 1), ("data", None, 0), ("data", None, 1),
        ("rare_outlier", 0.1, 0), ("rare_outlier", 0.1, 1)]
    other = {**CELL, "alphas": [5e-3], "resample": True, "lr": 3e-3}
    assert init_seeds(CELL, specs) == init_seeds(other, instance_specs(other))
    assert len(set(init_seeds(CELL, specs))) == len(specs)
    assert InstanceSpec("data", None, 1e-3, 0) in specs


def test_training_recovers_features_and_measure_writes_nullable_thresholds():
    data = make_dataset(CELL)
    params = {**CELL, "steps": 40, "resample": True}
    result = train_model(params, data, progress=False)
    trace = result.params["log/trace_mmcs"]
    assert trace.shape == (6, 9)  # steps 0, 5, ..., 40
    assert torch.isfinite(trace).all()
    assert (trace[:2, -1] > trace[:2, 0] + 0.02).all()  # orthogonal inits improve (data inits dip first)
    assert torch.allclose(result.params["W_dec"].norm(dim=-1), torch.ones(6, 32), atol=1e-5)
    history = result.history
    assert {"instance", "seed", "init", "rare_ratio", "alpha", "step", "mmcs", "l0", "fve", "dead_fraction"} <= set(history)
    tables = measure_cell(params, [0, 1], data, result.params, result.checkpoints)
    instances = tables["instances"]
    assert len(instances) == 6
    assert str(instances["steps_to_0.99"].dtype) == "Int64"
    assert instances["steps_to_0.99"].isna().all()  # 40 steps never reach 0.99 here
    assert np.allclose(instances["mmcs_initial"], trace[:, 0].numpy())
    assert instances.loc[instances["init"] == "orthogonal", "rare_ratio"].isna().all()
    assert len(tables["trace"]) == 6 * 9
    first = tables["trace"].query("instance == 0 and step == 0")["mmcs"].item()
    assert first == pytest.approx(float(trace[0, 0]))
    atoms = tables["atoms"]
    assert len(atoms) == 6 * 32 and atoms.query("instance == 3")["atom"].tolist() == list(range(32))
    assert np.allclose(np.stack(atoms.query("instance == 3")["direction"]), result.params["W_dec"][3].numpy())
    live = atoms.groupby("instance")["fired"].mean().to_numpy()
    assert np.allclose(1 - live, instances["dead_fraction_final"].to_numpy())


def test_rare_ratio_figure_reads_steps_from_the_trace_at_per_scenario_thresholds():
    from toymodels.studies.sae.figures import first_steps, scenario_thresholds

    trace = pd.DataFrame({"instance": [0, 0, 0, 1, 1, 1], "step": [0, 10, 20, 0, 10, 20],
                          "mmcs": [0.3, 0.85, 0.96, 0.3, 0.5, 0.7]})
    reached = first_steps(trace, 0.8)
    assert reached.iloc[0] == 10 and pd.isna(reached.iloc[1])
    assert first_steps(trace, 0.95).iloc[0] == 20 and first_steps(trace, 0.6).iloc[1] == 20
    options = {"thresholds": {"128/512": [0.7, 0.8]}}
    assert scenario_thresholds(options, "128/512") == [0.7, 0.8]
    assert scenario_thresholds(options, "128/256") == [0.95, 0.98, 0.99]
    assert scenario_thresholds({"thresholds": [0.9]}, "128/256") == [0.9]
    assert scenario_thresholds({}, "16/32") == [0.95, 0.98, 0.99]


# --- rare-feature tuning and alternative methods ---------------------------------------------------------

def _blob_with_outliers() -> tuple[torch.Tensor, list[int]]:
    """200 inputs near (1, 1, 1, 1) (noise 0.05) and three far from it and from each other (rows 200-202)."""
    x = torch.ones(203, 4) + torch.randn(203, 4, generator=_generator(11)) * 0.05
    x[200:] = torch.tensor([[6.0, 1.0, 1.0, 1.0], [1.0, 7.0, 1.0, 1.0], [1.0, 1.0, 8.0, 1.0]])
    return x, [200, 201, 202]


def test_rare_isolation_atoms_are_the_isolated_inputs():
    x, far = _blob_with_outliers()
    atoms = decoder_atoms("rare_isolation", InitSample(x), 20, 0.15, _generator(4))  # 3 rare atoms
    assert {tuple(a) for a in atoms[:3].round(decimals=5).tolist()} == {tuple(a) for a in unit_rows(x[far]).round(decimals=5).tolist()}
    assert torch.equal(atoms, decoder_atoms("rare_isolation", InitSample(x), 20, 0.15, _generator(4)))  # seeded


def test_lof_neighbors_decide_whether_a_small_far_group_is_outlying():
    # a group of 6 inputs far from a 200-input blob: with 3 neighbours each of them sits in its own dense group
    # (LOF ~1, an inlier); with 20 neighbours its neighbourhood reaches into the blob, and the group stands out
    x = torch.ones(206, 4) + torch.randn(206, 4, generator=_generator(12)) * 0.05
    x[200:] = torch.tensor([5.0, 5.0, 1.0, 1.0]) + torch.randn(6, 4, generator=_generator(13)) * 0.05
    group = set(range(200, 206))
    wide = decoder_atoms("rare_outlier", InitSample(x), 40, 0.15, _generator(4), RareSettings(lof_neighbors=20))
    assert set(np.argsort(InitSample(x).outlier_scores(20))[:6].tolist()) == group
    assert torch.allclose((wide[:6] @ unit_rows(x[200:]).T).max(dim=1).values, torch.ones(6), atol=1e-6)
    assert not set(np.argsort(InitSample(x).outlier_scores(3))[:6].tolist()) & group
    with pytest.raises(ValueError, match="lof_neighbors must be in 1 .. 205"):
        InitSample(x).outlier_scores(206)


def _three_blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """60 inputs around 10 e0, 10 e1, 10 e2 (label = blob), noise 0.1 in all 6 dimensions."""
    labels = torch.arange(60) % 3
    x = torch.zeros(60, 6)
    x[torch.arange(60), labels] = 10.0
    return x + torch.randn(60, 6, generator=_generator(14)) * 0.1, labels


@pytest.mark.parametrize("method", ["rare_ward", "rare_centroid"])
def test_clustering_methods_subtract_the_blob_mean_one_atom_per_blob(method):
    x, labels = _three_blobs()
    atoms = decoder_atoms(method, InitSample(x), 10, 0.3, _generator(4))  # 3 rare atoms, 3 clusters
    means = torch.stack([x[labels == b].mean(0) for b in range(3)])
    residuals = unit_rows(x - means[labels])
    match = (atoms[:3] @ residuals.T).argmax(dim=1)
    tol = 1e-5 if method == "rare_ward" else 0.05  # Ward's means are exact; MiniBatchKMeans's centres approximate
    assert torch.allclose((atoms[:3] @ residuals.T).max(dim=1).values, torch.ones(3), atol=tol)
    assert sorted(labels[match].tolist()) == [0, 1, 2]


def test_cluster_count_sets_what_is_subtracted(sample):
    x, labels = _three_blobs()
    blobs = InitSample(x)
    # one cluster: its mean is the sample mean, so rare_ward is rare_mean's "input minus the mean" (2 rare atoms)
    atoms = decoder_atoms("rare_ward", blobs, 10, 0.2, _generator(4), RareSettings(clusters=1))
    assert torch.allclose((atoms[:2] @ unit_rows(x - x.mean(0)).T).max(dim=1).values, torch.ones(2), atol=1e-5)
    # more clusters than rare atoms: still 2 atoms, each a member minus its own (now finer) cluster mean
    fine = decoder_atoms("rare_ward", blobs, 10, 0.2, _generator(4), RareSettings(clusters=6))
    assert fine.shape == (10, 6) and fine[:2, :3].abs().max() < 0.99
    # the default (None) is one cluster per rare atom: the same atoms as asking for that count explicitly
    for method in ("rare_centroid", "rare_ward"):
        assert torch.equal(decoder_atoms(method, blobs, 10, 0.3, _generator(4)),
                           decoder_atoms(method, blobs, 10, 0.3, _generator(4), RareSettings(clusters=3)))
    assert torch.equal(decoder_atoms("rare_outlier", sample, 40, 0.3, _generator(4)),
                       decoder_atoms("rare_outlier", sample, 40, 0.3, _generator(4), RareSettings(lof_neighbors=250)))


def test_rare_settings_from_params_and_check_cell():
    from toymodels.studies.sae import check_cell

    assert rare_settings({}) == RareSettings(None, 250)
    assert rare_settings({"centroid_clusters": 4, "lof_neighbors": 10}) == RareSettings(4, 10)
    check_cell({"init_sample_size": 300, "lof_neighbors": 299, "centroid_clusters": 300}, {})
    with pytest.raises(ValueError, match=r"lof_neighbors \(300\) must be less than init_sample_size \(300\)"):
        check_cell({"init_sample_size": 300, "lof_neighbors": 300}, {})
    with pytest.raises(ValueError, match=r"centroid_clusters \(301\) must be at most init_sample_size \(300\)"):
        check_cell({"init_sample_size": 300, "centroid_clusters": 301}, {})


def test_power_law_fit_hand_checked():
    from toymodels.studies.sae.metrics import power_law_fit

    exact = power_law_fit([1, 2, 4, 8], [3, 12, 48, 192])  # 3 x^2
    assert exact.exponent == pytest.approx(2.0) and exact.prefactor == pytest.approx(3.0)
    assert exact.stderr == pytest.approx(0.0, abs=1e-12) and exact.r_squared == pytest.approx(1.0) and exact.points == 4
    # log x = 0, 1, 2 and log y = 0, 1, 3: slope 3 / 2, intercept 4/3 - 3/2 = -1/6, residuals 1/6, -1/3, 1/6
    # (SSE 1/6, one degree of freedom), sum of squares about the mean 42/9
    fit = power_law_fit(np.exp([0.0, 1.0, 2.0]), np.exp([0.0, 1.0, 3.0]))
    assert fit.exponent == pytest.approx(1.5) and fit.prefactor == pytest.approx(math.exp(-1 / 6))
    assert fit.stderr == pytest.approx(math.sqrt(1 / 12)) and fit.r_squared == pytest.approx(1 - (1 / 6) / (42 / 9))
    assert math.isnan(power_law_fit([1, 2], [1, 4]).stderr)
    with pytest.raises(ValueError, match="at least two distinct x"):
        power_law_fit([2, 2], [1, 4])
    with pytest.raises(ValueError, match="positive x and y"):
        power_law_fit([1, 2], [0, 4])


def test_scaling_fit_uses_the_d_every_seed_reached():
    from toymodels.studies.sae.scaling import reached_everywhere, scaling_fit

    points = pd.DataFrame({"init": "data", "d": [16, 16, 32, 32, 64, 64, 128, 128],
                           "steps": pd.array([None, 40, 80, 80, 160, 160, 320, 320], dtype="Int64")})
    assert reached_everywhere(points, "data") == [32, 64, 128]
    fit = scaling_fit(points, "data")
    assert fit.exponent == pytest.approx(1.0) and fit.points == 6
    assert scaling_fit(points, "data", min_points=4) is None and scaling_fit(points, "orthogonal") is None
# --- SAEs on a monosemanticity model's activations ---------------------------------------------------------

def test_source_activations_are_the_first_layer_centred_on_the_empty_input():
    # k = 3 units, N = 2 features: pre = W1P v + b1, h(v) - h(0) by hand
    first_layer = {"W1P": torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]), "b1": torch.tensor([0.0, -1.0, 0.5])}
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    expected = torch.tensor([[1.0, 0.0, 1.0],    # relu(1, -1, 1.5) - relu(0, -1, 0.5)
                             [0.0, 1.0, -0.5],   # relu(0, 1, -0.5) - (0, 0, 0.5)
                             [0.0, 0.0, 0.0]])   # the empty input
    assert torch.allclose(source_activations(first_layer, v), expected)


def test_activation_dataset_pushes_each_feature_through_the_first_layer():
    model = {"W1": torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]]), "b1": torch.tensor([[0.0, -1.0, 0.5]])}
    source = {"P": torch.eye(2), "probabilities": torch.tensor([0.5, 0.5])}
    data = activation_dataset(model, source, "decoder", 0, 64, _generator())
    expected = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, -0.5]])
    assert torch.allclose(data["features"], expected / expected.norm(dim=1, keepdim=True))
    assert data["eval_x"].shape == (64, 3) and int(data["task_code"]) == 0
    stream = make_stream(data, {})
    assert isinstance(stream, ActivationStream)
    x = stream.sample(200, _generator(1))
    assert x.shape == (200, 3)
    # every input is h(v) - h(0) of some v in [0, 1]^2: the third unit, relu(v1 - v2 + 0.5) - 0.5, lies in [-0.5, 1]
    assert float(x[:, 2].min()) >= -0.5 - 1e-6 and float(x[:, 2].max()) <= 1.0 + 1e-6
    assert isinstance(make_stream(make_dataset(DATA), DATA), Stream)


def test_toy_cells_keep_their_seeds_when_activations_is_null():
    toy = {**DATA, "activations": None}
    assert data_identity(toy) == DATA
    assert stream_seeds({**toy, "n_seeds": 1}) == [derive_seed("sae", "stream", DATA, 0)]
    source = {"grid": "learning_rate", "where": {}, "seed": 0}
    assert data_identity({**DATA, "activations": source}) == {**DATA, "activations": source}


def _mono_config() -> dict:
    defaults = {"n_features": 8, "k": 16, "hidden_layers": 1, "nonlinearity": "relu", "n_seeds": 2, "bias_offset": -1.0}
    return {"studies": {"monosemanticity": {"defaults": defaults,
                                            "grids": {"lr": {"sweep": {"bias_offset": [-1.0, 0.0]}}}}}}


def test_activation_cells_are_checked_against_their_source():
    config = _mono_config()
    good = {"d": 16, "n_features": 8, "init_sample_size": 4096,
            "activations": {"grid": "lr", "where": {"bias_offset": -1.0}, "seed": 1}}
    check_cell(good, config)
    assert activation_cell(good, config).params["bias_offset"] == -1.0
    with pytest.raises(ValueError, match="d must be 16"):
        check_cell({**good, "d": 32}, config)
    with pytest.raises(ValueError, match="n_features must be 8"):
        check_cell({**good, "n_features": 4}, config)
    with pytest.raises(ValueError, match="activations.seed must be in 0 .. 1"):
        check_cell({**good, "activations": {**good["activations"], "seed": 2}}, config)
    with pytest.raises(ValueError, match="matches 2 cells"):
        check_cell({**good, "activations": {"grid": "lr", "where": {}, "seed": 0}}, config)
    with pytest.raises(ValueError, match="activations.grid 'nope' is not a grid"):
        check_cell({**good, "activations": {"grid": "nope", "seed": 0}}, config)
    with pytest.raises(ValueError, match="no monosemanticity block"):
        check_cell(good, {"studies": {}})
    check_cell({**good, "activations": None}, {"studies": {}})  # toy data needs no source


def test_activation_title_splits_the_label_into_source_and_values():
    from toymodels.studies.sae import activation_label, activation_title
    label = activation_label({"grid": "learning_rate", "where": {"lr": 0.01, "bias_offset": -1.0}, "seed": 0})
    assert label == "learning_rate:lr=0.01,bias_offset=-1.0:seed=0"
    assert activation_title(label) == "learning_rate seed 0\nlr=0.01, bias_offset=-1.0"
