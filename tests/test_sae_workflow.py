"""The SAE blocks of the shipped configs: valid, bad values rejected with the allowed values, and the
study's tables in the shared quick end-to-end run."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import ROOT
from toymodels.config import ConfigError, load_config_file, load_schema, validate_config
from toymodels.studies import load_study

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
PLOTS = {"sae": load_study("sae").PLOTS}
CONFIGS = {"quick": ROOT / "config" / "quick.yaml", "default": ROOT / "config" / "config.yaml",
           "paper": ROOT / "config" / "paper.yaml"}


def block_config(which: str) -> dict:
    """The SAE block of a shipped config, alone."""
    config = load_config_file(CONFIGS[which])
    return {"device": config.get("device", "auto"), "threads": 1, "studies": {"sae": config["studies"]["sae"]}}


@pytest.mark.parametrize("which", ["quick", "default", "paper"])
def test_blocks_are_valid(which):
    validate_config(block_config(which), SCHEMA, PLOTS)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("inits", ["orthogonal", "kaiming"], r"defaults.inits\[1\]: 'kaiming' is not allowed; allowed values: "
                                         r"\['xavier', 'orthogonal', 'data', 'svd', 'rare_mean', 'rare_centroid', 'rare_outlier', "
                                         r"'rare_ward', 'rare_isolation'\]"),
    ("correlation", "per_epoch", r"defaults.correlation: 'per_epoch' is not allowed; allowed values: \['per_sample', 'per_batch'\]"),
    ("rare_ratios", [0.0], r"defaults.rare_ratios\[0\]: 0.0 is less than or equal to the minimum of 0"),
    ("rare_ratios", [1.5], r"defaults.rare_ratios\[0\]: 1.5 is greater than the maximum of 1"),
    ("alphas", [], r"defaults.alphas: \[\] should be non-empty"),
    ("init_sample_size", 100, r"defaults.init_sample_size: 100 is less than the minimum of 252"),
    ("prob_decay", 1.2, r"defaults.prob_decay: 1.2 is greater than the maximum of 1"),
    ("resample_method", "worst", r"defaults.resample_method: 'worst' is not allowed; allowed values: "
                                 r"\['loss_squared', 'top_k', 'cluster'\]"),
    ("resample_clusters", 0, r"defaults.resample_clusters: 0 is less than the minimum of 1"),
    ("centroid_clusters", 0, r"defaults.centroid_clusters: 0 is less than the minimum of 1"),
    ("lof_neighbors", 2.5, r"defaults.lof_neighbors: 2.5 is not of type 'integer'"),
])
def test_bad_values_are_rejected_with_what_is_allowed(key, value, message):
    config = block_config("quick")
    config["studies"]["sae"]["defaults"][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA, PLOTS)


@pytest.mark.workflow
def test_tables_of_the_quick_run(quick_run):
    results = quick_run / "results" / "sae"
    instances = pd.read_parquet(results / "inits" / "instances.parquet")
    assert {"scenario", "d", "n_features", "init", "rare_ratio", "seed", "mmcs_initial", "mmcs_final",
            "steps_to_0.95", "steps_to_0.98", "steps_to_0.99"} <= set(instances.columns)
    assert len(instances) == 2 * 7 * 2  # two scenarios, seven inits (one rare ratio), two seeds
    assert instances["mmcs_initial"].between(-1, 1).all()
    history = pd.read_parquet(results / "inits" / "history.parquet")
    assert {"step", "mmcs", "l0", "fve", "dead_fraction"} <= set(history.columns)
    resampled = pd.read_parquet(results / "resampling" / "instances.parquet").groupby("resample")["resampled"].sum()
    assert resampled[False] == 0 and resampled[True] > 0
    methods = pd.read_parquet(results / "resample_methods" / "instances.parquet")
    assert sorted(methods["resample_method"].unique()) == ["cluster", "loss_squared", "top_k"]
    assert (methods["resampled"] > 0).all()
    atoms = pd.read_parquet(results / "alpha_dict" / "atoms.parquet")
    assert len(atoms) == 3 * (16 + 64)  # three alphas, M = 16 and 64 (M/N 0.5 and 2 of N = 32)
    assert atoms["direction"].map(len).eq(16).all()
