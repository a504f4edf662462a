"""Unit tests of the modular-addition study: Fourier signal, survivor rule, ODE fit, split, model, measure."""

import math

import numpy as np
import pytest
import torch

from toymodels.schedules import log_spaced_steps
from toymodels.studies.modular_addition import TABLES
from toymodels.studies.modular_addition import data as ma_data
from toymodels.studies.modular_addition.fourier import band_limited, early_gradient, fourier_plane, n_frequencies, signal, survivors
from toymodels.studies.modular_addition.measure import fixed_from, measure_cell
from toymodels.studies.modular_addition.model import dense_history_points, init_params, logits, train_model
from toymodels.studies.modular_addition.ode import LinearODE, fit_linear_ode, r2, rollout

P = 59


def pure_embedding(p: int, k: int, d: int = 6, offset: float = 0.0) -> torch.Tensor:
    """E[j] = offset + cos(2 pi j k / p) e_0 + sin(2 pi j k / p) e_1: one circle at frequency k."""
    angle = 2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p
    embedding = torch.full((p, d), offset, dtype=torch.float64)
    embedding[:, 0] += torch.cos(angle)
    embedding[:, 1] += torch.sin(angle)
    return embedding


@pytest.mark.parametrize("k", [1, 7, 29])
def test_pure_frequency_signal_is_concentrated_at_k(k):
    s = signal(pure_embedding(P, k, offset=3.0))
    assert s.shape == (n_frequencies(P),) == (29,)
    # |sum_j cos(theta j) e^{-i theta j}| = |sum_j sin(theta j) e^{-i theta j}| = p / 2, on orthogonal axes
    assert s[k - 1].item() == pytest.approx(P / 2 * math.sqrt(2), rel=1e-12)
    assert torch.cat([s[:k - 1], s[k:]]).abs().max().item() < 1e-10


def test_mirrored_frequency_reports_at_p_minus_k():
    s = signal(pure_embedding(P, P - 5))
    assert s.argmax().item() + 1 == 5
    assert s[4].item() == pytest.approx(P / 2 * math.sqrt(2))


def test_signal_is_batched_over_instances():
    batch = torch.stack([pure_embedding(P, 3), pure_embedding(P, 11)])
    assert (signal(batch).argmax(-1) + 1).tolist() == [3, 11]


def test_survivor_rule_on_hand_built_spectra():
    spectra = torch.tensor([
        [10.0, 1, 1, 1, 1],  # mean 2.8, threshold 5.6: only k = 1
        [6.0, 6, 0, 0, 0],  # mean 2.4, threshold 4.8: k = 1, 2
        [3.0, 3, 1, 1, 1],  # mean 1.8, threshold 3.6: none (two equal peaks not far enough above the rest)
        [2.0, 2, 2, 2, 2],  # flat: none
        [0.0, 0, 0, 0, 5.01],  # mean 1.002, threshold 2.004: k = 5
    ])
    expected = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
    assert survivors(spectra, 2.0).int().tolist() == expected
    # a lower factor admits the two equal peaks of row 3 (threshold 1.8)
    assert survivors(spectra[2], 1.0).int().tolist() == [1, 1, 0, 0, 0]


def test_early_gradient_hand_case():
    trace = torch.tensor([[2.0, 4.0], [2.5, 4.0], [3.0, 3.0]])  # steps 0, 1, 2 of two frequencies
    assert early_gradient(trace, 2).tolist() == [0.25, -0.25]


def test_fixed_from_finds_the_last_change():
    steps = np.array([0, 1, 2, 5, 10])
    final = np.array([[True, False], [False, True]])
    alive = np.array([[[False, False], [False, True]],
                      [[True, False], [True, True]],
                      [[False, True], [False, True]],
                      [[True, False], [False, True]],
                      [[True, False], [False, True]]])
    assert fixed_from(steps, alive, final).tolist() == [5, 2]


