"""Claims and the scorecard: evaluation, missing grids, rendering, the README block, and every shipped claims module."""

import subprocess
import sys
import types

import pandas as pd
import pytest
from docutils.core import publish_parts

from conftest import ROOT
from toymodels.claims import (
    COLUMNS,
    NOT_MEASURED,
    NOT_REPRODUCED,
    REPRODUCED,
    Claim,
    NotMeasured,
    Outcome,
    evaluate,
    judged,
    study_claims,
)
from toymodels.config import load_config_file
from toymodels.scorecard import (
    BEGIN,
    END,
    fill_block,
    main,
    render_markdown,
    render_rst,
    score,
    scorecard_table,
    summary,
    table_paths,
)
from toymodels.studies import STUDY_NAMES

TABLES = {"sweep": {"instances": pd.DataFrame({"T": [1, 2, 3], "loss": [0.5, 2.0, 1.0]})}}


def peak_is_interior(tables) -> Outcome:
    losses = tables["sweep"]["instances"].set_index("T")["loss"]
    if len(losses) < 3:
        raise NotMeasured("needs 3 values of T")
    return judged(losses.index.min() < losses.idxmax() < losses.index.max(), f"peak at T = {losses.idxmax()}")


def claim(**changes) -> Claim:
    fields = {"id": "peak", "source": "a paper, Fig. 1", "statement": "The loss peaks in between.",
              "criterion": "argmax inside", "figure": "some_figure", "grids": ("sweep",), "check": peak_is_interior}
    return Claim(**{**fields, **changes})


def test_a_check_that_holds_is_reproduced_and_one_that_fails_is_not():
    failing = {"sweep": {"instances": pd.DataFrame({"T": [1, 2, 3], "loss": [3.0, 2.0, 1.0]})}}
    (passed,) = evaluate("study", (claim(),), TABLES)
    (failed,) = evaluate("study", (claim(),), failing)
    assert list(passed) == list(COLUMNS)
    assert (passed["verdict"], passed["measured"]) == (REPRODUCED, "peak at T = 2")
    assert (failed["verdict"], failed["measured"]) == (NOT_REPRODUCED, "peak at T = 1")
    assert passed["study"] == "study" and passed["figure"] == "some_figure"


def test_a_missing_grid_is_not_measured_without_running_the_check():
    def explode(tables):
        raise AssertionError("the check must not run")

    (row,) = evaluate("study", (claim(grids=("sweep", "other"), check=explode),), TABLES)
    assert (row["verdict"], row["measured"]) == (NOT_MEASURED, "the config has no grid other")


def test_missing_cells_are_not_measured_with_the_checks_reason():
    small = {"sweep": {"instances": TABLES["sweep"]["instances"].head(2)}}
    (row,) = evaluate("study", (claim(),), small)
    assert (row["verdict"], row["measured"]) == (NOT_MEASURED, "needs 3 values of T")


def test_an_outcome_rejects_an_unknown_verdict():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Outcome("1.0", "roughly")


def test_a_study_without_claims_module_has_no_claims(tmp_path, monkeypatch):
    package = types.ModuleType("toymodels.studies.no_claims")
    package.__path__ = [str(tmp_path)]
    monkeypatch.setitem(sys.modules, package.__name__, package)
    assert study_claims("no_claims") == ()


def test_table_paths_group_collected_tables_by_study_and_grid():
    paths = ["results/sae/inits/mmcs.parquet", "results/sae/inits/history.parquet", "results/sae/rare/mmcs.parquet"]
    assert table_paths(paths) == {"sae": {"inits": {"mmcs": paths[0], "history": paths[1]}, "rare": {"mmcs": paths[2]}}}


def test_score_judges_every_claim_of_a_study_whose_grids_are_all_missing():
    rows = score({"double_descent": []}, {})
    assert [row["id"] for row in rows] == [c.id for c in study_claims("double_descent")]
    assert {row["verdict"] for row in rows} == {NOT_MEASURED}


