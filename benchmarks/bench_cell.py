"""Wall time of training one cell of the default config (a study's defaults), to compare two checkouts' code.

    PYTHONPATH=<checkout>/src .venv/bin/python benchmarks/bench_cell.py <study> [--steps N] [--repeats 2]

Builds the cell's dataset, then trains every seed of the cell on one CPU thread with that checkout's
``train_model`` (no snapshots) and prints one Markdown row per repeat: study, steps, seconds. Alternate two checkouts' runs on one machine:
the difference is the code's, not the day's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--steps", type=int, default=None, help="override the default cell's steps")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from toymodels.studies import load_study

    params = dict(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["studies"][args.study]["defaults"])
    if args.steps is not None:
        params["steps"] = args.steps
    module = load_study(args.study)
    data = module.make_dataset(params)
    seeds = list(range(11, 11 + int(params["n_seeds"])))
    for _ in range(args.repeats):
        start = time.perf_counter()
        module.train_model(params, data, seeds, "cpu", resume_path=None)
        print(f"| {args.study} | {params['steps']} steps | {time.perf_counter() - start:.2f} s |")


if __name__ == "__main__":
    main()
