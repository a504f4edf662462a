"""Faults a long unattended run meets: a hard kill mid-training, NaN in one cell, a full disk, damaged artifacts."""

from __future__ import annotations

import base64
import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, SNAKEMAKE, cell_directory, run_snakemake
from toymodels.artifacts import save_tensors, write_json, write_table
from toymodels.config import load_config_file

pytestmark = pytest.mark.workflow


def double_descent_config(grids: dict, **defaults) -> dict:
    """The quick config's double-descent block with other grids and figures."""
    config = copy.deepcopy(load_config_file(ROOT / "config" / "quick.yaml"))
    block = config["studies"]["double_descent"]
    block["defaults"].update(defaults)
    block["grids"] = grids
    block["figures"] = {"double_descent_heatmap": {"plot": "heatmap", "grids": {"sweep": "dataset_size"}}}
    config["studies"] = {"double_descent": block}
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def incomplete_outputs(workdir: Path) -> set[Path]:
    """Outputs of jobs Snakemake had started but not finished (its markers in .snakemake/incomplete)."""
    root = workdir / ".snakemake" / "incomplete"
    paths = set()
    for marker in root.rglob("*"):
        if marker.is_file() and marker.name != "migration_underway":
            encoded = "".join(part.removeprefix("@") for part in marker.relative_to(root).parts)
            paths.add(workdir / base64.urlsafe_b64decode(encoded).decode())
    return paths


def snapshot(workdir: Path) -> dict[Path, tuple[bytes, int]]:
    """Bytes and mtime of every artifact of a finished job."""
    unfinished = incomplete_outputs(workdir)
    files = [p for p in (workdir / "results").rglob("*") if p.suffix in (".safetensors", ".parquet")
             and not p.name.startswith("resume-") and p not in unfinished]
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def test_hard_kill_mid_training_loses_nothing_and_resumes(tmp_path):
    # two quick cells and one long cell (~20 s of training on one core) that is killed after its first snapshot
    config = double_descent_config({"dataset_size": {"sweep": {"m": [2], "T": [4, 20, 400]}}},
                                   n_features=500, steps=3000, test_size=300)
    path = write_config(tmp_path / "kill.yaml", config)
    long_cell = cell_directory(tmp_path / "run", config, "double_descent", "dataset_size", "m=2/T=400")
    (tmp_path / "run").mkdir()
    env = {**os.environ, "TOYMODELS_RESUME_EVERY_S": "0.5"}
    command = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path / "run"), "--cores", "2",
               f"--configfile={path}"]
    quick_cell = cell_directory(tmp_path / "run", config, "double_descent", "dataset_size", "m=2/T=4")
    quick_model = quick_cell / "model.safetensors"
    quick_measured = quick_cell / "trajectory.parquet"  # written after the quick cell's training ended
    first_log = tmp_path / "interrupted-run.log"
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=first_log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (any(long_cell.glob("resume-*.safetensors")) and quick_measured.exists()):
        assert process.poll() is None, f"the run ended before the long cell was interrupted:\n{first_log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no snapshot appeared within 300 s"
        time.sleep(0.2)
    time.sleep(0.7)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = snapshot(tmp_path / "run")
    assert not (long_cell / "model.safetensors").exists()
    assert quick_model in finished

    run_snakemake(tmp_path / "run", "--unlock", f"--configfile={path}")
    run_snakemake(tmp_path / "run", "--cores", "1", f"--configfile={path}", timeout=600)
    after = snapshot(tmp_path / "run")
    for artifact, (content, mtime) in finished.items():
        assert after[artifact] == (content, mtime), f"{artifact} was rewritten after the kill"
    assert "resumed from" in (long_cell / "train.log").read_text()
    assert not any(long_cell.glob("resume-*.safetensors"))

    # the clean run starts every job in a fresh interpreter: the warm job server must not change a number
    (tmp_path / "clean").mkdir()
    run_snakemake(tmp_path / "clean", "--cores", "1", f"--configfile={path}", timeout=600, env={"TOYMODELS_FORKSERVER": "0"})
    for table in sorted((tmp_path / "clean" / "results").rglob("*.parquet")):
        twin = tmp_path / "run" / table.relative_to(tmp_path / "clean")
        assert table.read_bytes() == twin.read_bytes(), f"{table.name} differs from an uninterrupted run"
    figure = Path("results/figures/double_descent_heatmap.png")
    assert (tmp_path / "clean" / figure).read_bytes() == (tmp_path / "run" / figure).read_bytes()

    # a damaged artifact is named, with how to rebuild it
    model = long_cell / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-64])
    result = run_snakemake(tmp_path / "run", "--cores", "1", f"--configfile={path}", "-f",
                           str((long_cell / "instances.parquet").relative_to(tmp_path / "run")), check=False)
    assert result.returncode != 0
    log = (long_cell / "measure.log").read_text()
    assert "model.safetensors" in log and "rebuild" in log


def test_nan_fails_its_cell_and_keep_going_finishes_the_others(tmp_path):
    config = double_descent_config({"dataset_size": {"sweep": {"m": [2], "T": [10]}, "cases": [{"lr": 0.01}, {"lr": 1.0e30}]}})
    path = write_config(tmp_path / "nan.yaml", config)
    result = run_snakemake(tmp_path, "--cores", "2", "--keep-going", f"--configfile={path}", check=False)
    assert result.returncode != 0
    finite, diverging = (cell_directory(tmp_path, config, "double_descent", "dataset_size", f"m=2/T=10/lr={lr}")
                         for lr in ("0.01", "1e+30"))
    assert (finite / "instances.parquet").exists()
    assert not (diverging / "model.safetensors").exists()
    log = (diverging / "train.log").read_text()
    assert "non-finite loss at step 1 for instance(s) [0, 1]" in log and "seed [" in log


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to simulate a full disk")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_leaves_no_half_written_artifact(tiny_filesystem):
    big = pd.DataFrame({"x": range(200_000), "y": [f"row {i}" for i in range(200_000)]})
    with pytest.raises(OSError):
        write_table(tiny_filesystem / "table.parquet", big)
    with pytest.raises(Exception, match="No space left|os error 28"):
        save_tensors(tiny_filesystem / "model.safetensors", {"W": torch.randn(100_000)})
    with pytest.raises(OSError):
        write_json(tiny_filesystem / "figure.json", {"inputs": ["x" * 100] * 1000})
    assert list(tiny_filesystem.iterdir()) == []
