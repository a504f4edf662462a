"""Toy data with a known dictionary: sparse, correlated, rank-decaying features in superposition.

Following the generator of Sharkey et al. (2022) as replicated in HoagyC/sparse_coding (written by
P. Peigne), with the choices made explicit:

- ground truth F [N, d]: rows drawn N(0, I_d) and scaled to unit norm;
- correlation matrix C [N, N]: the replication's symmetrised U(0, 1) matrix shifted by 1.001 |lambda_min|
  to be positive definite, then rescaled to unit diagonal (a true correlation matrix, so Phi(z_i) ~ U(0, 1));
- feature probabilities p = k * (Phi(z) * decay) / sum(Phi(z) * decay), decay_i = prob_decay ** i,
  with z ~ N(0, C) drawn once per sample (``correlation: per_sample``) or once per batch
  (``per_batch``, the replication's choice); every draw of z gives exactly k expected active
  features (p clipped at 1);
- codes: feature i active with probability p_i, coefficient U(0, 1); a sample with no active feature
  gets one, chosen with probability proportional to p (coefficient U(0, 1));
- x = codes @ F. Training draws fresh batches every step; a fixed evaluation set lives in the dataset file.

With ``activations`` set, the inputs are instead the hidden activations of a trained monosemanticity model (one
instance of one cell with a ReLU first layer h(v) = ReLU(W1 P v + b1), d = its width k), on inputs v drawn from that model's own
task distribution, minus the activations h(0) of the empty input (the SAE has no decoder bias). The ground truth
is each feature pushed through the first layer: F_i = h(e_i) - h(0), unit norm (e_i: feature i alone at its largest
value, 1). The map is not linear, so x is not exactly codes @ F: the closest this project comes to a real model.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from toymodels.artifacts import load_tensors, read_table
from toymodels.grid import derive_seed
from toymodels.studies.monosemanticity.data import TASKS, sample_task
from toymodels.studies.sae import data_identity

CORRELATIONS = ("per_sample", "per_batch")


def ground_truth_features(n_features: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """F [N, d]: N isotropic Gaussian directions in R^d, unit norm."""
    features = torch.randn(n_features, d, generator=generator, dtype=torch.float64)
    return (features / features.norm(dim=1, keepdim=True)).float()


def correlation_cholesky(n_features: int, generator: torch.Generator) -> torch.Tensor:
    """Lower Cholesky factor L of a random correlation matrix C = L L^T [N, N] (unit diagonal)."""
    base = torch.rand(n_features, n_features, generator=generator, dtype=torch.float64)
    base = (base + base.T) / 2
    min_eig = float(torch.linalg.eigvalsh(base)[0])
    if min_eig < 0:
        base = base - 1.001 * min_eig * torch.eye(n_features, dtype=torch.float64)
    scale = base.diagonal().rsqrt()
    corr = base * scale[:, None] * scale[None, :]
    return torch.linalg.cholesky(corr).float()


def rank_decay(n_features: int, prob_decay: float) -> torch.Tensor:
    """decay_i = prob_decay ** i: feature 0 is the most frequent."""
    return (prob_decay ** torch.arange(n_features, dtype=torch.float64)).float()


def feature_probabilities(z: torch.Tensor, decay: torch.Tensor, active_features: float) -> torch.Tensor:
    """p = k Phi(z) decay / sum(Phi(z) decay) along the last axis, clipped at 1 (sum p = k unless clipped)."""
    weights = torch.special.ndtr(z) * decay
    return (active_features * weights / weights.sum(-1, keepdim=True)).clamp(max=1.0)


def sample_codes(n_samples: int, cholesky: torch.Tensor, decay: torch.Tensor, active_features: float,
                 correlation: str, generator: torch.Generator) -> torch.Tensor:
    """Sparse non-negative codes [n, N]: the coefficients of each sample on the ground-truth features."""
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    n_features, device = cholesky.shape[0], cholesky.device
    draws = n_samples if correlation == "per_sample" else 1
    z = torch.randn(draws, n_features, generator=generator, device=device) @ cholesky.T
    probs = feature_probabilities(z, decay, active_features).expand(n_samples, n_features)
    active = torch.rand(n_samples, n_features, generator=generator, device=device) < probs
    empty = torch.nonzero(~active.any(dim=1)).flatten()
    if len(empty):
        chosen = torch.multinomial(probs[empty], 1, generator=generator).flatten()
        active[empty, chosen] = True
    rows, columns = torch.nonzero(active, as_tuple=True)
    codes = torch.zeros(n_samples, n_features, device=device)
    codes[rows, columns] = torch.rand(len(rows), generator=generator, device=device)
    return codes


def make_dataset(params: Mapping[str, Any], inputs: Mapping[str, list[str]] | None = None) -> dict[str, torch.Tensor]:
    """Ground truth ``features`` [N, d], ``cholesky`` [N, N], ``decay`` [N] and a fixed ``eval_x`` [E, d]; with
    ``activations`` set, :func:`activation_dataset` of the source model and dataset in ``inputs``, with the source
    instance's #mono/#features (``source_mono_fraction``, from its instances table)."""
    generator = torch.Generator().manual_seed(derive_seed("sae", "data", data_identity(params)))
    if params.get("activations") is not None:
        if not inputs or any(not inputs.get(name) for name in ("model", "instances", "data")):
            raise ValueError("activations: the dataset needs the source model, instances table and dataset files "
                             "(the upstream inputs)")
        seed = int(params["activations"]["seed"])
        model, meta = load_tensors(inputs["model"][0])
        source, _ = load_tensors(inputs["data"][0])
        instances = read_table(inputs["instances"][0]).set_index("seed")
        return {**activation_dataset(model, source, meta["values"]["task"], seed, int(params["eval_size"]), generator),
                "source_mono_fraction": torch.tensor(float(instances.loc[seed, "mono_fraction_features"]))}
    n, d = int(params["n_features"]), int(params["d"])
    features = ground_truth_features(n, d, generator)
    cholesky = correlation_cholesky(n, generator)
    decay = rank_decay(n, float(params["prob_decay"]))
    codes = sample_codes(int(params["eval_size"]), cholesky, decay, float(params["active_features"]),
                         str(params["correlation"]), generator)
    return {"features": features, "cholesky": cholesky, "decay": decay, "eval_x": codes @ features}


