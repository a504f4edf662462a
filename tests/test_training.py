from functools import partial

import pytest
import torch

from toymodels.optimizers import make_optimizer
from toymodels.training import (
    NonFiniteLossError,
    Stages,
    TrainConfig,
    snapshot_path,
    step_generator,
    train,
    unflatten_checkpoints,
)


def quadratic_problem(n_instances: int = 3):
    """Instance i minimises ||w - target_i||^2 from a seeded random start."""
    targets = torch.arange(n_instances, dtype=torch.float32)[:, None].repeat(1, 4)
    params = {"w": torch.randn(n_instances, 4, generator=torch.Generator().manual_seed(0))}
    return params, lambda step: (params["w"] - targets).pow(2).sum(dim=1), targets


def test_instances_train_independently_to_their_own_optimum():
    params, loss_fn, targets = quadratic_problem()
    result = train(params, loss_fn, TrainConfig(steps=400, lr=0.05, schedule="constant", progress=False), [1, 2, 3])
    assert torch.allclose(result.params["w"], targets, atol=1e-2)
    final = result.history[result.history.step == 400]
    assert list(final.seed) == [0, 1, 2] and (final.loss < 1e-3).all()
    assert {"step", "seed", "loss", "scheduled_lr", "w_norm"} <= set(result.history.columns)


def test_checkpoints_are_log_spaced_and_include_init_and_end():
    params, loss_fn, _ = quadratic_problem()
    start = params["w"].clone()
    result = train(params, loss_fn, TrainConfig(steps=100, lr=0.1, checkpoint_points=6, progress=False), [1, 2, 3])
    assert min(result.checkpoints) == 0 and max(result.checkpoints) == 100
    assert torch.equal(result.checkpoints[0]["w"], start)
    assert unflatten_checkpoints(result.checkpoint_tensors()).keys() == result.checkpoints.keys()


def test_nan_guard_names_step_and_seed():
    params = {"w": torch.ones(2, 3)}

    def loss_fn(step):
        loss = params["w"].pow(2).sum(dim=1)
        return loss * torch.tensor([1.0, float("nan") if step >= 7 else 1.0])

    with pytest.raises(NonFiniteLossError, match=r"step 7 for instance\(s\) \[1\] \(seed \[22\]\)"):
        train(params, loss_fn, TrainConfig(steps=20, lr=0.01, progress=False), [11, 22])


class RunningMean:
    """A hook's own state: the sum of the weights after every update (a tensor) and the number of updates (JSON)."""

    def __init__(self) -> None:
        self.total, self.updates = torch.zeros(2, 5), 0

    def state_dict(self) -> dict:
        return {"total": self.total.clone(), "updates": self.updates}

    def load_state_dict(self, state) -> None:
        self.total, self.updates = state["total"].clone(), state["updates"]


def start() -> dict[str, torch.Tensor]:
    return {"w": torch.randn(2, 5, generator=torch.Generator().manual_seed(0))}


def noisy_run(params, mean: RunningMean, stop_at=None, resume_path=None, steps=50, seed=7, fingerprint=None):
    """Instances pulled towards fresh noise and towards the running mean of their own weights (the hook's state)."""

    def loss_fn(step):
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt
        noise = torch.randn(2, 5, generator=step_generator(seed, step))
        return (params["w"] - noise).pow(2).sum(dim=1) + (params["w"] - mean.total / max(1, mean.updates)).pow(2).sum(dim=1)

    def after_step(step):
        mean.total += params["w"]
        mean.updates += 1

    config = TrainConfig(steps=steps, lr=0.05, warmup_steps=5, progress=False)
    return train(params, loss_fn, config, [1, 2], after_step=after_step, state={"mean": mean}, resume_path=resume_path,
                 resume_every_s=0.0, fingerprint=fingerprint)


def test_resume_from_a_snapshot_gives_the_same_result_hook_state_included(tmp_path):
    reference_mean = RunningMean()
    reference = noisy_run(start(), reference_mean)
    state = tmp_path / "resume.safetensors"
    with pytest.raises(KeyboardInterrupt):
        noisy_run(start(), RunningMean(), stop_at=31, resume_path=state)
    assert state.exists()
    mean = RunningMean()
    resumed = noisy_run(start(), mean, resume_path=state)
    assert not state.exists()
    assert torch.equal(resumed.params["w"], reference.params["w"])
    assert resumed.history.equals(reference.history)
    assert torch.equal(mean.total, reference_mean.total) and mean.updates == reference_mean.updates == 50


def two_stages(resume_path, calls: list[str], stop: tuple = (None, None), fingerprint=None):
    """Stage one trains from ``start()``, stage two from stage one's weights; stage one's hook state is saved with
    its result. ``stop`` = (stage, step) interrupts that stage; ``calls`` collects the stages that trained."""
    stages = Stages(resume_path, fingerprint or {"run": 1})
    means = {"one": RunningMean(), "two": RunningMean()}

    def stage(name, params, resume_path):
        calls.append(name)
        return noisy_run(params, means[name], stop[1] if stop[0] == name else None, resume_path, steps=20,
                         seed=list(means).index(name), fingerprint=stages.fingerprint)

    first = stages.run("one", partial(stage, "one", start()), {"mean": means["one"]})
    second = stages.run("two", partial(stage, "two", {"w": first.params["w"].clone()}))
    stages.clear()
    return first, second, means["one"]


