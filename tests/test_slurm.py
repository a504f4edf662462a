"""Cluster submission on a real SLURM: start a one-node SLURM here (tests/slurm/start.sh), submit one figure
of the quick config through profiles/slurm with `device: cuda`, and check that its dataset, training and
measure jobs went through sbatch, that training jobs asked for a GPU, that the tables and the figure equal
a local run's, and that the daemons are gone afterwards.

Runs where it can install and start SLURM: Linux, root, apt-get (CI is such a machine). Skip it with
`pytest -m "not slurm"`. Every command runs under `timeout -k`: it never hangs. ~2-5 minutes on 2 cores.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from conftest import job_counts

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "config" / "quick.yaml"
PROFILE = ROOT / "profiles" / "slurm"
START, STOP = ROOT / "tests" / "slurm" / "start.sh", ROOT / "tests" / "slurm" / "stop.sh"
# One figure of the quick config, not all of them: its grid has 2 cells with a dataset each, so it sends
# dataset, training and measure jobs through sbatch, and its cost does not grow as studies are added.
STUDY, GRID, FIGURE = "double_descent", "repeated", "double_descent_repeated"
SLURM_DIR = Path(os.environ.get("TOYMODELS_SLURM_DIR", "/tmp/toymodels-slurm"))

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.workflow,
    pytest.mark.slow,
    pytest.mark.skipif(
        platform.system() != "Linux" or os.geteuid() != 0 or shutil.which("apt-get") is None,
        reason="needs Linux, root and apt-get to install and start SLURM (tests/slurm/start.sh)",
    ),
]


def bounded(command: list[str], seconds: int, **kwargs) -> subprocess.CompletedProcess:
    """Run `command` under `timeout -k` (the whole process tree is killed past `seconds`)."""
    return subprocess.run(["timeout", "-k", "15", str(seconds), *command], capture_output=True, text=True,
                          timeout=seconds + 30, **kwargs)


def snakemake_command(python: str, workdir: Path, *args: str) -> list[str]:
    return [python, "-m", "snakemake", FIGURE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args,
            "--config", "device=cuda", "--configfile", str(QUICK)]  # target first: these two take several values


def pids() -> dict[str, int]:
    files = {"slurmctld": SLURM_DIR / "run" / "slurmctld.pid", "slurmd": SLURM_DIR / "run" / "slurmd.pid"}
    if (SLURM_DIR / "run" / "munged.ours").exists():
        files["munged"] = Path("/run/munge/munged.pid")
    return {name: int(path.read_text()) for name, path in files.items() if path.exists()}


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def slurm():
    """A running one-node SLURM; stopped (and checked to be stopped) at teardown, also when start failed."""
    env = {**os.environ, "TOYMODELS_SLURM_DIR": str(SLURM_DIR)}
    started = time.monotonic()
    try:
        result = bounded(["bash", str(START)], 420, env=env)
        if result.returncode == 3:
            pytest.skip(f"this machine has a SLURM of its own: {result.stderr.strip()}")
        assert result.returncode == 0, f"start.sh failed:\n{result.stdout}\n{result.stderr}"
        print(f"\nSLURM started in {time.monotonic() - started:.1f} s")
        daemons = pids()
        assert {"slurmctld", "slurmd"} <= daemons.keys()
        yield {**env, "SLURM_CONF": str(SLURM_DIR / "slurm.conf")}
    finally:
        daemons = pids()
        stop = bounded(["bash", str(STOP)], 90, env=env)
        assert stop.returncode == 0, f"stop.sh failed:\n{stop.stdout}\n{stop.stderr}"
        alive = {name: pid for name, pid in daemons.items() if running(pid)}
        assert not alive, f"daemons still running after stop.sh: {alive}"
        assert not Path("/etc/slurm/slurm.conf").is_symlink(), "stop.sh left /etc/slurm/slurm.conf behind"


@pytest.fixture(scope="module")
def plugin_python(tmp_path_factory) -> str:
    """A Python with the `slurm` extra's pinned plugin on top of this environment: a venv whose .pth adds
    this environment's site-packages, so only the plugin (and its job-step sibling) is installed, never
    into the default environment (with the plugin and a slurm.conf present, every snakemake start waits)."""
    import site

    pin = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["slurm"]
    venv = tmp_path_factory.mktemp("slurm-extra")
    result = bounded([sys.executable, "-m", "venv", "--without-pip", str(venv)], 120)
    assert result.returncode == 0, result.stderr
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    (purelib / "_toymodels_base.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
    )
    python = str(venv / "bin" / "python")
    result = bounded([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pin], 300)
    assert result.returncode == 0, f"pip install {pin} failed:\n{result.stdout}\n{result.stderr}"
    check = bounded([python, "-c", "import snakemake_executor_plugin_slurm, toymodels, torch"], 120)
    assert check.returncode == 0, check.stderr
    return python


def test_quick_figure_through_slurm_matches_local_run(slurm, plugin_python, tmp_path):
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_dir.mkdir()
    slurm_dir.mkdir()
    env = {**slurm, "PYTHONHASHSEED": "0"}
    started = time.monotonic()
    # The local reference run shares the 2 cores with the SLURM jobs; the SLURM run mostly waits on polls.
    local = subprocess.Popen(
        ["timeout", "-k", "15", "600", *snakemake_command(sys.executable, local_dir, "--cores", "2")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    try:
        # Only what a laptop-sized SLURM needs on top of the profile: poll early, short latency wait, keep
        # the logs of successful jobs so the test can read them.
        cluster = bounded(
            snakemake_command(plugin_python, slurm_dir, "--workflow-profile", str(PROFILE),
                              "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5",
                              "--slurm-keep-successful-logs"),
            480, env=env,
        )
        slurm_seconds = time.monotonic() - started
    finally:
        local_output, _ = local.communicate(timeout=630)
    log = cluster.stdout + cluster.stderr
    assert cluster.returncode == 0, f"SLURM run failed ({cluster.returncode}):\n{log[-8000:]}"
    assert local.returncode == 0, f"local run failed ({local.returncode}):\n{local_output[-8000:]}"
    print(f"SLURM run {slurm_seconds:.1f} s; job counts {job_counts(log)}")

    # 1. Every non-local job went through sbatch: SLURM job ids in the log, and SLURM's own record of each.
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    records = {}
    for job_id in job_ids:
        shown = bounded(["scontrol", "show", "job", "--oneliner", job_id], 30, env=env)
        assert shown.returncode == 0, shown.stderr
        records[job_id] = dict(re.findall(r"(\w[\w/:]*)=(\S*)", shown.stdout))
    print({job_id: (r["Comment"], r.get("TresPerJob")) for job_id, r in records.items()})
    assert all(r["JobState"] == "COMPLETED" and r["ExitCode"] == "0:0" for r in records.values()), records
    comments = [r["Comment"] for r in records.values()]
    train_jobs = [r for r in records.values() if f"train_{STUDY}" in r["Comment"]]
    dataset_jobs = [r for r in records.values() if f"dataset_{STUDY}" in r["Comment"]]
    # 2 datasets, 2 cells; each cell's train and measure jobs share one SLURM job (group `cell`).
    assert len(dataset_jobs) == 2 and len(train_jobs) == 2, comments
    assert all(f"measure_{STUDY}" in r["Comment"] for r in train_jobs), "measure should run in its cell's job"
    assert len(job_ids) == 4, comments

    # 2. device: cuda -> resources gpu=1 -> sbatch --gpus=1 (the fake GRES); datasets ask for none.
    assert all(r.get("TresPerJob") == "gres:gpu:1" for r in train_jobs), train_jobs
    assert all("gpu" not in r.get("TresPerJob", "") for r in dataset_jobs), dataset_jobs
    for job_id in job_ids:  # SLURM's log of each job: the job ran Snakemake inside that allocation
        (slurm_log,) = (slurm_dir / ".snakemake" / "slurm_logs").rglob(f"{job_id}.log")
        assert "Finished jobid" in slurm_log.read_text()
    train_logs = list((slurm_dir / "results" / STUDY / "cells").rglob("train.log"))
    assert len(train_logs) == 2 and all("on cpu" in p.read_text() for p in train_logs)  # no CUDA here: cpu

    # 3. Same tables and figure as the local run.
    tables = sorted((local_dir / "results" / STUDY / GRID).glob("*.parquet"))
    assert len(tables) >= 2
    for table in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(slurm_dir / table.relative_to(local_dir)), pd.read_parquet(table))
    figure = Path("results") / "figures" / f"{FIGURE}.png"
    assert (slurm_dir / figure).read_bytes() == (local_dir / figure).read_bytes()