def test_fourier_plane_of_a_circle_is_a_circle():
    coords = fourier_plane(pure_embedding(P, 7, offset=2.0), 7)
    radius = coords.norm(dim=-1)
    assert coords.shape == (P, 2)
    assert torch.allclose(radius, radius[0], rtol=1e-9)
    # neighbouring tokens in a k mod p are neighbours on the circle: angle step 2 pi / p
    order = torch.argsort((torch.arange(P) * 7) % P)
    angles = torch.atan2(coords[order, 1], coords[order, 0])
    steps = torch.remainder(torch.diff(angles), 2 * math.pi)
    assert torch.allclose(torch.minimum(steps, 2 * math.pi - steps), torch.full_like(steps, 2 * math.pi / P), atol=1e-9)


def test_band_limited_keeps_only_the_chosen_frequencies():
    two = pure_embedding(P, 4, offset=1.0) + pure_embedding(P, 9)
    kept = band_limited(two, [4])
    assert torch.allclose(kept, pure_embedding(P, 4, offset=1.0), atol=1e-12)
    assert torch.allclose(band_limited(two, []), torch.ones(P, 6, dtype=torch.float64) * torch.tensor([1.0] * 6), atol=1e-12)
    assert torch.allclose(band_limited(two, [4, 9]), two, atol=1e-12)


def test_ode_fit_recovers_a_known_linear_system():
    # two damped rotations (a persistently exciting trajectory: pure decays would leave A unidentifiable)
    A = np.array([[-0.01, 0.05, 0, 0], [-0.05, -0.01, 0, 0], [0, 0, -0.02, 0.03], [0, 0, -0.03, -0.015]])
    b = np.array([0.05, -0.02, 0.0, 0.1])
    trajectory = rollout(LinearODE(A, b, 1.0), np.array([3.0, -1.0, 2.0, 4.0]), 400)
    exact = fit_linear_ode(trajectory, alpha=0.0)
    assert np.allclose(exact.A, A, atol=1e-8) and np.allclose(exact.b, b, atol=1e-8)
    assert exact.r2_derivative == pytest.approx(1.0, abs=1e-10)
    assert r2(trajectory, rollout(exact, trajectory[0], 400)) == pytest.approx(1.0, abs=1e-10)
    lasso = fit_linear_ode(trajectory, alpha=1e-6)
    assert np.abs(lasso.A - A).max() < 1e-4 and np.abs(lasso.b - b).max() < 1e-4
    assert np.all(A[lasso.A == 0] == 0)  # every coefficient the Lasso zeroes is truly zero
    assert fit_linear_ode(trajectory, alpha=1e-3).r2_derivative < lasso.r2_derivative < 1.0


def test_lasso_zeroes_weak_couplings():
    rng = np.random.default_rng(1)
    A = np.diag([-0.01, -0.02, -0.03])
    noisy = rollout(LinearODE(A, np.zeros(3), 1.0), np.array([5.0, 4.0, 3.0]), 300) + 1e-3 * rng.standard_normal((301, 3))
    assert np.mean(fit_linear_ode(noisy, alpha=1e-3).A == 0) > np.mean(fit_linear_ode(noisy, alpha=0.0).A == 0)


def test_r2_of_a_diverging_rollout_is_minus_infinity():
    trajectory = np.ones((3, 2)) * np.arange(3)[:, None]
    assert r2(trajectory, np.full((3, 2), np.inf)) == float("-inf")
    assert r2(trajectory, trajectory) == 1.0


def test_split_is_80_percent_and_deterministic():
    n = P * P
    first, again, other = (ma_data.split_mask(n, 0.8, seed) for seed in (5, 5, 6))
    assert int(first.sum()) == round(0.8 * n) == 2785
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    masks = ma_data.split_masks(n, 0.8, [5, 6])
    assert masks.shape == (2, n) and torch.equal(masks[0], first)


def test_dataset_lists_every_pair_with_its_sum():
    data = ma_data.make_dataset({"p": 7})
    assert data["a"].shape == data["b"].shape == data["label"].shape == (49,)
    assert (data["a"][10].item(), data["b"][10].item(), data["label"][10].item()) == (1, 3, 4)
    assert torch.equal(data["label"], (data["a"] + data["b"]) % 7)


