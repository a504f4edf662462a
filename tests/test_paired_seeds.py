"""Paired seeds (grid.Cell.instance_seeds): cells of one sweep start from the same weights, and logging settings move
no measured number. Each trained study runs on its config/quick.yaml defaults, shortened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from toymodels.grid import grid_cells
from toymodels.studies import load_study
from toymodels.training import unflatten_checkpoints

ROOT = Path(__file__).resolve().parents[1]
QUICK = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())["studies"]
TRAINED = ("double_descent", "monosemanticity", "sae", "modular_addition")  # connectivity trains on other studies' models
STEPS = {"double_descent": 40, "monosemanticity": 32, "sae": 40, "modular_addition": 80}


def _params(study: str, **overrides: Any) -> dict[str, Any]:
    params = {**QUICK[study]["defaults"], "steps": STEPS[study], **overrides}
    if study == "modular_addition":
        params["early_steps"] = min(params["early_steps"], params["steps"])
    return params


def _train(study: str, params: dict[str, Any]) -> tuple[list[int], dict, Any]:
    """Seeds of the cell (from the study's seed keys, as the workflow derives them), its dataset, its training result."""
    module = load_study(study)
    seeds = grid_cells(study, "g", params, {})[0].instance_seeds(module.SEED_KEYS)
    data = module.make_dataset(params)
    return seeds, data, module.train_model(params, data, seeds, "cpu", resume_path=None)


@pytest.mark.parametrize("study", TRAINED)
def test_cells_that_differ_only_in_learning_rate_start_from_identical_weights(study: str) -> None:
    base = _params(study)
    slow, fast = (_train(study, {**base, "lr": base["lr"] * factor})[2] for factor in (1.0, 3.0))
    start_slow, start_fast = (unflatten_checkpoints(result.checkpoint_tensors())[0] for result in (slow, fast))
    assert start_slow.keys() == start_fast.keys()
    for name in start_slow:
        assert torch.equal(start_slow[name], start_fast[name]), name
    assert any(not torch.equal(slow.params[name], fast.params[name]) for name in slow.params)  # the lr took effect


def _on_common_steps(tables: dict[str, pd.DataFrame], other: dict[str, pd.DataFrame], name: str) -> tuple[pd.DataFrame, ...]:
    """Both versions of one table, restricted to the training steps both logged (all rows where it has no step)."""
    a, b = tables[name], other[name]
    if "step" in a.columns:
        common = set(a["step"]) & set(b["step"])
        a, b = a[a["step"].isin(common)], b[b["step"].isin(common)]
    return a.reset_index(drop=True), b.reset_index(drop=True)


@pytest.mark.parametrize("study", TRAINED)
def test_logging_settings_change_no_measured_number(study: str) -> None:
    base = _params(study)
    runs = []
    for factor in (1, 2):
        params = {**base, **{key: base[key] * factor for key in ("history_points", "checkpoint_points") if key in base}}
        seeds, data, result = _train(study, params)
        checkpoints = unflatten_checkpoints(result.checkpoint_tensors())
        tables = load_study(study).measure_cell(params, seeds, data, result.params, checkpoints)
        runs.append(({**tables, "history": result.history}, result.params))
    (tables, final), (more_tables, more_final) = runs
    for name in final:
        assert torch.equal(final[name], more_final[name]), name
    for name in tables:
        a, b = _on_common_steps(tables, more_tables, name)
        assert len(a) > 0 or len(tables[name]) == 0, name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{study} {name}")
