"""The monosemanticity study inside the quick end-to-end run, and its config checks through Snakemake."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from conftest import QUICK, run_snakemake
from toymodels.config import load_config_file

pytestmark = pytest.mark.workflow


def test_bad_hyperparameters_are_rejected(tmp_path):
    config = copy.deepcopy(load_config_file(QUICK))
    config["studies"] = {"monosemanticity": config["studies"]["monosemanticity"]}
    config["studies"]["monosemanticity"]["defaults"].update(optimizer="rmsprop", eps=1.5)
    path = tmp_path / "mono.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(tmp_path, "-n", "figures", f"--configfile={path}", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "defaults.optimizer: 'rmsprop' is not allowed; allowed values: ['lamb', 'adamw', 'sgd', 'sgd_momentum']" in output
    assert "defaults.eps: 1.5 is greater than the maximum of 1" in output


def test_tables_of_the_quick_run(quick_run):
    results = quick_run / "results" / "monosemanticity"
    instances = pd.read_parquet(results / "learning_rate" / "instances.parquet")
    assert len(instances) == 4 * 2 and instances["mono_fraction_features"].between(0, 1).all()
    history = pd.read_parquet(results / "learning_rate" / "history.parquet")
    assert {"step", "loss", "mono_fraction_features", "mean_bias"} <= set(history.columns)
    lottery = pd.read_parquet(results / "lottery" / "trajectory.parquet")
    assert sorted(lottery["round"].unique()) == [0, 1, 2]
    ends = lottery.groupby(["pruning", "bias_offset", "seed", "round"])["weight_fraction"].min().unstack("round")
    assert ((ends[2] / ends[0]).round(2) == 0.64).all()  # two rounds of 20%: 0.8^2 of the weights remain
