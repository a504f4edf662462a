"""Optimisers for parameters with a leading instance axis (one independent model per index of dim 0)."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import torch

OPTIMIZERS = ("adamw", "lamb", "sgd", "sgd_momentum")
SGD_MOMENTUM = 0.9  # torch.optim.SGD's heavy-ball momentum as usually set (dampening 0, not Nesterov)


MOMENT_FLOOR = torch.finfo(torch.float32).tiny  # second moments are floored here before their square root


def root_of_moments(exp_avg_sqs: list[torch.Tensor]) -> list[torch.Tensor]:
    """sqrt of every second moment, taken of max(v, MOMENT_FLOOR, the smallest normal float): torch's CPU sqrt is ~15x
    slower on exact zeros (the moments of dead units), and sqrt(1.2e-38) = 1.1e-19 vanishes against eps >= 1e-8 in
    float32, so the optimiser's numbers are unchanged."""
    return torch._foreach_sqrt(torch._foreach_maximum(exp_avg_sqs, MOMENT_FLOOR))


class InstanceOptimizer:
    """AdamW, LAMB (You et al. 2019) with its trust ratio ||p|| / ||update|| computed per instance (dim 0), or plain
    SGD without or with momentum (``sgd``, ``sgd_momentum``).

    Not a ``torch.optim.Optimizer``: constructing one of those imports ``torch._dynamo``, ~3.4 s of every training
    job's start-up on one CPU core. The interface the training loop and its hooks use is the same: ``param_groups``
    (with ``lr`` and ``weight_decay``), ``state[param]`` (``step``, ``exp_avg``, ``exp_avg_sq``), ``zero_grad`` and
    ``step``. The AdamW update is torch's foreach AdamW op for op, so it gives the same numbers (tested).
    LAMB is ``torch_optimizer.Lamb`` (the optimiser of Jermyn et al. 2022) with its defaults: the trust ratio is
    min(||p||, ``clamp_value`` = 10) / ||update||, the moments are not bias-corrected (``debias=False``; with the
    trust ratio only the weight of ``eps`` would change), the decoupled weight decay is part of the update, and a
    ratio with a zero norm is 1. Without the clamp a bias whose gradient is noise grows geometrically (each step
    moves it by lr ||b||). SGD is ``torch.optim.SGD``'s update: weight decay is coupled (g + decay p), and
    ``sgd_momentum`` keeps the buffer b = 0.9 b + g (b = g at the first step) and steps p -= lr b.
    """

    def __init__(self, rule: str, groups: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float | None = None, clamp_value: float = 10.0) -> None:
        if rule not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {rule!r}")
        self.rule, self.clamp_value = rule, clamp_value
        eps = eps if eps is not None else (1e-8 if rule == "adamw" else 1e-6)
        self.param_groups = [{"lr": lr, "betas": betas, "eps": eps, "weight_decay": 0.0, **group} for group in groups]
        self.state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                {"adamw": self._adamw, "lamb": self._lamb}.get(self.rule, self._sgd)(group, params)

    def _moments(self, params: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
        """Lazily created first and second moments, and each parameter's step count after this step."""
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
        states = [self.state[p] for p in params]
        return [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [float(s["step"]) for s in states]

    def _adamw(self, group: dict, params: list[torch.Tensor]) -> None:
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        grads = [p.grad for p in params]
        exp_avgs, exp_avg_sqs, steps = self._moments(params)
        if decay:
            torch._foreach_mul_(params, 1 - lr * decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        step_sizes = [-lr / (1 - beta1**t) for t in steps]
        denominators = root_of_moments(exp_avg_sqs)
        torch._foreach_div_(denominators, [(1 - beta2**t) ** 0.5 for t in steps])
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)

    def _sgd(self, group: dict, params: list[torch.Tensor]) -> None:
        grads = [p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"]) for p in params]
        if self.rule == "sgd_momentum":
            for p, grad in zip(params, grads):
                state = self.state[p]
                if "momentum_buffer" in state:
                    state["momentum_buffer"].mul_(SGD_MOMENTUM).add_(grad)
                else:
                    state["momentum_buffer"] = grad.clone()
            grads = [self.state[p]["momentum_buffer"] for p in params]
        torch._foreach_add_(params, grads, alpha=-group["lr"])

    def _lamb(self, group: dict, params: list[torch.Tensor]) -> None:
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        exp_avgs, exp_avg_sqs, _ = self._moments(params)
        for p, exp_avg, exp_avg_sq in zip(params, exp_avgs, exp_avg_sqs):
            exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            # The update is built in one buffer per parameter, kept between steps: a fresh tensor per operation costs
            # a CPU job more than the arithmetic (page faults on every new allocation). Same operations, same numbers.
            update = self.state[p].setdefault("update", torch.empty_like(p))
            torch.clamp_min(exp_avg_sq, MOMENT_FLOOR, out=update).sqrt_().add_(eps)  # root_of_moments, in place
            torch.div(exp_avg, update, out=update)
            if decay:
                update.add_(p, alpha=decay)
            dims = tuple(range(1, p.ndim))
            p_norm = (p.norm(dim=dims, keepdim=True) if dims else p.abs()).clamp(max=self.clamp_value)
            u_norm = update.norm(dim=dims, keepdim=True) if dims else update.abs()
            trust = torch.where((p_norm > 0) & (u_norm > 0), p_norm / u_norm, torch.ones_like(p_norm))
            p.sub_(update.mul_(lr * trust))


def decay_groups(params: dict[str, torch.Tensor], weight_decay: float, no_decay: Iterable[str] = ()) -> list[dict]:
    """Parameter groups: ``weight_decay`` for all but those named in ``no_decay``, which get none (empty groups dropped)."""
    skip = set(no_decay)
    groups = [
        {"params": [p for n, p in params.items() if n not in skip], "weight_decay": weight_decay},
        {"params": [p for n, p in params.items() if n in skip], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(name: str, params: dict[str, torch.Tensor], lr: float, weight_decay: float,
                   no_decay: Iterable[str] = (), betas: tuple[float, float] = (0.9, 0.999)) -> InstanceOptimizer:
    """One of OPTIMIZERS; parameters named in ``no_decay`` get no weight decay."""
    return InstanceOptimizer(name, decay_groups(params, weight_decay, no_decay), lr, betas)
