"""The SAE config blocks: bad values rejected with allowed values, the paper block dry-runs, the tiny block
renders every figure of the study end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from toymodels.config import ConfigError, load_schema, validate_config
from toymodels.studies import load_study

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
PLOTS = {"sae": load_study("sae").PLOTS}


def block_config(which: str, device: str = "cpu") -> dict:
    block = yaml.safe_load((ROOT / f"config/blocks/sae.{which}.yaml").read_text())
    return {"device": device, "threads": 1, "studies": block}


def snakemake(config: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "sae.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([SNAKEMAKE, "--cores", "2", "--configfile", str(path), "--directory", str(tmp_path / "run"),
                           "-s", str(ROOT / "Snakefile"), *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("which", ["tiny", "default", "paper"])
def test_blocks_are_valid(which):
    validate_config(block_config(which), SCHEMA, PLOTS)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("inits", ["orthogonal", "kaiming"], r"defaults.inits\[1\]: 'kaiming' is not allowed; allowed values: "
                                         r"\['xavier', 'orthogonal', 'data', 'svd', 'rare_mean', 'rare_centroid', 'rare_outlier'\]"),
    ("correlation", "per_epoch", r"defaults.correlation: 'per_epoch' is not allowed; allowed values: \['per_sample', 'per_batch'\]"),
    ("rare_ratios", [0.0], r"defaults.rare_ratios\[0\]: 0.0 is less than or equal to the minimum of 0"),
    ("rare_ratios", [1.5], r"defaults.rare_ratios\[0\]: 1.5 is greater than the maximum of 1"),
    ("alphas", [], r"defaults.alphas: \[\] should be non-empty"),
    ("init_sample_size", 100, r"defaults.init_sample_size: 100 is less than the minimum of 252"),
    ("prob_decay", 1.2, r"defaults.prob_decay: 1.2 is greater than the maximum of 1"),
])
def test_bad_values_are_rejected_with_what_is_allowed(key, value, message):
    config = block_config("tiny")
    config["studies"]["sae"]["defaults"][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, PLOTS)


@pytest.mark.workflow
def test_paper_block_dry_runs(tmp_path):
    result = snakemake(block_config("paper", device="auto"), tmp_path, "figures", "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_sae" in result.stdout


@pytest.mark.workflow
@pytest.mark.slow
def test_tiny_run_renders_every_figure(tmp_path):
    config = block_config("tiny")
    result = snakemake(config, tmp_path, "figures")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = tmp_path / "run" / "results" / "figures"
    for name in config["studies"]["sae"]["figures"]:
        assert (figures / f"{name}.png").stat().st_size > 10_000
        assert json.loads((figures / f"{name}.json").read_text())["caption"].strip()
    results = tmp_path / "run" / "results" / "sae"
    instances = pd.read_parquet(results / "inits" / "instances.parquet")
    assert {"scenario", "d", "n_features", "init", "rare_ratio", "seed", "mmcs_initial", "mmcs_final",
            "steps_to_0.95", "steps_to_0.98", "steps_to_0.99"} <= set(instances.columns)
    assert len(instances) == 2 * 7 * 2  # two scenarios, seven inits (one rare ratio), two seeds
    assert instances["mmcs_initial"].between(-1, 1).all()
    history = pd.read_parquet(results / "inits" / "history.parquet")
    assert {"step", "mmcs", "l0", "fve", "dead_fraction"} <= set(history.columns)
    resampled = pd.read_parquet(results / "resampling" / "instances.parquet").groupby("resample")["resampled"].sum()
    assert resampled[False] == 0 and resampled[True] > 0
