"""Training-step throughput: toymodels' batched instance loop against a naive per-model PyTorch loop.

    .venv/bin/python benchmarks/bench_training.py [--threads 1] [--steps 30]

Prints one Markdown table, one row per model, 8 instances each: model-steps per second of both paths, the
speed-up, and a flop / memory-bandwidth lower bound on the step time (see :func:`bound_seconds`):

- double descent, N = 1000, T = 1000, m = 2, full batch (hand-derived gradients);
- monosemanticity, N = 256, d = 32, k = 512, batch 256, decoder task, ReLU (hand-derived gradients);
- SAE, d = 128, batch 256, L1 penalty (hand-derived gradients): N = 256 features with M = 512 latents, and the
  default config's three scenarios at M = N (N = 256, 512, 1024).

The batched path is the pipeline's own step: the study's initialisation, data sampling and loss (and gradients),
with the optimiser built by ``make_optimizer`` from a ``TrainConfig``, and the per-update hooks, as
``toymodels.training.train`` runs them (its learning-rate schedule, history logging, checkpoints and NaN guard
are left out: they cost microseconds per step, or run only at log-spaced steps). The naive path is what a
notebook would write: one model after another, per-model tensors, autograd and ``torch.optim.AdamW`` (its
default single-tensor loop on CPU), on the same inputs (the package's samplers, same generators) from the same
initial weights. Before timing, the losses of both paths at step 0, and after one update, must agree within
:data:`LOSS_RTOL`, so both paths compute the same thing.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping

import torch

from toymodels.optimizers import decay_groups, make_optimizer
from toymodels.studies.double_descent import model as dd_model
from toymodels.studies.double_descent.data import sample_features
from toymodels.studies.monosemanticity import data as mono_data
from toymodels.studies.monosemanticity import fit as mono_fit
from toymodels.studies.monosemanticity import model as mono_model
from toymodels.studies.sae import data as sae_data
from toymodels.studies.sae import model as sae_model
from toymodels.training import TrainConfig, step_generator

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

N_INSTANCES = 8
LOSS_RTOL = 1e-5  # float32 sums of 10^4-10^6 terms in another order agree to ~2e-7 relative (measured)
CHECKED_STEPS = 2  # losses compared at step 0 (same weights, same inputs) and after one update

Tensors = dict[str, torch.Tensor]
StepFn = Callable[[], torch.Tensor]  # one update of every instance; returns the per-instance losses before it, [I]
GradFn = Callable[[int], tuple[torch.Tensor, Tensors]]  # step -> (per-instance losses [I], gradients)
ModelLoss = Callable[[Tensors, int, int], torch.Tensor]  # (one model's tensors, its index, step) -> scalar loss
Hook = Callable[[Tensors, int], None]  # (tensors, step) without grad after every update


@dataclass(frozen=True)
class Machine:
    """What the machine sustains with the benchmark's thread count."""

    bandwidth: float  # bytes per second of a large tensor copy (read + write)
    cache_bandwidth: float  # the same for a copy that stays in the last-level cache (4 MiB, the DD step's block)
    flop_rate: float  # float32 flop per second of a large square matmul


@dataclass(frozen=True)
class Work:
    """The least work of one step of all instances: flop of its matrix products, bytes it must move in memory, and
    bytes it must move through the cache (intermediates that a step materialises in cache-sized chunks)."""

    flops: float
    bytes: float
    cache_bytes: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """One table row: the two paths for the same model, instances and inputs."""

    label: str
    naive: StepFn
    batched: StepFn
    work: Work | None  # None: no honest bound (printed as n/a)


# --- measuring -------------------------------------------------------------------------------------------------

