"""Shared test fixtures: repository paths and a snakemake runner bound to this checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toymodels.grid import study_cells

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

torch.set_num_threads(1)


def run_snakemake(workdir: Path, *args: str, timeout: int = 900, check: bool = True,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this checkout's workflow with ``workdir`` as working directory (outputs land in workdir/results)."""
    command = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """Parse snakemake's job-stats table: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def cell_directory(workdir: Path, config: dict, study: str, grid: str, cell: str) -> Path:
    """Where a run in ``workdir`` keeps the artifacts of ``cell`` of ``grid``: its home under results/."""
    return workdir / "results" / study_cells(study, config["studies"][study])[(grid, cell)].directory


QUICK = ROOT / "config" / "quick.yaml"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """One end-to-end run of config/quick.yaml (every study, every figure), shared by the workflow tests."""
    workdir = tmp_path_factory.mktemp("quick")
    run_snakemake(workdir, "--cores", "2", f"--configfile={QUICK}", timeout=1800)
    return workdir
