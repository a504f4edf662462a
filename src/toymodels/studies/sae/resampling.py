"""Which scored inputs re-initialise the dead latents: the three ``resample_method`` rules.

Each takes the reconstruction loss ||x - x_hat||^2 of every candidate input [n] and returns the indices of the
``count`` inputs whose directions become the new atoms, in the order the dead latents receive them.
"""

from __future__ import annotations

import torch
from sklearn.cluster import KMeans

RESAMPLE_METHODS = ("loss_squared", "top_k", "cluster")


def loss_squared_inputs(losses: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Drawn with probability proportional to loss^2 (Anthropic 2023), without replacement unless ``count``
    exceeds the inputs with positive loss."""
    weights = losses.double().pow(2)
    possible = int((weights > 0).sum())
    return torch.multinomial(weights, count, replacement=count > possible, generator=generator)


def top_k_inputs(losses: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` inputs of largest loss, worst first (Riggs's suggestion in the seed's discussion); when
    ``count`` exceeds the inputs, the ranking repeats."""
    order = torch.argsort(losses, descending=True, stable=True)
    return order[torch.arange(count, device=losses.device) % len(order)]


def cluster_inputs(x: torch.Tensor, losses: torch.Tensor, count: int, pool: int, clusters: int,
                   generator: torch.Generator) -> torch.Tensor:
    """Cluster the ``pool`` worst-reconstructed inputs of x [n, d] (k-means, ``clusters`` clusters), rank the
    clusters by the mean loss of their members and deal the dead latents round-robin over the worst
    min(count, clusters) of them, each getting a member drawn uniformly, without replacement within its cluster
    until the cluster is used up (Peigne's question in the seed's discussion: cluster, then sample from the
    worst-k clusters), so that many dead latents do not all copy one badly reconstructed feature."""
    candidates = top_k_inputs(losses, min(pool, len(losses)))
    n_clusters = min(clusters, len(candidates))
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    labels = torch.as_tensor(KMeans(n_clusters=n_clusters, n_init=1, random_state=seed)
                             .fit(x[candidates].double().cpu().numpy()).labels_, dtype=torch.long)
    members = [m for m in (candidates[(labels == c).to(candidates.device)] for c in range(n_clusters)) if len(m)]
    mean_loss = torch.stack([losses[m].double().mean() for m in members])
    worst = torch.argsort(mean_loss.cpu(), descending=True, stable=True)[:min(count, len(members))].tolist()
    shuffled = [members[c][torch.randperm(len(members[c]), generator=generator, device=generator.device)
                           .to(candidates.device)] for c in worst]
    return torch.stack([shuffled[j % len(worst)][(j // len(worst)) % len(shuffled[j % len(worst)])]
                        for j in range(count)])


def select_inputs(method: str, x: torch.Tensor, losses: torch.Tensor, count: int, generator: torch.Generator,
                  pool: int, clusters: int) -> torch.Tensor:
    """Indices of the inputs for ``count`` dead latents by ``method`` (one of :data:`RESAMPLE_METHODS`)."""
    if method == "loss_squared":
        return loss_squared_inputs(losses, count, generator)
    if method == "top_k":
        return top_k_inputs(losses, count)
    if method == "cluster":
        return cluster_inputs(x, losses, count, pool, clusters, generator)
    raise ValueError(f"resample_method must be one of {RESAMPLE_METHODS}, got {method!r}")