def seconds_per_call(step: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a tensor copy (read + write): 256 MiB is the machine's practical main-memory bandwidth."""
    source = torch.ones(megabytes * 2**18)
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / seconds_per_call(lambda: target.copy_(source), repeats)


def matmul_rate(size: int = 1024) -> float:
    """Float32 flop per second of a square matmul: about the most the BLAS sustains on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / seconds_per_call(lambda: a @ b, 5)


def bound_seconds(work: Work, machine: Machine) -> tuple[float, str]:
    """A lower bound on the step time and what sets it: max(flops / matmul rate, bytes / copy bandwidth,
    cache bytes / in-cache copy bandwidth).

    A roofline without the ridge: the step cannot run its matrix products faster than a large square float32
    matmul (the models' skinny products run slower, so the bound is optimistic), nor move the bytes it must
    move faster than a large copy. Element-wise work, random-number generation and the O(nnz) sparse parts
    are not counted, so the bound is loose where they matter.
    """
    times = {"flop": work.flops / machine.flop_rate, "memory": work.bytes / machine.bandwidth,
             "cache": work.cache_bytes / machine.cache_bandwidth}
    limit = max(times, key=times.get)
    return times[limit], limit


def optimizer_bytes(n_parameters: int) -> float:
    """Parameters, gradients and both AdamW moments, each read and written once per step (float32)."""
    return 4 * 2 * 4 * n_parameters


def check_losses(label: str, naive: StepFn, batched: StepFn) -> None:
    """Run both paths for :data:`CHECKED_STEPS` steps; their per-instance losses must agree within LOSS_RTOL."""
    for step in range(CHECKED_STEPS):
        torch.testing.assert_close(naive(), batched(), rtol=LOSS_RTOL, atol=0.0,
                                   msg=lambda error: f"{label}: the two paths disagree at step {step}: {error}")


def table_row(comparison: Comparison, machine: Machine, steps: int) -> str:
    """Check the two paths against each other, time them, and format the row."""
    check_losses(comparison.label, comparison.naive, comparison.batched)
    naive = seconds_per_call(comparison.naive, steps)
    batched = seconds_per_call(comparison.batched, steps)
    if comparison.work is None:
        bound_cells = "n/a | n/a"
    else:
        bound, limit = bound_seconds(comparison.work, machine)
        bound_cells = f"{N_INSTANCES / bound:.1f} ({limit}) | {batched / bound:.1f}x"
    return (f"| {comparison.label} | {N_INSTANCES / naive:.1f} | {N_INSTANCES / batched:.1f} | "
            f"{naive / batched:.1f}x | {bound_cells} |")


# --- the two training loops, shared by every model ------------------------------------------------------------

def pipeline_loop(model: Tensors, config: TrainConfig, grads_of: GradFn, after_update: Hook | None = None) -> StepFn:
    """The inner loop of ``toymodels.training.train``: every instance at once, one foreach AdamW step."""
    for tensor in model.values():
        tensor.requires_grad_(True)
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.weight_decay, config.no_decay, config.betas)
    step = 0

    def run() -> torch.Tensor:
        nonlocal step
        losses, grads = grads_of(step)
        for name, p in model.items():
            p.grad = grads[name]
        optimizer.step()
        if after_update is not None:
            with torch.no_grad():
                after_update(model, step)
        step += 1
        return losses.detach()

    return run


def notebook_loop(batched_init: Tensors, config: TrainConfig, loss: ModelLoss, after_update: Hook | None = None,
                  on_grad: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None) -> StepFn:
    """One model after another: its own leaf tensors (instance i of ``batched_init``), autograd, torch.optim.AdamW.

    ``on_grad[name](param, grad)`` rewrites a gradient through a tensor hook (the SAE's tangent projection).
    """
    models = []
    for index in range(N_INSTANCES):
        params = {name: tensor[index].detach().clone().requires_grad_() for name, tensor in batched_init.items()}
        for name, rewrite in (on_grad or {}).items():
            params[name].register_hook(lambda grad, p=params[name], rewrite=rewrite: rewrite(p.detach(), grad))
        groups = decay_groups(params, config.weight_decay, config.no_decay)
        optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
        models.append((params, optimizer))
    step = 0

    def run() -> torch.Tensor:
        nonlocal step
        losses = []
        for index, (params, optimizer) in enumerate(models):
            value = loss(params, index, step)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            if after_update is not None:
                with torch.no_grad():
                    after_update(params, step)
            losses.append(value.detach())
        step += 1
        return torch.stack(losses)

    return run


# --- double descent: N = 1000, T = 1000, m = 2, full batch ----------------------------------------------------

def double_descent(n_features: int = 1000, samples: int = 1000, m: int = 2) -> Comparison:
    """Hand-derived loss and gradients on the sparse training set (``double_descent.model.loss_and_grads``)."""
    x = sample_features(samples, n_features, 0.99, torch.Generator().manual_seed(0))
    seeds = list(range(N_INSTANCES))
    config = TrainConfig(steps=1, lr=1e-3, weight_decay=1e-2)

    batched_model = dd_model.init_params(m, n_features, seeds)
    prepared = dd_model.prepare_samples(x, dd_model.step_chunk(len(seeds), n_features))

    def grads_of(step: int) -> tuple[torch.Tensor, Tensors]:
        with torch.no_grad():
            return dd_model.loss_and_grads(batched_model["W"], batched_model["b"], prepared)

    def loss(params: Tensors, index: int, step: int) -> torch.Tensor:
        out = torch.relu((x @ params["W"].T) @ params["W"] + params["b"])
        return ((out - x) ** 2).sum(dim=1).mean()

    naive = notebook_loop(dd_model.init_params(m, n_features, seeds), config, loss)
    return Comparison(f"double descent N={n_features} T={samples} m={m} x{N_INSTANCES}", naive,
                      pipeline_loop(batched_model, config, grads_of), double_descent_work(x, m))


def double_descent_work(x: torch.Tensor, m: int) -> Work:
    """Flop: the three products with the dense [I, T, N] block ([h, 1][W; b], [h, 1]^T G, G W^T), 2 (3m + 2) I T N.
    Bytes: parameters and optimiser state, and x's non-zeros in both sparse layouts (12 bytes each). Cache bytes:
    the [I, T, N] block written once and read once (8 bytes per element), the least any step that materialises it
    can do; the step keeps it in the cache in ~4 MiB chunks, so its bandwidth is the in-cache copy rate."""
    samples, n_features = x.shape
    elements = N_INSTANCES * samples * n_features
    return Work(flops=2 * (3 * m + 2) * elements,
                bytes=optimizer_bytes(N_INSTANCES * (m + 1) * n_features) + 2 * 12 * int(x.count_nonzero()),
                cache_bytes=8 * elements)


# --- monosemanticity: N = 256, d = 32, k = 512, batch 256, decoder task, ReLU ---------------------------------

def monosemanticity_params(n_features: int = 256, d: int = 32, k: int = 512) -> dict[str, Any]:
    """A dense decoder-task cell with the config defaults (config/config.yaml) and the benchmark's sizes."""
    return dict(n_features=n_features, d=d, k=k, frequencies="uniform", eps=1 / 64, task="decoder", eval_size=1024,
                data_seed=0, nonlinearity="relu", batch_size=256, steps=2048, lr=1e-2, optimizer="adamw",
                weight_decay=0.0, bias_init="offset", bias_offset=0.0, bias_decay=0.0, l1=0.0, mask="dense")


def monosemanticity() -> Comparison:
    """``fit.run``'s step: ``Task.batches``, the hand-derived ``model.loss_and_grads``, bias decay.

    Both paths return the objective, task loss + L1 penalty (the pipeline logs the task loss alone; l1 = 0 here).
    """
    params = monosemanticity_params()
    task = mono_fit.Task(params, mono_data.make_dataset(params), "cpu")
    seeds = list(range(N_INSTANCES))
    config = TrainConfig.from_params(params, no_decay=("b1",))
    nonlinearity, l1 = str(params["nonlinearity"]), float(params["l1"])

    batched_model, _ = mono_fit.initial_model(params, task, seeds)

    def grads_of(step: int) -> tuple[torch.Tensor, Tensors]:
        x, target = task.batches(seeds, step)
        with torch.no_grad():
            loss, penalty, grads = mono_model.loss_and_grads(batched_model, x, target, nonlinearity, l1)
        return loss + penalty, grads

    def decay(model: Tensors, step: int) -> None:
        mono_model.decay_bias(model["b1"], step, config.steps, float(params["bias_decay"]), config.lr)

    def loss(model: Tensors, index: int, step: int) -> torch.Tensor:
        x, target = (t[0] for t in task.batches([seeds[index]], step))
        h = torch.relu(x @ model["W1"].T + model["b1"])
        out = h @ model["W2"].T
        return ((out - target) ** 2).sum(dim=1).mean() + l1 * h.abs().sum(dim=1).mean()

    naive = notebook_loop(mono_fit.initial_model(params, task, seeds)[0], config, loss)
    return Comparison(f"monosemanticity N={params['n_features']} d={params['d']} k={params['k']} "
                      f"B={params['batch_size']} x{N_INSTANCES}", naive,
                      pipeline_loop(batched_model, config, grads_of, decay), monosemanticity_work(params))


def monosemanticity_work(params: Mapping[str, Any]) -> Work:
    """Flop per instance: forward 2B(dk + kN), gradients of W2, h and W1 2B(2kN + dk), inputs x = v P^T 2BNd.
    Bytes: parameters and optimiser state (the batches are generated, not read)."""
    n, d, k, batch = (int(params[key]) for key in ("n_features", "d", "k", "batch_size"))
    return Work(flops=N_INSTANCES * 2 * batch * (2 * d * k + 3 * k * n + n * d),
                bytes=optimizer_bytes(N_INSTANCES * (k * d + k + n * k)))


# --- SAE: d = 128, batch 256, L1 penalty; N = 256 and M = 512, and M = N = 256, 512, 1024 -----------------------

SAE_SIZES = ((256, 2.0), (256, 1.0), (512, 1.0), (1024, 1.0))  # (N, M/N)


def sae_params(d: int = 128, n_features: int = 256, dict_ratio: float = 2.0) -> dict[str, Any]:
    """One orthogonal-init cell with 8 seeds (8 instances, 8 batch streams), config defaults otherwise."""
    return dict(d=d, n_features=n_features, active_features=5, prob_decay=0.99, correlation="per_sample", data_seed=0,
                eval_size=1024, dict_ratio=dict_ratio, inits=["orthogonal"], rare_ratios=[0.05], alphas=[4e-4],
                encoder_init="linear", init_sample_size=4096, n_seeds=N_INSTANCES, steps=1200, lr=1e-2,
                batch_size=256, schedule="constant")


def sae(n_features: int, dict_ratio: float) -> Comparison:
    """``sae.model.train_model``'s step: a batch per seed stream, ``loss_and_grads``, then unit-norm atoms."""
    params = sae_params(n_features=n_features, dict_ratio=dict_ratio)
    stream = sae_data.Stream(sae_data.make_dataset(params), params)
    specs = sae_model.instance_specs(params)
    streams = sae_model.stream_seeds(params)
    n_variants, batch = len(specs) // len(streams), int(params["batch_size"])
    alpha = torch.tensor([spec.alpha for spec in specs])
    config = TrainConfig.from_params(params)

    batched_model = sae_model.initial_model(params, specs, stream)

    def grads_of(step: int) -> tuple[torch.Tensor, Tensors]:
        with torch.no_grad():
            x = torch.stack([stream.sample(batch, step_generator(seed, step)) for seed in streams])
            losses, grads, _ = sae_model.loss_and_grads(batched_model, x.repeat(n_variants, 1, 1), alpha)
            return losses, grads

    def normalise(model: Tensors, step: int) -> None:
        sae_model.normalise_atoms(model["W_dec"])

    def loss(model: Tensors, index: int, step: int) -> torch.Tensor:
        x = stream.sample(batch, step_generator(streams[specs[index].seed], step))
        codes = torch.relu(x @ model["W_enc"].T + model["b_enc"])
        return ((codes @ model["W_dec"] - x) ** 2).mean() + specs[index].alpha * codes.abs().sum(dim=1).mean()

    def unit_atoms(model: Tensors, step: int) -> None:
        model["W_dec"] /= model["W_dec"].norm(dim=1, keepdim=True)

    def tangent(atoms: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad - (grad * atoms).sum(dim=1, keepdim=True) * atoms

    naive = notebook_loop(sae_model.initial_model(params, specs, stream), config, loss, unit_atoms, {"W_dec": tangent})
    m = sae_model.dict_size(params)
    return Comparison(f"SAE d={params['d']} N={params['n_features']} M={m} B={batch} x{N_INSTANCES}", naive,
                      pipeline_loop(batched_model, config, grads_of, normalise), sae_work(params, len(streams)))


def sae_work(params: Mapping[str, Any], n_streams: int) -> Work:
    """Flop per instance: encoder, decoder and the three gradient products, 10 B M d; per seed stream, the
    correlated draw z C^T and x = codes F, 2B(N^2 + N d). Bytes: parameters and optimiser state."""
    d, n, batch = (int(params[key]) for key in ("d", "n_features", "batch_size"))
    m = sae_model.dict_size(params)
    return Work(flops=N_INSTANCES * 10 * batch * m * d + n_streams * 2 * batch * (n * n + n * d),
                bytes=optimizer_bytes(N_INSTANCES * (2 * m * d + m)))


# --- the table ------------------------------------------------------------------------------------------------

MODELS: tuple[Callable[[], Comparison], ...] = (double_descent, monosemanticity,
                                                *(partial(sae, n, ratio) for n, ratio in SAE_SIZES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = Machine(bandwidth=memory_bandwidth(), cache_bandwidth=memory_bandwidth(megabytes=4, repeats=200),
                      flop_rate=matmul_rate())
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), copy bandwidth {machine.bandwidth / 1e9:.1f} GB/s (in cache "
          f"{machine.cache_bandwidth / 1e9:.1f} GB/s), matmul {machine.flop_rate / 1e9:.1f} Gflop/s")
    print("| model | naive model-steps/s | batched model-steps/s | speed-up | bound model-steps/s "
          "| batched / bound time |")
    print("|---|---|---|---|---|---|")
    for build in MODELS:
        print(table_row(build(), machine, args.steps), flush=True)


if __name__ == "__main__":
    main()
