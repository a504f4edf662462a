"""toymodels.results on the quick run's outputs: listing, tables with their column docs, weights by step, provenance,
errors that name what exists, and Parquet another engine reads alike."""

from __future__ import annotations

import duckdb
import pytest
import torch

from conftest import QUICK, cell_directory
from toymodels.config import load_config_file
from toymodels.results import EVERY_TABLE, Results, ResultsError, column_docs
from toymodels.studies import load_study

pytestmark = pytest.mark.workflow

DOC = """
Columns in **every table**:

| column | unit | meaning |
|---|---|---|
| `seed` | - | instance index |

**paths** (one row per pair):

| column | unit | meaning |
|---|---|---|
| `alpha`, `loss` | - / loss | position on the line, loss there |

`results/s/<grid>/trace.parquet`, one row per step:

| column | unit | meaning |
|---|---|---|
| `mmcs` | cosine | mean max cosine similarity |

| table | column | unit / type | meaning |
|---|---|---|---|
| instances | `init_seed` | int64 | seed of the init |
| | `norm` | norm | \\|\\|W\\|\\| |
| other | `x` | - | not a table of this study |
"""


def test_column_docs_read_each_layout_of_the_study_docs():
    docs = column_docs(DOC, ["paths", "trace", "instances"])
    assert docs == {EVERY_TABLE: {"seed": "instance index"},
                    "paths": {"alpha": "- / loss: position on the line, loss there",
                              "loss": "- / loss: position on the line, loss there"},
                    "trace": {"mmcs": "cosine: mean max cosine similarity"},
                    "instances": {"init_seed": "int64: seed of the init", "norm": "norm: ||W||"}}


@pytest.fixture(scope="module")
def results(quick_run) -> Results:
    return Results(quick_run / "results")


def test_listing_follows_the_config(results):
    config = load_config_file(QUICK)
    assert results.studies() == sorted(config["studies"])
    for study, block in config["studies"].items():
        assert results.grids(study) == sorted(block["grids"])
        grid = next(iter(block["grids"]))
        assert results.tables(study, grid) == sorted([*load_study(study).TABLES, "history"])
    assert results.figures() == sorted(name for block in config["studies"].values() for name in block.get("figures", {}))


def test_every_column_of_every_table_is_documented(results):
    """The study docs (docs/studies/<study>.md) document each column a grid table has, its cell columns aside."""
    undocumented = {}
    for study in results.studies():
        for grid in results.grids(study):
            cell_columns = set(results.cells(study, grid).columns) - {"cell", "directory"}
            for table in results.tables(study, grid):
                frame = results.table(study, grid, table)
                missing = [c for c in frame.columns if c not in frame.attrs["columns"] and c not in cell_columns]
                if missing:
                    undocumented[f"{study}/{grid}/{table}"] = missing
    assert not undocumented


def test_table_carries_its_column_docs_and_code_version(results):
    table = results.table("double_descent", "dataset_size", "instances")
    assert len(table) == 12 and {"m", "T", "seed", "test_loss"} <= set(table.columns)
    assert "test set" in table.attrs["columns"]["test_loss"]
    assert table.attrs["code_version"]["stage"] == "collect"


def test_a_cell_loads_its_final_model_and_checkpoints_by_step(results, quick_run):
    directory = results.cell_directory("double_descent", "weight_decay", "weight_decay=0.01/T=4")
    config = load_config_file(QUICK)
    assert directory == cell_directory(quick_run, config, "double_descent", "dataset_size", "m=3/T=4")
    steps = results.steps("double_descent", "dataset_size", "m=3/T=4")
    assert steps[0] == 0 and steps[-1] == config["studies"]["double_descent"]["defaults"]["steps"]
    final = results.model("double_descent", "dataset_size", "m=3/T=4")
    last = results.model("double_descent", "dataset_size", "m=3/T=4", step=steps[-1])
    assert final.keys() == last.keys() == {"W", "b"} and final["W"].shape[:2] == (2, 3)
    assert torch.equal(final["W"], last["W"])
    assert not torch.equal(results.model("double_descent", "dataset_size", "m=3/T=4", step=0)["W"], final["W"])
    assert results.model_metadata("double_descent", "dataset_size", "m=3/T=4")["values"]["T"] == 4


def test_a_figure_opens_its_provenance(results):
    name = results.figures()[0]
    record = results.provenance(name)
    assert record["caption"] and record["inputs"] and results.figure_path(name).exists()


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.grids("mono"), "no study 'mono' in .*; studies: connectivity, double_descent, modular_addition, "),
    (lambda r: r.tables("monosemanticity", "lr"), "no grid 'lr' in monosemanticity; grids: absolute, .*learning_rate"),
    (lambda r: r.table("sae", "inits", "mmcs"), "no table 'mmcs' in sae/inits; tables: atoms, history, instances, trace"),
    (lambda r: r.model("double_descent", "dataset_size", "T=4"), "no cell 'T=4' in double_descent/dataset_size; cells: m=2/T=4, "),
    (lambda r: r.model("double_descent", "dataset_size", "m=2/T=4", step=9999), r"no checkpoint at step 9999 .*; steps: \[0, "),
    (lambda r: r.provenance("heatmap"), "no figure 'heatmap' in .*; figures: "),
])
def test_errors_name_what_exists(results, call, message):
    with pytest.raises(ResultsError, match=message):
        call(results)


def test_another_engine_reads_the_tables_alike(results):
    path = results.table_path("monosemanticity", "learning_rate", "instances")
    frame = duckdb.sql(f"select * from read_parquet('{path}')").df()
    expected = results.table("monosemanticity", "learning_rate", "instances")
    assert list(frame.columns) == list(expected.columns) and len(frame) == len(expected)
    assert frame["loss"].tolist() == expected["loss"].tolist()
