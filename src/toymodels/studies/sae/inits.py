"""The seven decoder initialisations compared by Peigne (2023); every one returns unit-norm atoms [M, d].

Data-based atoms come from one sample of the training distribution per seed (``InitSample``), shared by
every data-based initialisation of that seed so that they are compared on the same inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import LocalOutlierFactor

from toymodels.studies.sae.instances import INITS, RARE_METHODS

LOF_NEIGHBORS = 250
_TINY = 1e-8


def unit_rows(vectors: torch.Tensor, fallback: torch.Tensor | None = None) -> torch.Tensor:
    """Rows scaled to unit norm; a (near-)zero row is replaced by the matching row of ``fallback``, normalised."""
    norms = vectors.norm(dim=-1, keepdim=True)
    if fallback is not None:
        vectors = torch.where(norms > _TINY, vectors, fallback)
        norms = vectors.norm(dim=-1, keepdim=True)
    if bool((norms <= _TINY).any()):
        raise ValueError("cannot normalise a zero atom")
    return vectors / norms


def rare_count(n_atoms: int, rare_ratio: float) -> int:
    """Atoms filled by a rare-feature method: ceil(ratio * M), so any ratio in (0, 1] gives at least one."""
    if not 0 < rare_ratio <= 1:
        raise ValueError(f"rare_ratio must be in (0, 1], got {rare_ratio}")
    return math.ceil(rare_ratio * n_atoms - 1e-9)


def _sklearn_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


@dataclass(eq=False)
class InitSample:
    """Inputs x [S, d] drawn from the data stream for the data-based initialisations of one seed."""

    x: torch.Tensor

    @cached_property
    def outlier_scores(self) -> np.ndarray:
        """LocalOutlierFactor (n_neighbors = 250) negative outlier factors: lower = more outlying."""
        neighbors = min(LOF_NEIGHBORS, self.x.shape[0] - 1)
        return LocalOutlierFactor(n_neighbors=neighbors).fit(self.x.double().numpy()).negative_outlier_factor_


def xavier_atoms(n_atoms: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Xavier-uniform decoder weight [d, M] (as in Linear(M, d)); its columns scaled to unit norm."""
    weight = torch.empty(d, n_atoms)
    torch.nn.init.xavier_uniform_(weight, generator=generator)
    return unit_rows(weight.T)


def orthogonal_atoms(n_atoms: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Orthogonal decoder weight [d, M] (orthonormal rows when M > d: a tight frame); columns scaled to unit norm."""
    weight = torch.empty(d, n_atoms)
    torch.nn.init.orthogonal_(weight, generator=generator)
    return unit_rows(weight.T)


def _raw_rows(sample: InitSample, count: int, exclude: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct random sample rows not in ``exclude``, normalised."""
    order = torch.randperm(sample.x.shape[0], generator=generator)
    order = order[~torch.isin(order, exclude)]
    if len(order) < count:
        raise ValueError(f"init_sample_size ({sample.x.shape[0]}) is too small: {count + len(exclude)} sample rows needed")
    return unit_rows(sample.x[order[:count]])


def data_atoms(sample: InitSample, n_atoms: int, generator: torch.Generator) -> torch.Tensor:
    """M distinct random inputs as atoms."""
    return _raw_rows(sample, n_atoms, torch.empty(0, dtype=torch.long), generator)


def svd_atoms(sample: InitSample, n_atoms: int, generator: torch.Generator) -> torch.Tensor:
    """The right singular vectors of the (uncentred) sample, largest first, each signed so that the sample
    projects positively on it on average; the sample has rank <= d, so atoms beyond its rank are random
    inputs (as in ``data``)."""
    _, singular, vh = torch.linalg.svd(sample.x.double(), full_matrices=False)
    rank = int((singular > singular[0] * 1e-6).sum())
    vectors = vh[: min(rank, n_atoms)]
    signs = torch.sign(sample.x.double().mean(0) @ vectors.T)
    vectors = (vectors * torch.where(signs == 0, 1.0, signs)[:, None]).float()
    rest = _raw_rows(sample, n_atoms - len(vectors), torch.empty(0, dtype=torch.long), generator)
    return torch.cat([unit_rows(vectors), rest])


def _rare_mean(sample: InitSample, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs minus the sample mean (Peigne's average-based method)."""
    chosen = torch.randperm(sample.x.shape[0], generator=generator)[:count]
    return sample.x[chosen] - sample.x.mean(0), chosen


def _rare_centroid(sample: InitSample, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """MiniBatchKMeans with ``count`` clusters; one random member of each cluster minus its centroid
    (a cluster left empty is served by another random input minus its own centroid)."""
    kmeans = MiniBatchKMeans(n_clusters=count, random_state=_sklearn_seed(generator), n_init=3).fit(sample.x.double().numpy())
    labels = torch.from_numpy(kmeans.labels_).long()
    centroids = torch.from_numpy(kmeans.cluster_centers_).float()
    order = torch.randperm(sample.x.shape[0], generator=generator)
    first_of_cluster = {}
    for index in order.tolist():
        first_of_cluster.setdefault(int(labels[index]), index)
    chosen = list(first_of_cluster.values())
    taken = set(chosen)
    spare = [i for i in order.tolist() if i not in taken]
    chosen = torch.tensor(chosen + spare[: count - len(chosen)], dtype=torch.long)
    return sample.x[chosen] - centroids[labels[chosen]], chosen


def _rare_outlier(sample: InitSample, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most outlying inputs by LocalOutlierFactor (n_neighbors = 250)."""
    chosen = torch.from_numpy(np.argsort(sample.outlier_scores, kind="stable")[:count].copy()).long()
    return sample.x[chosen], chosen


_RARE = {"rare_mean": _rare_mean, "rare_centroid": _rare_centroid, "rare_outlier": _rare_outlier}


def rare_atoms(method: str, sample: InitSample, n_atoms: int, rare_ratio: float, generator: torch.Generator) -> torch.Tensor:
    """ceil(ratio M) atoms from a rare-feature method, then random inputs (not already used) for the rest."""
    count = rare_count(n_atoms, rare_ratio)
    rare, used = _RARE[method](sample, count, generator)
    rare = unit_rows(rare, fallback=sample.x[used])
    return torch.cat([rare, _raw_rows(sample, n_atoms - count, used, generator)])


def decoder_atoms(init: str, sample: InitSample, n_atoms: int, rare_ratio: float | None,
                  generator: torch.Generator) -> torch.Tensor:
    """Unit-norm decoder atoms [M, d] for one initialisation (``rare_ratio`` only for the rare-feature methods)."""
    d = sample.x.shape[1]
    if init == "xavier":
        return xavier_atoms(n_atoms, d, generator)
    if init == "orthogonal":
        return orthogonal_atoms(n_atoms, d, generator)
    if init == "data":
        return data_atoms(sample, n_atoms, generator)
    if init == "svd":
        return svd_atoms(sample, n_atoms, generator)
    if init in RARE_METHODS:
        if rare_ratio is None:
            raise ValueError(f"{init} needs a rare_ratio")
        return rare_atoms(init, sample, n_atoms, rare_ratio, generator)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")
