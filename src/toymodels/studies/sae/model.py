"""The sparse autoencoder, batched over instances (initialisation x rare ratio x seed), and its training.

c = ReLU(W_enc x + b_enc), x_hat = W_dec^T c (no decoder bias), every atom (row of W_dec [I, M, d], i.e.
a column of the usual [d, M] decoder matrix) kept at unit norm. Loss per instance, on a batch of B inputs:

    L = (1 / (B d)) sum_b ||x_b - x_hat_b||^2  +  alpha (1 / B) sum_b ||c_b||_1

i.e. the MSE averaged over inputs and dimensions plus alpha times the mean L1 norm of a code. The L1 term is
not divided by the dictionary size M, so alpha is a per-latent price that means the same for every M (the
replication divides by M: its alpha equals alpha * M here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from toymodels.grid import derive_seed
from toymodels.optimizers import InstanceOptimizer
from toymodels.studies.sae import data_identity
from toymodels.studies.sae.data import Stream, make_stream
from toymodels.studies.sae.inits import InitSample, decoder_atoms, rare_settings
from toymodels.studies.sae.instances import InstanceSpec, dict_size, instance_specs
from toymodels.studies.sae.metrics import mmcs, reconstruction_stats
from toymodels.studies.sae.resampling import select_inputs
from toymodels.training import TensorState, TrainConfig, TrainResult, step_generator, train

LOG_PREFIX = "log/"


def init_seeds(params: Mapping[str, Any], specs: list[InstanceSpec]) -> list[int]:
    """The seed of each instance's initialisation: from the dataset, M, the init sample size, the init, the rare
    ratio and the seed index only (not from alpha, resampling or the optimiser settings), so runs that differ
    only in training settings start from identical weights and are compared pairwise, across cells too."""
    base = {**data_identity(params), "dict_ratio": params["dict_ratio"], "init_sample_size": params["init_sample_size"]}
    return [derive_seed("sae", "init", base, spec.init, spec.rare_ratio, spec.seed) for spec in specs]


def stream_seeds(params: Mapping[str, Any]) -> list[int]:
    """The batch stream of each seed index depends only on the data keys and the index, so every cell on the
    same dataset (any init, alpha, M or resampling) sees the same batches for the same seed index."""
    data = data_identity(params)
    return [derive_seed("sae", "stream", data, index) for index in range(int(params["n_seeds"]))]


ENCODER_INITS = ("tied", "linear")


def initial_encoder(kind: str, W_dec: torch.Tensor, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """W_enc [I, M, d] and b_enc [I, M] for decoder atoms W_dec [I, M, d].

    ``tied``: W_enc = W_dec (the encoder starts as the decoder's transpose), b_enc = 0. ``linear``: the default
    initialisation of ``torch.nn.Linear(d, M)``, as the replication (HoagyC/sparse_coding) leaves its encoder:
    weights and bias U(-1/sqrt(d), 1/sqrt(d)), drawn from each instance's init seed.
    """
    if kind == "tied":
        return W_dec.clone(), torch.zeros(W_dec.shape[:2], device=W_dec.device)
    if kind != "linear":
        raise ValueError(f"encoder_init must be one of {ENCODER_INITS}, got {kind!r}")
    n_atoms, d = W_dec.shape[1:]
    bound = d**-0.5
    weights, biases = [], []
    for seed in seeds:
        generator = torch.Generator().manual_seed(derive_seed(seed, "encoder"))
        weights.append(torch.rand(n_atoms, d, generator=generator) * (2 * bound) - bound)
        biases.append(torch.rand(n_atoms, generator=generator) * (2 * bound) - bound)
    return torch.stack(weights).to(W_dec.device), torch.stack(biases).to(W_dec.device)


def initial_model(params: Mapping[str, Any], specs: list[InstanceSpec], stream: Stream) -> dict[str, torch.Tensor]:
    """W_dec [I, M, d] from each instance's initialisation, the encoder from ``encoder_init``
    (:func:`initial_encoder`). Data-based inits of one seed index share one input sample."""
    n_atoms, device = dict_size(params), stream.features.device
    samples: dict[int, InitSample] = {}
    atoms = []
    seeds = init_seeds(params, specs)
    settings = rare_settings(params)
    for spec, seed in zip(specs, seeds):
        if spec.seed not in samples:
            generator = torch.Generator(device=device).manual_seed(
                derive_seed("sae", "init_sample", data_identity(params), spec.seed))
            x = stream.sample(int(params["init_sample_size"]), generator).cpu()
            samples[spec.seed] = InitSample(x[x.norm(dim=1) > 0])  # an empty input (activations data) is no direction
        generator = torch.Generator().manual_seed(seed)
        atoms.append(decoder_atoms(spec.init, samples[spec.seed], n_atoms, spec.rare_ratio, generator, settings))
    W_dec = torch.stack(atoms).to(device)
    W_enc, b_enc = initial_encoder(str(params["encoder_init"]), W_dec, seeds)
    return {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec}


def loss_and_grads(model: Mapping[str, torch.Tensor], x: torch.Tensor,
                   alpha: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Per-instance loss [I], its exact gradients and which latents fired [I, M], for inputs x [I, B, d] and
    L1 coefficients alpha [I].

    With r = x_hat - x and g = dL/dx_hat = 2 r / (B d): dL/dW_dec = c^T g; dL/dc = g W_dec^T + alpha / B;
    dL/dpre = dL/dc [c > 0]; dL/dW_enc = (dL/dpre)^T x; dL/db_enc = sum_b dL/dpre. The decoder gradient is
    projected onto the tangent space of the unit sphere of each atom (its radial part removed), as the atoms
    are renormalised after every update.

    Five batched matrix products and as few passes over the [I, B, M] codes as they allow: the ReLU in place,
    alpha / B added inside the dL/dc product, the ReLU's mask applied by its fused backward kernel (no boolean
    tensor), and a latent fired when its largest code is positive.
    """
    W_enc, b_enc, W_dec = model["W_enc"], model["b_enc"], model["W_dec"]
    batch, d = x.shape[1], x.shape[2]
    codes = torch.baddbmm(b_enc[:, None, :], x, W_enc.transpose(1, 2)).clamp_(min=0)
    residual = torch.bmm(codes, W_dec).sub_(x)
    losses = residual.square().sum(dim=(1, 2)) / (batch * d) + alpha * codes.sum(dim=(1, 2)) / batch
    grad_out = residual.mul_(2.0 / (batch * d))
    grad_dec = torch.bmm(codes.transpose(1, 2), grad_out)
    grad_dec -= (grad_dec * W_dec).sum(-1, keepdim=True) * W_dec
    l1_grad = (alpha / batch)[:, None, None].expand(-1, 1, W_dec.shape[1])
    grad_codes = torch.baddbmm(l1_grad, grad_out, W_dec.transpose(1, 2))
    grad_pre = torch.ops.aten.threshold_backward(grad_codes, codes, 0.0)
    grads = {"W_enc": torch.bmm(grad_pre.transpose(1, 2), x), "b_enc": grad_pre.sum(dim=1), "W_dec": grad_dec}
    return losses, grads, codes.amax(dim=1) > 0


def normalise_atoms(W_dec: torch.Tensor) -> None:
    """Rescale every decoder atom to unit norm, in place."""
    W_dec.div_(W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def resample_dead(model: Mapping[str, torch.Tensor], optimizer: InstanceOptimizer, dead: torch.Tensor,
                  x: torch.Tensor, encoder_scale: float, generator: torch.Generator, method: str = "loss_squared",
                  pool: int = 1024, clusters: int = 32) -> torch.Tensor:
    """Re-initialise the dead latents [I, M] (Anthropic, "Towards Monosemanticity", 2023), in place.

    For each instance, the inputs x [n, d] are scored by their reconstruction loss ||x - x_hat||^2 and ``method``
    picks one per dead latent (:func:`toymodels.studies.sae.resampling.select_inputs`: drawn with probability
    proportional to loss^2, the worst k, or from the worst clusters of the ``pool`` worst); a dead latent gets
    decoder atom x / ||x||, encoder row x / ||x|| * encoder_scale * (mean encoder-row norm of the live latents),
    encoder bias 0, and its Adam moments (``exp_avg``, ``exp_avg_sq`` of all three parameters) are zeroed. An
    instance whose inputs all reconstruct exactly is left alone. Returns the count per instance.
    """
    W_enc, b_enc, W_dec = model["W_enc"], model["b_enc"], model["W_dec"]
    changed = torch.zeros_like(dead)
    with torch.no_grad():
        directions = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        for index in torch.nonzero(dead.any(dim=1)).flatten().tolist():
            rows = torch.nonzero(dead[index]).flatten()
            codes = torch.relu(x @ W_enc[index].T + b_enc[index])
            losses = (codes @ W_dec[index] - x).pow(2).sum(-1)
            if not bool((losses > 0).any()):
                continue
            chosen = select_inputs(method, x, losses, len(rows), generator, pool, clusters)
            alive = ~dead[index]
            scale = W_enc[index, alive].norm(dim=-1).mean() if bool(alive.any()) else 1.0
            W_dec[index, rows] = directions[chosen]
            W_enc[index, rows] = directions[chosen] * encoder_scale * scale
            b_enc[index, rows] = 0.0
            changed[index, rows] = True
        for name in ("W_enc", "b_enc", "W_dec"):
            state = optimizer.state.get(model[name], {})
            for slot in ("exp_avg", "exp_avg_sq"):
                if slot in state:
                    state[slot][changed] = 0.0
    return changed.sum(dim=1)


def train_model(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int] | None = None,
                device: torch.device | str = "cpu", resume_path: str | Path | None = None,
                progress: bool = True) -> TrainResult:
    """Train every instance on fresh batches (one stream per seed index), logging MMCS every ``trace_every``
    steps, history metrics at log-spaced steps, and resampling dead latents when ``resample`` is on. The MMCS trace,
    the step each latent last fired and the resample counts are hook state in the loop's snapshot, so a resumed run
    gives the same numbers.

    The cell's ``seeds`` are not used: initialisations are seeded from the dataset, M, the init and the seed index
    only (``init_seeds``), so cells that differ in training settings (alpha, resampling, steps) start from the same
    weights and compare pairwise.

    The returned parameters hold the final weights plus ``log/trace_steps`` [K], ``log/trace_mmcs`` [I, K]
    and ``log/resampled`` [I] (latents re-initialised in total). The history's ``seed`` is the seed index
    within the instance's initialisation; ``instance`` is the position on the instance axis.
    """
    specs = instance_specs(params)
    stream = make_stream({name: tensor.to(device) for name, tensor in data.items()}, params)
    device = stream.features.device
    model = initial_model(params, specs, stream)
    streams = stream_seeds(params)
    n_variants = len(specs) // len(streams)
    alpha = torch.tensor([spec.alpha for spec in specs], device=device)
    batch, steps = int(params["batch_size"]), int(params["steps"])
    every, window = int(params["resample_every"]), int(params["resample_window"])
    resample_steps = set(range(every, steps - every + 1, every)) if params["resample"] else set()
    trace_every = int(params["trace_every"])
    trace_steps = sorted(set(range(0, steps + 1, trace_every)) | {steps})
    trace = torch.full((len(specs), len(trace_steps)), float("nan"))
    trace_column = {step: column for column, step in enumerate(trace_steps)}
    trace[:, 0] = mmcs(stream.features, model["W_dec"]).cpu()
    last_fired = torch.zeros(model["b_enc"].shape, dtype=torch.long, device=device)  # every window starts at step 0
    resampled = torch.zeros(len(specs), dtype=torch.long, device=device)
    holder: dict[str, InstanceOptimizer] = {}

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            x = torch.stack([stream.sample(batch, step_generator(seed, step, device)) for seed in streams])
            losses, grads, fired = loss_and_grads(model, x.repeat(n_variants, 1, 1), alpha)
            last_fired[fired] = step
            return losses, grads

    def after_step(step: int) -> None:
        updates = step + 1
        normalise_atoms(model["W_dec"])
        if updates in resample_steps:
            generator = step_generator(derive_seed(streams, "resample"), updates, device)
            dead = updates - 1 - last_fired >= window
            resampled.add_(resample_dead(model, holder["optimizer"], dead, stream.sample(int(params["resample_samples"]), generator),
                                         float(params["resample_encoder_scale"]), generator, str(params["resample_method"]),
                                         int(params["resample_pool"]), int(params["resample_clusters"])))
        if updates in trace_column:
            trace[:, trace_column[updates]] = mmcs(stream.features, model["W_dec"]).cpu()

    @torch.no_grad()
    def record(current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stats = reconstruction_stats(current["W_enc"], current["b_enc"], current["W_dec"], data["eval_x"])
        return {"mmcs": mmcs(stream.features, current["W_dec"]), "l0": stats["l0"], "fve": stats["fve"],
                "dead_fraction": stats["dead_fraction"]}

    result = train(model, loss_fn, TrainConfig.from_params(params, progress=progress), init_seeds(params, specs),
                   after_step=after_step, record=record, optimizer_ready=lambda optimizer: holder.update(optimizer=optimizer),
                   state={"sae": TensorState({"trace": trace, "last_fired": last_fired, "resampled": resampled})},
                   resume_path=resume_path, fingerprint=dict(params),
                   description=f"sae d={params['d']} N={params['n_features']} M={model['W_dec'].shape[1]} I={len(specs)}")
    result.params.update({f"{LOG_PREFIX}trace_steps": torch.tensor(trace_steps), f"{LOG_PREFIX}trace_mmcs": trace,
                          f"{LOG_PREFIX}resampled": resampled.cpu()})
    result.history = label_instances(result.history.rename(columns={"seed": "instance"}), specs)
    return result


def label_instances(table: pd.DataFrame, specs: list[InstanceSpec]) -> pd.DataFrame:
    """Add ``init``, ``rare_ratio``, ``alpha`` and ``seed`` (seed index) to a table with an ``instance`` column."""
    labels = pd.DataFrame({"instance": range(len(specs)), "init": [s.init for s in specs],
                           "rare_ratio": pd.array([s.rare_ratio for s in specs], dtype="Float64"),
                           "alpha": [s.alpha for s in specs], "seed": [s.seed for s in specs]})
    return labels.merge(table, on="instance", how="right")
