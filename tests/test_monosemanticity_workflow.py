"""End to end: the tiny monosemanticity block renders every figure of the study, and bad values are rejected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def tiny_config(tmp_path: Path, **overrides) -> Path:
    block = yaml.safe_load((ROOT / "config/blocks/monosemanticity.tiny.yaml").read_text())
    block["monosemanticity"]["defaults"].update(overrides)
    path = tmp_path / "mono.yaml"
    path.write_text(yaml.safe_dump({"device": "cpu", "threads": 1, "studies": block}))
    return path


def snakemake(config: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", str(config), "--directory", str(workdir),
                           "-s", str(ROOT / "Snakefile"), *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.workflow
def test_bad_hyperparameters_are_rejected(tmp_path):
    result = snakemake(tiny_config(tmp_path, optimizer="sgd", eps=1.5), tmp_path / "run", "figures", "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "defaults.optimizer: 'sgd' is not allowed; allowed values: ['lamb', 'adamw']" in output
    assert "defaults.eps: 1.5 is greater than the maximum of 1" in output


@pytest.mark.workflow
@pytest.mark.slow
def test_tiny_run_renders_every_figure(tmp_path):
    config = tiny_config(tmp_path)
    workdir = tmp_path / "run"
    result = snakemake(config, workdir, "figures")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = yaml.safe_load(config.read_text())["studies"]["monosemanticity"]["figures"]
    for name in figures:
        assert (workdir / "results/figures" / f"{name}.png").stat().st_size > 10_000
        record = json.loads((workdir / "results/figures" / f"{name}.json").read_text())
        assert record["caption"].strip()
    import pandas as pd

    instances = pd.read_parquet(workdir / "results/monosemanticity/learning_rate/instances.parquet")
    assert len(instances) == 8 * 2 and instances["mono_fraction_features"].between(0, 1).all()
    history = pd.read_parquet(workdir / "results/monosemanticity/learning_rate/history.parquet")
    assert {"step", "loss", "mono_fraction_features", "mean_bias"} <= set(history.columns)
    lottery = pd.read_parquet(workdir / "results/monosemanticity/lottery/trajectory.parquet")
    assert sorted(lottery["round"].unique()) == [0, 1, 2]
    ends = lottery.groupby(["pruning", "bias_offset", "seed", "round"])["weight_fraction"].min().unstack("round")
    assert ((ends[2] / ends[0]).round(2) == 0.64).all()      # two rounds of 20%: 0.8^2 of the weights remain
    assert snakemake(config, workdir, "figures", "-n").stdout.count("Nothing to be done") == 1
