"""The scorecard of a run: every study's claims judged on its collected tables, as a table, Markdown and reST.

``results/claims.parquet`` holds one row per claim (columns :data:`toymodels.claims.COLUMNS`); ``results/claims.md``
and ``results/claims.rst`` render the same rows for readers (the README and the Snakemake report).
``python -m toymodels.scorecard results/claims.md README.md`` copies the Markdown scorecard into the README, between
:data:`BEGIN` and :data:`END`.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toymodels.claims import COLUMNS, VERDICTS, Tables, evaluate, study_claims

if TYPE_CHECKING:
    import pandas as pd

Row = Mapping[str, Any]
BEGIN = "<!-- scorecard:begin -->"
END = "<!-- scorecard:end -->"


def table_paths(paths: Iterable[str]) -> dict[str, dict[str, dict[str, str]]]:
    """Collected tables ``results/<study>/<grid>/<table>.parquet`` grouped as ``{study: {grid: {table: path}}}``."""
    grouped: dict[str, dict[str, dict[str, str]]] = {}
    for path in paths:
        *_, study, grid, name = Path(path).parts
        grouped.setdefault(study, {}).setdefault(grid, {})[Path(name).stem] = str(path)
    return grouped


def score(grids: Mapping[str, Sequence[str]], tables: Mapping[str, Tables]) -> list[dict[str, Any]]:
    """The scorecard rows of every study in ``grids`` (study -> the grids its claims read that the config has),
    judged on ``tables[study][grid][table]``; a study without a ``claims`` module gives no rows."""
    return [row for study, present in grids.items()
            for row in evaluate(study, study_claims(study), {grid: tables[study][grid] for grid in present})]


def scorecard_table(rows: Sequence[Row]) -> pd.DataFrame:
    """The rows as a DataFrame with exactly the columns :data:`COLUMNS`, in order (strings, also when empty)."""
    import pandas as pd

    return pd.DataFrame([[row[column] for column in COLUMNS] for row in rows], columns=list(COLUMNS), dtype="string")


def summary(rows: Sequence[Row]) -> str:
    """``"12 claims: 9 reproduced, 2 not reproduced, 1 not measured"``."""
    counts = Counter(row["verdict"] for row in rows)
    return f"{len(rows)} claims: " + ", ".join(f"{counts[verdict]} {verdict}" for verdict in VERDICTS)


def _by_study(rows: Sequence[Row]) -> dict[str, list[Row]]:
    studies: dict[str, list[Row]] = {}
    for row in rows:
        studies.setdefault(row["study"], []).append(row)
    return studies


def _markdown_cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def render_markdown(rows: Sequence[Row]) -> str:
    """A summary line of the verdicts, then one table per study: id, statement, measured, criterion, verdict, figure."""
    columns = ("id", "statement", "measured", "criterion", "verdict", "figure")
    lines = [f"**{summary(rows)}.**"]
    for study, study_rows in _by_study(rows).items():
        lines += ["", f"### {study}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in study_rows:
            cells = [f"`{row['id']}`", *(_markdown_cell(row[c]) for c in columns[1:4]), f"**{row['verdict']}**",
                     f"`{row['figure']}`"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rst_text(value: Any) -> str:
    """One line of plain text with reST's inline-markup characters escaped."""
    text = " ".join(str(value).split())
    for character in ("\\", "*", "`", "_", "|"):
        text = text.replace(character, "\\" + character)
    return text


def render_rst(rows: Sequence[Row], linked_figures: Collection[str] = ()) -> str:
    """The same scorecard in reStructuredText, one block per claim (it reads well in a narrow column). A figure named
    in ``linked_figures`` becomes a reference to ``<figure>.png``, the target the Snakemake report defines for every
    result it holds (a link that opens the figure with its caption)."""
    def figure(name: str) -> str:
        return f"`{name}.png`_" if name in linked_figures else f"``{name}``"

    lines = [f"**{summary(rows)}.**"]
    for study, study_rows in _by_study(rows).items():
        lines += ["", f"**{study}** ({summary(study_rows)})", ""]
        for row in study_rows:
            lines += [f"* **{row['verdict']}**, ``{row['id']}``: {_rst_text(row['statement'])}", "",
                      f"  | *measured:* {_rst_text(row['measured'])}",
                      f"  | *criterion:* {_rst_text(row['criterion'])}",
                      f"  | *figure:* {figure(row['figure'])}; *source:* {_rst_text(row['source'])}", ""]
    return "\n".join(lines)


def provenance(grids: Mapping[str, Sequence[str]], tables: Iterable[str], code: Iterable[str],
               outputs: Iterable[str]) -> dict[str, Any]:
    """The record written next to the scorecard: the grids judged, the code version, every input (tables with the code
    versions that made them, source files) with its sha256 (:func:`toymodels.provenance.inputs_provenance`)."""
    from toymodels.provenance import inputs_provenance

    return {"rule": "claims", "grids": {study: list(present) for study, present in grids.items()},
            **inputs_provenance(None, "claims", tables, code), "outputs": sorted(str(path) for path in outputs)}


def fill_block(text: str, block: str) -> str:
    """``text`` with everything between the :data:`BEGIN` and :data:`END` lines replaced by ``block``."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"no {BEGIN} ... {END} block to fill")
    return text[:begin + len(BEGIN)] + "\n" + block.rstrip("\n") + "\n" + text[end:]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Copy a Markdown scorecard into the marked block of a document.")
    parser.add_argument("scorecard", type=Path, help="the scorecard, e.g. results/claims.md")
    parser.add_argument("document", type=Path, help=f"the file holding the {BEGIN} ... {END} block, e.g. README.md")
    args = parser.parse_args(argv)
    args.document.write_text(fill_block(args.document.read_text(), args.scorecard.read_text()))


if __name__ == "__main__":
    main()
