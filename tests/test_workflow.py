"""The workflow as users drive it: dry runs of every shipped config, one quick end-to-end run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import QUICK, ROOT, job_counts, run_snakemake
from toymodels.artifacts import read_metadata, sha256_file
from toymodels.claims import COLUMNS, VERDICTS, study_claims
from toymodels.config import load_config_file
from toymodels.plotting import MIN_FONT_PT, TEXT_WIDTH_IN
from toymodels.provenance import CODE_KEY, LINEAGE_KEY
from toymodels.scorecard import summary
from toymodels.studies import load_study

pytestmark = pytest.mark.workflow
SHIPPED = ["config/config.yaml", "config/paper.yaml", "config/quick.yaml"]


def figure_names(config_path: Path) -> list[str]:
    config = load_config_file(config_path)
    return [name for study in config["studies"].values() for name in study.get("figures", {})]


@pytest.mark.parametrize("config", SHIPPED)
def test_dry_run_of_shipped_config(config, tmp_path):
    result = run_snakemake(tmp_path, "-n", "--cores", "2", f"--configfile={ROOT / config}", "figures", timeout=300)
    counts = job_counts(result.stdout)
    studies = load_config_file(ROOT / config)["studies"]
    for study in studies:
        assert counts[f"train_{study}"] > 0 and counts[f"measure_{study}"] == counts[f"train_{study}"]
    for name in figure_names(ROOT / config):
        assert counts[name] == 1
    assert counts["claims"] == 1


def test_every_figure_is_rendered_with_provenance(quick_run):
    for name in figure_names(QUICK):
        png, pdf, provenance = (quick_run / "results" / "figures" / f"{name}.{ext}" for ext in ("png", "pdf", "json"))
        assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000
        record = json.loads(provenance.read_text())
        assert record["figure"] == name and record["caption"].strip()
        assert record["code_version"]["toymodels"]
        assert record["inputs"], "a figure must name the artifacts it was drawn from"
        for entry in record["inputs"]:
            path = Path(entry["path"]) if Path(entry["path"]).is_absolute() else quick_run / entry["path"]
            assert sha256_file(path) == entry["sha256"]
        assert any(entry["path"].endswith(".parquet") for entry in record["inputs"])
        assert record["code_version"]["stage"] == "figures" and record["mixed_code_versions"] is False
        assert all(entry["code_version"]["stage"] == "collect" for entry in record["inputs"] if entry["path"].endswith(".parquet"))
        assert {"dataset", "train", "measure", "collect"} <= {v["stage"] for v in record["input_code_versions"]}


def test_every_figure_prints_at_the_text_width_with_readable_text_that_does_not_overlap(quick_run):
    for name in figure_names(QUICK):
        record = json.loads((quick_run / "results" / "figures" / f"{name}.json").read_text())
        layout = record["layout"]
        assert layout["width_in"] <= TEXT_WIDTH_IN + 0.25, f"{name} is wider than a page: {layout}"
        assert layout["smallest_font_pt"] >= MIN_FONT_PT, f"{name} has text too small to print: {layout}"
        assert layout["text_overlaps"] == [], f"{name} has overlapping text: {layout['text_overlaps']}"
        caption = (quick_run / "results" / "figures" / f"{name}.rst").read_text()
        assert caption.startswith(record["caption"].rstrip())
        assert f"**Provenance** (the full record: ``results/figures/{name}.json``)" in caption


def test_every_artifact_records_the_code_that_made_it(quick_run):
    """Each dataset, model, checkpoint and table names its stage's code version and those of what it was made from
    (nothing for a dataset, but connectivity's, built from other studies' models, and an SAE dataset of a
    monosemanticity model's activations)."""
    results = quick_run / "results"
    cell_stages = {"data.safetensors": "dataset", "model.safetensors": "train", "checkpoints.safetensors": "train",
                   "history.parquet": "train"}
    artifacts = [*results.rglob("*.safetensors"), *results.rglob("*.parquet")]
    assert len(artifacts) > 100
    for path in artifacts:
        parts = path.relative_to(results).parts
        stage = "claims" if parts == ("claims.parquet",) else "collect" if len(parts) == 3 else cell_stages.get(path.name, "measure")
        meta = read_metadata(path)
        assert meta[CODE_KEY]["stage"] == stage and meta[CODE_KEY]["git_commit"], path
        made_from_models = parts[0] == "connectivity" or "activations={" in str(path)
        assert bool(meta[LINEAGE_KEY]) == (stage != "dataset" or made_from_models), path


def test_claims_scorecard_judges_every_claim_with_provenance(quick_run):
    results = quick_run / "results"
    table = pd.read_parquet(results / "claims.parquet")
    assert list(table.columns) == list(COLUMNS) and set(table["verdict"]) <= set(VERDICTS)
    expected = [(study, c.id) for study in load_config_file(QUICK)["studies"] for c in study_claims(study)]
    assert list(zip(table["study"], table["id"], strict=True)) == expected and expected
    assert table[["measured", "statement", "criterion", "figure"]].map(len).gt(0).all().all()
    rows = table.to_dict("records")
    assert (results / "claims.md").read_text().splitlines()[0] == f"**{summary(rows)}.**"
    assert (results / "claims.rst").read_text().splitlines()[0] == f"**{summary(rows)}.**"
    record = json.loads((results / "claims.json").read_text())
    assert record["code_version"]["toymodels"] and record["grids"]
    paths = [entry["path"] for entry in record["inputs"]]
    assert any(path.endswith("double_descent/claims.py") for path in paths)
    assert "results/double_descent/dataset_size/instances.parquet" in paths
    for entry in record["inputs"]:
        path = Path(entry["path"]) if Path(entry["path"]).is_absolute() else quick_run / entry["path"]
        assert sha256_file(path) == entry["sha256"]


def test_finished_run_has_nothing_to_do(quick_run):
    result = run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={QUICK}")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_cell_shared_by_two_grids_is_trained_once_and_labelled_by_each(quick_run):
    """quick.yaml's weight_decay cell (wd 0.01, T 4) has the hyperparameters of dataset_size's (m 3, T 4): both
    grids' indexes point at one home, named by the values off the defaults."""
    results = quick_run / "results" / "double_descent"
    index = {grid: pd.read_parquet(results / grid / "cells.parquet").set_index("cell") for grid in ("dataset_size", "weight_decay")}
    assert index["dataset_size"].loc["m=3/T=4", "directory"] == index["weight_decay"].loc["weight_decay=0.01/T=4", "directory"] \
        == "results/double_descent/cells/T=4__m=3"
    assert list(index["weight_decay"].columns) == ["directory", "m", "T", "weight_decay"]
    assert (quick_run / index["weight_decay"].loc["weight_decay=0.01/T=4", "directory"] / "model.safetensors").exists()
    home = pd.read_parquet(results / "dataset_size" / "instances.parquet").query("m == 3 and T == 4")
    view = pd.read_parquet(results / "weight_decay" / "instances.parquet")
    assert list(view.columns[:4]) == ["m", "T", "weight_decay", "seed"] and not view[["weight_decay", "T"]].isna().any().any()
    shared = view.query("weight_decay == 0.01 and T == 4")
    assert len(shared) == len(home) == 2
    assert shared["test_loss"].tolist() == home["test_loss"].tolist()
    counts = job_counts(run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={QUICK}", "-F", "figures").stdout)
    assert counts["train_double_descent"] == 29  # the quick config's cells of ten grids, each shared cell once


def test_reordering_grids_or_adding_one_moves_no_cell(quick_run, tmp_path):
    """Homes depend on hyperparameters alone: every study's grids reversed is nothing to do; a new grid whose cells
    exist already costs its collect job and nothing else."""
    config = load_config_file(QUICK)
    for block in config["studies"].values():
        block["grids"] = dict(reversed(block["grids"].items()))
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={reordered}")
    assert "Nothing to be done" in result.stdout + result.stderr
    dd = config["studies"]["double_descent"]["grids"]
    config["studies"]["double_descent"]["grids"] = {"again": {"sweep": {"m": [3], "T": [4, 20]}}, **dd}
    added = tmp_path / "added.yaml"
    added.write_text(yaml.safe_dump(config, sort_keys=False))
    target = "results/double_descent/again/instances.parquet"
    counts = job_counts(run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={added}", target).stdout)
    assert counts == {"collect_double_descent": 1}


def test_asking_for_a_path_that_is_no_cell_home_says_so(tmp_path):
    target = "results/double_descent/cells/T=4__m=7/model.safetensors"
    result = run_snakemake(tmp_path, "-n", f"--configfile={QUICK}", target, check=False)
    assert result.returncode != 0
    assert "results/double_descent/cells/T=4__m=7 is not the home of a cell of this config" in result.stdout + result.stderr


def test_one_figure_rebuilds_alone_by_short_name(quick_run):
    name = figure_names(QUICK)[0]
    target = quick_run / "results" / "figures" / f"{name}.png"
    target.unlink()
    counts = job_counts(run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={QUICK}", name).stdout)
    assert counts == {name: 1}
    run_snakemake(quick_run, "--cores", "1", f"--configfile={QUICK}", name)
    assert target.exists()
    forced = job_counts(run_snakemake(quick_run, "-n", "--cores", "1", f"--configfile={QUICK}", "-f",
                                      str(target.relative_to(quick_run))).stdout)
    assert forced == {name: 1}


def test_same_config_gives_byte_identical_tables(quick_run, tmp_path):
    """A second run of one grid per study reproduces the first run's Parquet tables byte for byte."""
    config = load_config_file(QUICK)
    targets = [f"results/{study}/{next(iter(block['grids']))}/{load_study(study).TABLES[0]}.parquet"
               for study, block in config["studies"].items()]
    run_snakemake(tmp_path, "--cores", "2", f"--configfile={QUICK}", *targets, timeout=900)
    compared = 0
    for table in sorted((tmp_path / "results").rglob("*.parquet")):
        twin = quick_run / table.relative_to(tmp_path)
        assert table.read_bytes() == twin.read_bytes(), f"{table.relative_to(tmp_path)} differs between runs"
        compared += 1
    assert compared >= 3 * len(targets)
    shutil.rmtree(tmp_path / "results")