def test_stages_read_finished_stages_back_and_resume_the_unfinished_one(tmp_path):
    reference = two_stages(None, [])
    state = tmp_path / "resume.safetensors"
    with pytest.raises(KeyboardInterrupt):
        two_stages(state, [], stop=("two", 12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume.one.safetensors", "resume.two.safetensors"]
    calls: list[str] = []
    resumed = two_stages(state, calls)
    assert calls == ["two"]  # stage one is read back, its hook state with it
    assert list(tmp_path.iterdir()) == []
    for ours, theirs in zip(resumed[:2], reference[:2]):
        assert torch.equal(ours.params["w"], theirs.params["w"]) and ours.history.equals(theirs.history)
    assert torch.equal(resumed[2].total, reference[2].total) and resumed[2].updates == 20


def test_stage_files_of_other_settings_are_ignored(tmp_path):
    state = tmp_path / "resume.safetensors"
    with pytest.raises(KeyboardInterrupt):
        two_stages(state, [], stop=("two", 12))
    calls: list[str] = []
    two_stages(state, calls, fingerprint={"run": 2})
    assert calls == ["one", "two"]


def test_snapshots_of_other_code_are_removed_and_never_resumed(tmp_path):
    old = snapshot_path(tmp_path, "aaaaaaaaaaaa")
    assert old == tmp_path / "resume-aaaaaaaaaaaa.safetensors"
    with pytest.raises(KeyboardInterrupt):
        two_stages(old, [], stop=("two", 12))  # leaves the loop's snapshot and a finished stage beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume-aaaaaaaaaaaa.one.safetensors",
                                                          "resume-aaaaaaaaaaaa.two.safetensors"]
    assert snapshot_path(tmp_path, "aaaaaaaaaaaa") == old and len(list(tmp_path.iterdir())) == 2  # same code keeps them
    calls: list[str] = []
    two_stages(snapshot_path(tmp_path, "bbbbbbbbbbbb"), calls)  # edited code starts afresh
    assert calls == ["one", "two"]


def test_lamb_trust_ratio_is_per_instance():
    p = torch.tensor([[3.0, 4.0], [0.3, 0.4]], requires_grad=True)
    optimizer = make_optimizer("lamb", {"p": p}, lr=0.1, weight_decay=0.0)
    p.grad = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    before = p.detach().clone()
    optimizer.step()
    step_norms = (before - p.detach()).norm(dim=1)
    # first Adam step: update = sign(g) -> |update| = 1; trust = ||p|| so the step is lr * ||p|| per instance
    assert step_norms == pytest.approx(torch.tensor([0.5, 0.05]), rel=1e-4)


def test_adamw_matches_torch_adamw_bit_for_bit():
    """The own AdamW (no torch.optim import cost) is torch's foreach AdamW, decay groups and bias correction included."""
    generator = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(3, 4, 5, generator=generator), "b": torch.randn(3, 5, generator=generator)}
    ours = {n: t.clone().requires_grad_() for n, t in start.items()}
    theirs = {n: t.clone().requires_grad_() for n, t in start.items()}
    optimizer = make_optimizer("adamw", ours, 0.05, 0.1, no_decay=("b",))
    reference = torch.optim.AdamW([{"params": [theirs["w"]], "weight_decay": 0.1}, {"params": [theirs["b"]], "weight_decay": 0.0}],
                                  lr=0.05, foreach=True)
    for step in range(5):
        grads = {n: torch.randn(t.shape, generator=generator) for n, t in start.items()}
        for params in (ours, theirs):
            for n, p in params.items():
                p.grad = grads[n].clone()
        for group in (*optimizer.param_groups, *reference.param_groups):
            group["lr"] = 0.05 / (step + 1)
        optimizer.step()
        reference.step()
    for n in start:
        assert torch.equal(ours[n], theirs[n]), n
        assert torch.equal(optimizer.state[ours[n]]["exp_avg_sq"], reference.state[theirs[n]]["exp_avg_sq"])


def test_make_optimizer_rejects_unknown_names_and_skips_decay():
    params = {"w": torch.ones(1, 2, requires_grad=True), "b": torch.ones(1, 2, requires_grad=True)}
    optimizer = make_optimizer("adamw", params, 0.1, 0.5, no_decay=("b",))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.5, 0.0]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("rmsprop", params, 0.1, 0.0)


@pytest.mark.parametrize("rule, momentum", [("sgd", 0.0), ("sgd_momentum", 0.9)])
def test_sgd_matches_torch_sgd(rule, momentum):
    """Plain and heavy-ball SGD with coupled weight decay, as torch.optim.SGD (a hand-checked first step too)."""
    generator = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(3, 4, generator=generator), "b": torch.randn(3, 2, generator=generator)}
    ours = {n: t.clone().requires_grad_() for n, t in start.items()}
    theirs = {n: t.clone().requires_grad_() for n, t in start.items()}
    optimizer = make_optimizer(rule, ours, 0.1, 0.5, no_decay=("b",))
    reference = torch.optim.SGD([{"params": [theirs["w"]], "weight_decay": 0.5}, {"params": [theirs["b"]], "weight_decay": 0.0}],
                                lr=0.1, momentum=momentum)
    for step in range(4):
        grads = {n: torch.randn(t.shape, generator=generator) for n, t in start.items()}
        for params in (ours, theirs):
            for n, p in params.items():
                p.grad = grads[n].clone()
        optimizer.step()
        reference.step()
        if step == 0:  # p1 = p0 - lr (g + decay p0), whether or not there is momentum (the buffer starts at g)
            assert torch.allclose(ours["w"], start["w"] - 0.1 * (grads["w"] + 0.5 * start["w"]))
    for n in start:
        assert torch.allclose(ours[n], theirs[n], atol=1e-6), n
