"""Training-step throughput: toymodels' batched instance loop against a naive per-model PyTorch loop.

    .venv/bin/python benchmarks/bench_training.py [--threads 1] [--steps 30]

Prints a Markdown table (model-steps per second, speed-up, memory-bandwidth bound) for the
double-descent model at N = 1000, T = 1000, m = 2 with 8 seeds, full batch.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from typing import Callable

import torch

from toymodels.optimizers import make_optimizer
from toymodels.studies.double_descent.data import sample_features
from toymodels.studies.double_descent.model import init_params, loss_and_grads, prepare_samples, step_chunk

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def seconds_per_call(step: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def memory_bandwidth(megabytes: int = 256) -> float:
    """Bytes per second of a large tensor copy (read + write), the machine's practical bandwidth."""
    source = torch.ones(megabytes * 2**18)
    target = torch.empty_like(source)
    return 2 * source.numel() * 4 / seconds_per_call(lambda: target.copy_(source), 5)


def double_descent_naive(x: torch.Tensor, seeds: list[int], m: int) -> Callable[[], None]:
    """One model after another: autograd and torch.optim.AdamW, as a notebook would do it."""
    models = []
    for seed in seeds:
        params = init_params(m, x.shape[1], [seed])
        W = params["W"][0].clone().requires_grad_()
        b = params["b"][0].clone().requires_grad_()
        models.append((W, b, torch.optim.AdamW([W, b], lr=1e-3, weight_decay=1e-2)))

    def step() -> None:
        for W, b, optimizer in models:
            out = torch.relu((x @ W.T) @ W + b)
            loss = ((out - x) ** 2).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return step


def double_descent_batched(x: torch.Tensor, seeds: list[int], m: int) -> Callable[[], None]:
    """All seeds as one instance axis, hand-derived gradients, one foreach AdamW step (toymodels' path)."""
    params = init_params(m, x.shape[1], seeds)
    optimizer = make_optimizer("adamw", params, 1e-3, 1e-2)
    samples = prepare_samples(x, step_chunk(len(seeds), x.shape[1]))

    def step() -> None:
        _, grads = loss_and_grads(params["W"], params["b"], samples)
        for name, p in params.items():
            p.grad = grads[name]
        optimizer.step()

    return step


def double_descent_bound(n_instances: int, samples: int, features: int, m: int, bandwidth: float) -> float:
    """Seconds per step if only unavoidable traffic moved at full bandwidth.

    Without a fused kernel the [I, T, N] activation must be written once and read once (8 bytes per element);
    x is read once (dense [T, N]); parameters, gradients and the two AdamW moments are read and written.
    """
    intermediate = 8 * n_instances * samples * features
    data = 4 * samples * features
    optimizer_state = 4 * 2 * 4 * n_instances * (m + 1) * features
    return (intermediate + data + optimizer_state) / bandwidth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_features, samples, m, seeds = 1000, 1000, 2, list(range(8))
    x = sample_features(samples, n_features, 0.99, torch.Generator().manual_seed(0))
    bandwidth = memory_bandwidth()
    naive = seconds_per_call(double_descent_naive(x, seeds, m), args.steps)
    batched = seconds_per_call(double_descent_batched(x, seeds, m), args.steps)
    bound = double_descent_bound(len(seeds), samples, n_features, m, bandwidth)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    print("| model | naive model-steps/s | batched model-steps/s | speed-up | bound model-steps/s | batched / bound time |")
    print("|---|---|---|---|---|---|")
    print(f"| double descent N=1000 T=1000 m=2 x8 | {len(seeds) / naive:.1f} | {len(seeds) / batched:.1f} | "
          f"{naive / batched:.1f}x | {len(seeds) / bound:.1f} | {batched / bound:.1f}x |")


if __name__ == "__main__":
    main()