class Stream:
    """Draws batches x = codes @ F from a stored dataset (the ground truth and the correlation factor)."""

    def __init__(self, data: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> None:
        self.features = data["features"]
        self.cholesky = data["cholesky"]
        self.decay = data["decay"]
        self.active_features = float(params["active_features"])
        self.correlation = str(params["correlation"])

    def sample(self, n_samples: int, generator: torch.Generator) -> torch.Tensor:
        """[n, d] fresh inputs."""
        codes = sample_codes(n_samples, self.cholesky, self.decay, self.active_features, self.correlation, generator)
        return codes @ self.features


def source_activations(first_layer: Mapping[str, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """h(v) - h(0) [n, k] for feature vectors v [n, N]: the first layer's activations ReLU(W1 P v + b1), centred on
    the empty input's; ``first_layer`` holds ``W1P`` [k, N] (= W1 P) and ``b1`` [k]."""
    b1 = first_layer["b1"]
    return torch.addmm(b1, v, first_layer["W1P"].T).clamp_min_(0) - b1.clamp_min(0)


def activation_dataset(model: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor], task: str, seed: int,
                       eval_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The inputs of an SAE on instance ``seed`` of a monosemanticity model's hidden activations: ``W1P`` [k, N],
    ``b1`` [k], the source's feature ``probabilities`` [N] and ``task_code`` (index into its TASKS), the ground truth
    ``features`` [N, k] (F_i = h(e_i) - h(0), unit norm; a feature no unit responds to keeps a zero row) and a fixed
    ``eval_x`` [E, k]."""
    first_layer = {"W1P": model["W1"][seed] @ source["P"], "b1": model["b1"][seed]}
    pushed = source_activations(first_layer, torch.eye(source["P"].shape[1]))
    features = pushed / pushed.norm(dim=1, keepdim=True).clamp_min(1e-12)
    eval_v = sample_task(task, source["probabilities"], eval_size, generator)
    return {**first_layer, "probabilities": source["probabilities"], "task_code": torch.tensor(TASKS.index(task)),
            "features": features, "eval_x": source_activations(first_layer, eval_v)}


class ActivationStream:
    """Draws batches of a monosemanticity model's centred hidden activations (:func:`activation_dataset`)."""

    def __init__(self, data: Mapping[str, torch.Tensor]) -> None:
        self.features = data["features"]
        self.first_layer = {key: data[key] for key in ("W1P", "b1")}
        self.probabilities = data["probabilities"]
        self.task = TASKS[int(data["task_code"])]

    def sample(self, n_samples: int, generator: torch.Generator) -> torch.Tensor:
        """[n, k] fresh inputs: v from the source task's distribution, pushed through the first layer."""
        return source_activations(self.first_layer, sample_task(self.task, self.probabilities, n_samples, generator))


def make_stream(data: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> Stream | ActivationStream:
    """The batch source of a dataset: toy codes @ F, or a source model's activations (``activations`` set)."""
    return ActivationStream(data) if "W1P" in data else Stream(data, params)
