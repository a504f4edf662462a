import math

import pytest

from toymodels.schedules import learning_rate, log_spaced_steps


def test_warmup_then_cosine_to_zero():
    total, warmup, peak = 100, 10, 1e-3
    assert learning_rate(0, total, peak, "warmup_cosine", warmup) == pytest.approx(peak / 10)
    assert learning_rate(9, total, peak, "warmup_cosine", warmup) == pytest.approx(peak)
    assert learning_rate(10, total, peak, "warmup_cosine", warmup) == pytest.approx(peak)
    assert learning_rate(55, total, peak, "warmup_cosine", warmup) == pytest.approx(peak / 2)
    assert learning_rate(99, total, peak, "warmup_cosine", warmup) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_cosine_restarts_and_constant():
    assert learning_rate(0, 4096, 1.0, "cosine_restarts", restart_period=1024) == 1.0
    assert learning_rate(512, 4096, 1.0, "cosine_restarts", restart_period=1024) == pytest.approx(0.5)
    assert learning_rate(1024, 4096, 1.0, "cosine_restarts", restart_period=1024) == 1.0
    assert learning_rate(77, 100, 0.3, "constant") == 0.3
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rate(0, 10, 1.0, "linear")


def test_log_spaced_steps_cover_both_ends_and_are_dense_early():
    steps = log_spaced_steps(10_000, 30)
    assert steps[0] == 0 and steps[-1] == 10_000
    assert steps == sorted(set(steps))
    assert steps[1:5] == [1, 2, 3, 4] or steps[1] == 1
    assert 20 <= len(steps) <= 31
    assert log_spaced_steps(5, 1) == [0, 5]


def test_cosine_annealing_is_torchs_cosine_annealing_lr_with_half_the_period():
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=512, eta_min=0)
    for step in range(2600):
        ours = learning_rate(step, 8192, 0.01, "cosine_annealing", restart_period=1024)
        assert ours == pytest.approx(optimizer.param_groups[0]["lr"], abs=1e-9), step
        optimizer.step()
        scheduler.step()
    assert learning_rate(512, 8192, 1.0, "cosine_annealing", restart_period=1024) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(1024, 8192, 1.0, "cosine_annealing", restart_period=1024) == pytest.approx(1.0)