def test_model_shapes_and_shared_embedding():
    own = init_params(7, 5, 8, seeds=[1, 2, 3], embedding_seed=None)
    shared = init_params(7, 5, 8, seeds=[1, 2, 3], embedding_seed=0)
    assert {n: tuple(t.shape) for n, t in own.items()} == {
        "embedding": (3, 7, 5), "W1": (3, 10, 8), "b1": (3, 8), "W2": (3, 8, 8), "b2": (3, 8), "W3": (3, 8, 7), "b3": (3, 7)}
    assert torch.equal(shared["embedding"][0], shared["embedding"][2])
    assert not torch.equal(own["embedding"][0], own["embedding"][1])
    assert torch.equal(own["W2"], shared["W2"]) and not torch.equal(own["W2"][0], own["W2"][1])
    double = init_params(7, 5, 8, seeds=[1, 2, 3], embedding_seed=None, dtype=torch.float64)
    assert all(double[n].dtype == torch.float64 and torch.equal(double[n].float(), own[n]) for n in own)
    data = ma_data.make_dataset({"p": 7})
    out = logits(own, data["a"], data["b"])
    assert out.shape == (3, 49, 7)
    # the pre-gathered first layer equals the MLP applied to the concatenation [E_a ; E_b]
    i, n = 1, 17
    x = torch.cat([own["embedding"][i, data["a"][n]], own["embedding"][i, data["b"][n]]])
    h = torch.nn.functional.silu(x @ own["W1"][i] + own["b1"][i])
    h = torch.nn.functional.silu(h @ own["W2"][i] + own["b2"][i])
    assert torch.allclose(out[i, n], h @ own["W3"][i] + own["b3"][i], atol=1e-6)


@pytest.mark.parametrize("steps,early", [(30, 10), (3000, 1000), (50, 100)])
def test_history_is_dense_early(steps, early):
    logged = set(log_spaced_steps(steps, dense_history_points(steps, early)))
    assert set(range(min(early, steps) + 1)) <= logged
    if steps > early:
        assert len(logged) < steps + 1


TINY = dict(p=7, d=4, hidden=8, train_fraction=0.8, n_seeds=2, embedding_seed=None, steps=30, lr=0.01, weight_decay=0.5,
            schedule="constant", dtype="float32", early_steps=10, gradient_step=4, survivor_factor=2.0, lasso_alpha=0.01,
            history_points=6, checkpoint_points=4)


def test_training_logs_signals_every_early_step_and_measure_tables():
    data = ma_data.make_dataset(TINY)
    result = train_model(TINY, data, [11, 12], progress=False)
    logged = [s for s, t in result.checkpoints.items() if "signal" in t]
    assert logged[:11] == list(range(11)) and logged[-1] == 30
    assert result.checkpoints[0]["signal"].shape == (2, 3)
    assert torch.allclose(result.checkpoints[30]["signal"].float(), signal(result.params["embedding"]), rtol=1e-5)
    history = result.history
    assert {"loss", "test_loss", "test_accuracy", "train_accuracy"} <= set(history.columns)
    assert not any(c.startswith("signal_") for c in history.columns)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]

    tables = measure_cell(TINY, [11, 12], data, result.params, result.checkpoints)
    assert set(tables) == set(TABLES)
    frequencies = tables["frequencies"]
    assert len(frequencies) == 2 * 3
    assert {"seed", "k", "initial_signal", "early_gradient", "final_signal", "survived"} <= set(frequencies.columns)
    instances = tables["instances"].set_index("seed")
    assert (instances["n_survivors"] == frequencies.groupby("seed")["survived"].sum()).all()
    kept_steps = sorted(set(range(11)) | set(log_spaced_steps(30, 6)))
    assert sorted(tables["signals"]["step"].unique()) == kept_steps and len(tables["signals"]) == len(kept_steps) * 2 * 3
    ode = tables["ode"]
    assert sorted(ode["method"].unique()) == ["lasso", "least_squares"]
    # least squares is the best one-step linear fit, so never below the Lasso's R^2
    by = ode.pivot(index="seed", columns="method", values="r2_derivative")
    assert (by["least_squares"] >= by["lasso"] - 1e-9).all()
    assert sorted(tables["ablation"]["n_kept"].unique()) == [1, 2, 3]
    assert len(tables["planes"]) == 7 * int(instances["n_survivors"].sum())


def test_gradient_step_outside_the_dense_window_is_refused():
    with pytest.raises(ValueError, match="gradient_step"):
        train_model({**TINY, "gradient_step": 11}, ma_data.make_dataset(TINY), [1], progress=False)