ROWS = [
    {"study": "a", "id": "one", "source": "paper", "statement": "x | y", "measured": "1.0", "criterion": "> 0",
     "verdict": REPRODUCED, "figure": "fig_a"},
    {"study": "a", "id": "two", "source": "paper", "statement": "D_t follows m/T *", "measured": "n/a",
     "criterion": "`T` small", "verdict": NOT_MEASURED, "figure": "fig_a"},
    {"study": "b", "id": "three", "source": "paper", "statement": "s", "measured": "0.1", "criterion": "> 1",
     "verdict": NOT_REPRODUCED, "figure": "fig_b"},
]


def test_summary_counts_every_verdict():
    assert summary(ROWS) == "3 claims: 1 reproduced, 1 not reproduced, 1 not measured"
    assert summary([]) == "0 claims: 0 reproduced, 0 not reproduced, 0 not measured"


def test_scorecard_table_has_exactly_the_columns_in_order_even_when_empty():
    table = scorecard_table(ROWS)
    assert list(table.columns) == list(COLUMNS) and len(table) == 3
    assert table["verdict"].tolist() == [REPRODUCED, NOT_MEASURED, NOT_REPRODUCED]
    assert list(scorecard_table([]).columns) == list(COLUMNS)


def test_markdown_scorecard_has_a_summary_then_one_table_per_study():
    lines = render_markdown(ROWS).splitlines()
    assert lines[0] == "**3 claims: 1 reproduced, 1 not reproduced, 1 not measured.**"
    assert lines.index("### a") < lines.index("### b")
    assert "| id | statement | measured | criterion | verdict | figure |" in lines
    assert "| `one` | x \\| y | 1.0 | > 0 | **reproduced** | `fig_a` |" in lines
    assert sum(line.startswith("| `") for line in lines) == 3


def test_rst_scorecard_renders_without_warnings_and_keeps_the_text_literal():
    html = publish_parts(render_rst(ROWS), writer="html", settings_overrides={"halt_level": 2})["body"]
    assert "3 claims: 1 reproduced, 1 not reproduced, 1 not measured." in html
    assert "D_t follows m/T *" in html and "`T` small" in html and "x | y" in html
    assert html.count("<li>") == 3


def test_rst_scorecard_links_the_figures_the_report_holds():
    text = render_rst(ROWS, linked_figures={"fig_a"})
    assert "*figure:* `fig_a.png`_;" in text and "``fig_b``" in text
    targets = "\n\n.. _fig_a.png: javascript:app.showResultInfo('results%2Ffigures%2Ffig_a.png')\n"
    html = publish_parts(text + targets, writer="html", settings_overrides={"halt_level": 2})["body"]
    assert "showResultInfo" in html and ">fig_a.png</a>" in html


def test_fill_block_replaces_only_the_marked_block(tmp_path):
    text = f"# Title\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    filled = fill_block(text, "new line\n")
    assert filled == f"# Title\n\n{BEGIN}\nnew line\n{END}\n\nafter\n"
    assert fill_block(filled, "new line\n") == filled
    with pytest.raises(ValueError, match="block to fill"):
        fill_block("no markers", "x")
    scorecard, readme = tmp_path / "claims.md", tmp_path / "README.md"
    scorecard.write_text(render_markdown(ROWS))
    readme.write_text(text)
    main([str(scorecard), str(readme)])
    assert readme.read_text() == fill_block(text, render_markdown(ROWS))


CLAIMED = [study for study in STUDY_NAMES if study_claims(study)]


@pytest.mark.parametrize("study", CLAIMED)
def test_shipped_claims_name_figures_and_grids_of_the_default_config(study):
    block = load_config_file(ROOT / "config" / "config.yaml")["studies"][study]
    claims = study_claims(study)
    assert len(claims) >= 3 and len({c.id for c in claims}) == len(claims)
    for c in claims:
        assert c.figure in block["figures"], f"{study}.{c.id}: no figure {c.figure}"
        assert set(c.grids) <= set(block["grids"]), f"{study}.{c.id}: grids {c.grids}"
        assert c.source and c.statement and c.criterion


@pytest.mark.parametrize("study", CLAIMED)
def test_claims_modules_import_no_table_or_heavy_module(study):
    """The Snakemake process reads every study's CLAIMS at parse time."""
    heavy = ("pandas", "torch", "matplotlib", "sklearn", "scipy")
    code = (f"import sys, toymodels.studies.{study}.claims as c; c.CLAIMS; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"toymodels.studies.{study}.claims imports {loaded}"

