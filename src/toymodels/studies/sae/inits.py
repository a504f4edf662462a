"""The seven decoder initialisations compared by Peigne (2023), and two alternative rare-feature methods (Ward
clustering, isolation-forest outliers); every one returns unit-norm atoms [M, d].

Data-based atoms come from one sample of the training distribution per seed (``InitSample``), shared by
every data-based initialisation of that seed so that they are compared on the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from toymodels.studies.sae import LOF_NEIGHBORS
from toymodels.studies.sae.instances import INITS, RARE_METHODS, rare_count

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


def _sklearn_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


@dataclass(frozen=True)
class RareSettings:
    """Tuning of the rare-feature methods: ``clusters`` of the clustering methods (rare_centroid, rare_ward; None =
    one per rare atom) and ``lof_neighbors`` of LocalOutlierFactor (rare_outlier)."""

    clusters: int | None = None
    lof_neighbors: int = LOF_NEIGHBORS


def rare_settings(params: Mapping[str, Any]) -> RareSettings:
    """A cell's ``centroid_clusters`` and ``lof_neighbors`` (optional keys; absent = the defaults above)."""
    clusters = params.get("centroid_clusters")
    return RareSettings(None if clusters is None else int(clusters), int(params.get("lof_neighbors", LOF_NEIGHBORS)))


@dataclass(eq=False)
class InitSample:
    """Inputs x [S, d] drawn from the data stream for the data-based initialisations of one seed."""

    x: torch.Tensor
    _lof_scores: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def outlier_scores(self, neighbors: int = LOF_NEIGHBORS) -> np.ndarray:
        """LocalOutlierFactor negative outlier factors (lower = more outlying), fitted once per neighbour count."""
        if not 0 < neighbors < self.x.shape[0]:
            raise ValueError(f"lof_neighbors must be in 1 .. {self.x.shape[0] - 1} (the init sample size - 1), "
                             f"got {neighbors}")
        if neighbors not in self._lof_scores:
            lof = LocalOutlierFactor(n_neighbors=neighbors).fit(self.x.double().numpy())
            self._lof_scores[neighbors] = lof.negative_outlier_factor_
        return self._lof_scores[neighbors]


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


def _rare_mean(sample: InitSample, count: int, generator: torch.Generator,
               settings: RareSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs minus the sample mean (Peigne's average-based method)."""
    chosen = torch.randperm(sample.x.shape[0], generator=generator)[:count]
    return sample.x[chosen] - sample.x.mean(0), chosen


def _cluster_members(sample: InitSample, count: int, labels: torch.Tensor, centroids: torch.Tensor,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random member of each cluster minus its centroid, for the first ``count`` clusters a random order of the
    sample meets; with fewer (non-empty) clusters than ``count``, further random inputs minus their own centroid."""
    order = torch.randperm(sample.x.shape[0], generator=generator)
    first_of_cluster = {}
    for index in order.tolist():
        first_of_cluster.setdefault(int(labels[index]), index)
    chosen = list(first_of_cluster.values())
    taken = set(chosen)
    spare = [i for i in order.tolist() if i not in taken]
    chosen = torch.tensor((chosen + spare)[:count], dtype=torch.long)
    return sample.x[chosen] - centroids[labels[chosen]], chosen


def _rare_centroid(sample: InitSample, count: int, generator: torch.Generator,
                   settings: RareSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """MiniBatchKMeans with ``settings.clusters`` clusters (default ``count``, n_init 3); members minus their
    centroid (:func:`_cluster_members`)."""
    kmeans = MiniBatchKMeans(n_clusters=settings.clusters or count, random_state=_sklearn_seed(generator),
                             n_init=3).fit(sample.x.double().numpy())
    labels = torch.from_numpy(kmeans.labels_).long()
    return _cluster_members(sample, count, labels, torch.from_numpy(kmeans.cluster_centers_).float(), generator)


def _rare_ward(sample: InitSample, count: int, generator: torch.Generator,
               settings: RareSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Agglomerative clustering with Ward linkage into ``settings.clusters`` clusters (default ``count``); members
    minus their cluster mean (:func:`_cluster_members`)."""
    clusters = settings.clusters or count
    labels = torch.from_numpy(AgglomerativeClustering(n_clusters=clusters, linkage="ward")
                              .fit(sample.x.double().numpy()).labels_).long()
    sums = torch.zeros(clusters, sample.x.shape[1], dtype=torch.float64).index_add_(0, labels, sample.x.double())
    means = (sums / torch.bincount(labels, minlength=clusters).clamp_min(1)[:, None]).float()
    return _cluster_members(sample, count, labels, means, generator)


def _rare_outlier(sample: InitSample, count: int, generator: torch.Generator,
                  settings: RareSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most outlying inputs by LocalOutlierFactor (``settings.lof_neighbors``, default 250)."""
    scores = sample.outlier_scores(settings.lof_neighbors)
    chosen = torch.from_numpy(np.argsort(scores, kind="stable")[:count].copy()).long()
    return sample.x[chosen], chosen


def _rare_isolation(sample: InitSample, count: int, generator: torch.Generator,
                    settings: RareSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most anomalous inputs by an IsolationForest (100 trees of 256 inputs; lowest
    ``score_samples``: the shortest mean path to isolation)."""
    x = sample.x.double().numpy()
    scores = IsolationForest(random_state=_sklearn_seed(generator)).fit(x).score_samples(x)
    chosen = torch.from_numpy(np.argsort(scores, kind="stable")[:count].copy()).long()
    return sample.x[chosen], chosen


_RARE = {"rare_mean": _rare_mean, "rare_centroid": _rare_centroid, "rare_outlier": _rare_outlier,
         "rare_ward": _rare_ward, "rare_isolation": _rare_isolation}


def rare_atoms(method: str, sample: InitSample, n_atoms: int, rare_ratio: float, generator: torch.Generator,
               settings: RareSettings = RareSettings()) -> torch.Tensor:
    """ceil(ratio M) atoms from a rare-feature method, then random inputs (not already used) for the rest."""
    count = rare_count(n_atoms, rare_ratio)
    rare, used = _RARE[method](sample, count, generator, settings)
    rare = unit_rows(rare, fallback=sample.x[used])
    return torch.cat([rare, _raw_rows(sample, n_atoms - count, used, generator)])


def decoder_atoms(init: str, sample: InitSample, n_atoms: int, rare_ratio: float | None,
                  generator: torch.Generator, settings: RareSettings = RareSettings()) -> torch.Tensor:
    """Unit-norm decoder atoms [M, d] for one initialisation (``rare_ratio`` and ``settings`` only for the rare-feature
    methods)."""
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
        return rare_atoms(init, sample, n_atoms, rare_ratio, generator, settings)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")
