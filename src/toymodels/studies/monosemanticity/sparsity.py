"""Weight masks per instance: a fixed random mask, prune-and-grow, and global (magnitude or random) pruning."""

from __future__ import annotations

import torch

PRUNINGS = ("none", "imp", "random")
MASKS = ("dense", "fixed", "prune_grow")


def random_mask(shape: torch.Size | tuple[int, ...], density: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean mask [I, ...] keeping exactly round(density * n) random entries of each instance."""
    n = int(torch.tensor(shape[1:]).prod())
    keep = int(round(density * n))
    scores = torch.rand(shape[0], n, generator=generator)
    mask = torch.zeros(shape[0], n, dtype=torch.bool)
    mask.scatter_(1, scores.topk(keep, dim=1).indices, True)
    return mask.reshape(shape)


def prune_and_grow(weight: torch.Tensor, mask: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """New mask: per instance drop the round(fraction * active) smallest-|w| active entries and enable as many
    randomly chosen previously inactive ones (which start at 0), so the density stays exactly fixed."""
    flat_w, flat_m = weight.detach().abs().flatten(1), mask.flatten(1)
    n_active = int(flat_m[0].sum())
    swap = min(int(round(fraction * n_active)), flat_m.shape[1] - n_active)
    if swap == 0:
        return mask.clone()
    drop = torch.where(flat_m, flat_w, torch.inf).topk(swap, dim=1, largest=False).indices
    grow_scores = torch.where(flat_m, -1.0, torch.rand(flat_m.shape, generator=generator).to(flat_m.device))
    grow = grow_scores.topk(swap, dim=1).indices
    new = flat_m.clone()
    new.scatter_(1, drop, False)
    new.scatter_(1, grow, True)
    return new.reshape(mask.shape)


def prune_global(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], fraction: float, method: str,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Remove round(fraction * remaining) of the still-unmasked weights of each instance, pooled over every matrix
    in ``weights``: the smallest |w| (``imp``, global magnitude pruning) or uniformly at random (``random``)."""
    names = list(weights)
    sizes = [weights[n][0].numel() for n in names]
    flat_m = torch.cat([masks[n].flatten(1) for n in names], dim=1)
    if method == "imp":
        scores = torch.cat([weights[n].detach().abs().flatten(1) for n in names], dim=1)
    elif method == "random":
        scores = torch.rand(flat_m.shape, generator=generator).to(flat_m.device)
    else:
        raise ValueError(f"pruning method must be 'imp' or 'random', got {method!r}")
    remaining = int(flat_m[0].sum())
    n_prune = int(round(fraction * remaining))
    drop = torch.where(flat_m, scores, torch.inf).topk(n_prune, dim=1, largest=False).indices
    new = flat_m.clone()
    new.scatter_(1, drop, False)
    return {n: part.reshape(masks[n].shape) for n, part in zip(names, new.split(sizes, dim=1))}
