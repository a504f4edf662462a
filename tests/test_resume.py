"""Exact resume, study by study: a run stopped right after one of its snapshots and rerun gives the tensors and tables
of a run that was never stopped (hook state, masks, lottery rounds and connectivity's stages included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from toymodels.config import load_config_file
from toymodels.grid import Cell, study_cells
from toymodels.studies import load_study
from toymodels.training import TrainResult, _ResumeState

QUICK = load_config_file(ROOT / "config" / "quick.yaml")


def quick_cell(study: str, grid: str, **where) -> Cell:
    """The first cell of a grid of config/quick.yaml with the given values."""
    cells = study_cells(study, QUICK["studies"][study])
    return next(c for (g, _), c in cells.items() if g == grid and all(c.params[k] == v for k, v in where.items()))


def synthetic_bundle() -> dict[str, torch.Tensor]:
    """A connectivity bundle of four random one-hidden-layer models (final, init and two checkpoints) on one random
    data split."""
    g = torch.Generator().manual_seed(0)
    k, d, n = 8, 4, 16
    tensors, models = {}, []
    for j in range(4):
        for which in ("model", "init", "step=0", "step=40"):
            tensors.update({f"{which}/{j}/W1": torch.randn(k, d, generator=g), f"{which}/{j}/b1": torch.randn(k, generator=g),
                            f"{which}/{j}/W2": torch.randn(n, k, generator=g)})
        models.append({"model": "m", "seed": j, "dataset": 0, "cell": f"c{j}",
                       "params": {"nonlinearity": "relu", "hidden_layers": 1, "frequencies": "uniform", "lr": 0.01},
                       "instance": {"mono_fraction_features": j / 4, "loss": 1.0}})
    for name, size in (("train", 64), ("stitch", 128), ("test", 64)):
        tensors[f"split/0/{name}_x"] = torch.randn(size, d, generator=g)
        tensors[f"split/0/{name}_y"] = torch.randn(size, n, generator=g)
    tensors["split/0/P"] = torch.randn(d, n, generator=g)
    tensors["index"] = torch.tensor(list(json.dumps({"source": "monosemanticity", "models": models}).encode()), dtype=torch.uint8)
    return tensors


def assert_same_result(a: TrainResult, b: TrainResult) -> None:
    assert a.params.keys() == b.params.keys()
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)
    assert a.checkpoints.keys() == b.checkpoints.keys()
    for step, tensors in a.checkpoints.items():
        assert all(torch.equal(t, b.checkpoints[step][n]) for n, t in tensors.items()), step
    assert a.history.equals(b.history)


# (cell, the snapshot after which the first run stops): snapshots are written after every update here
CASES = {
    "double_descent": (quick_cell("double_descent", "dataset_size", m=2, T=20), 31),
    "double_descent_infinite": (quick_cell("double_descent", "infinite_pentagon", sparsity=0.9), 31),  # fresh batches
    "monosemanticity": (quick_cell("monosemanticity", "learning_rate", frequencies="uniform", bias_offset=-1.0), 20),
    "monosemanticity_fixed_mask": (quick_cell("monosemanticity", "sparse", mask="fixed"), 20),
    "monosemanticity_prune_grow": (quick_cell("monosemanticity", "sparse", mask="prune_grow"), 20),  # regrows at 8, 16, ...
    "lottery_dense_after_rewind": (quick_cell("monosemanticity", "lottery", pruning="imp"), 10),  # rewind step 4 of 32
    "lottery_second_round": (quick_cell("monosemanticity", "lottery", pruning="imp"), 32 + 28 + 9),  # rounds of 28 updates
    "modular_addition": (quick_cell("modular_addition", "dimension", d=4), 150),
    "sae": (quick_cell("sae", "resampling", resample=True), 30),  # resamples after 20 and 40 updates
    # mono: stages stitch, curve; mono_training: along (10 minibatch updates), hop, settle, finetune (20 updates each)
    "connectivity": (quick_cell("connectivity", "mono_training"), 10 + 7),  # in the hop stage
    "connectivity_along": (quick_cell("connectivity", "mono_training"), 5),  # in the along stage (random minibatches)
    "connectivity_finetune": (quick_cell("connectivity", "mono_training"), 10 + 40 + 7),  # in the finetune stage
    "connectivity_curves": (quick_cell("connectivity", "mono"), 20 + 7),  # in the curve stage (random t and minibatches)
}


@pytest.mark.parametrize("case", CASES)
def test_a_run_stopped_at_a_snapshot_resumes_to_the_uninterrupted_result(case, tmp_path, monkeypatch, capsys):
    cell, stop_after = CASES[case]
    study = load_study(cell.study)
    data = synthetic_bundle() if cell.study == "connectivity" else study.make_dataset(cell.params)
    seeds = cell.instance_seeds(study.SEED_KEYS)

    def train(resume_path: Path | None) -> TrainResult:
        return study.train_model(dict(cell.params), data, seeds, "cpu", resume_path=resume_path)

    reference = train(None)
    monkeypatch.setenv("TOYMODELS_RESUME_EVERY_S", "0")
    state = tmp_path / "resume.safetensors"
    save, saved = _ResumeState.save, []

    def save_then_stop(self, *args) -> None:
        save(self, *args)
        saved.append(self.path)
        if len(saved) == stop_after:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_ResumeState, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train(state)
    assert saved[-1].exists()
    capsys.readouterr()
    resumed = train(state)
    assert "resumed from" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # every snapshot and stage file is gone once the run is done
    assert_same_result(resumed, reference)
    measured, expected = (study.measure_cell(cell.params, seeds, data, r.params, r.checkpoints) for r in (resumed, reference))
    assert measured.keys() == expected.keys()
    for name, table in expected.items():
        assert measured[name].equals(table), name
    if cell.study == "sae":
        assert int(reference.params["log/resampled"].sum()) > 0  # the stop fell between two resamplings that acted
