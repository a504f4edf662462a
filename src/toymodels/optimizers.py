"""Optimisers for parameters with a leading instance axis (one independent model per index of dim 0)."""

from __future__ import annotations

from typing import Iterable

import torch

OPTIMIZERS = ("adamw", "lamb")


class InstanceLamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019) with the trust ratio ||p|| / ||update|| computed per instance (dim 0).

    Decoupled weight decay is part of the update, as in the original LAMB; a ratio with a zero norm is 1.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch API
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = float(state["step"])
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (state["exp_avg"] / (1 - beta1**t)) / ((state["exp_avg_sq"] / (1 - beta2**t)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                dims = tuple(range(1, p.ndim))
                p_norm = p.norm(dim=dims, keepdim=True) if dims else p.abs()
                u_norm = update.norm(dim=dims, keepdim=True) if dims else update.abs()
                trust = torch.where((p_norm > 0) & (u_norm > 0), p_norm / u_norm, torch.ones_like(p_norm))
                p.sub_(group["lr"] * trust * update)


def make_optimizer(name: str, params: dict[str, torch.Tensor], lr: float, weight_decay: float,
                   no_decay: Iterable[str] = (), betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """AdamW (foreach) or per-instance LAMB; parameters named in ``no_decay`` get no weight decay."""
    skip = set(no_decay)
    groups = [
        {"params": [p for n, p in params.items() if n not in skip], "weight_decay": weight_decay},
        {"params": [p for n, p in params.items() if n in skip], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)
    if name == "lamb":
        return InstanceLamb(groups, lr=lr, betas=betas)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
