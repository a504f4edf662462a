"""Published claims as checks over a study's collected tables: what a run reproduces, claim by claim.

A study's ``claims`` module (``toymodels.studies.<study>.claims``) defines ``CLAIMS: tuple[Claim, ...]``. Each claim
names the grids it reads (by their config names), the figure that shows it, the paper's statement and the criterion
taken from that statement, and a pure ``check(tables) -> Outcome`` over ``tables[grid][table]`` (the collected
DataFrames, e.g. ``tables["learning_rate"]["instances"]``). The criterion is fixed in the claim, never fitted to a
run's numbers. A grid missing from the config, or cells missing from a grid, give ``not measured``: a check (or a
helper it calls) raises :class:`NotMeasured` saying what is missing.

The module is light (no pandas import): the workflow reads ``grids`` of every claim at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURED)
COLUMNS = ("study", "id", "source", "statement", "measured", "criterion", "verdict", "figure")

Tables = Mapping[str, Mapping[str, "pd.DataFrame"]]


@dataclass(frozen=True)
class Outcome:
    """What a check found: the measured value(s) in words and numbers, and the verdict."""

    measured: str
    verdict: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


class NotMeasured(Exception):
    """Raised by a check when the tables lack what its claim needs; :func:`evaluate` records the message as the
    ``not measured`` outcome."""


def judged(holds: bool, measured: str) -> Outcome:
    """``reproduced`` when the claim's criterion ``holds`` on the measured values, else ``not reproduced``."""
    return Outcome(measured, REPRODUCED if holds else NOT_REPRODUCED)


def not_measured(why: str) -> Outcome:
    """The run lacks what the claim needs (a grid, a cell, a value reached); ``why`` says what."""
    return Outcome(why, NOT_MEASURED)


@dataclass(frozen=True)
class Claim:
    """One published finding: where it is stated, in words, how it is judged, where it is drawn, how it is measured."""

    id: str
    source: str
    statement: str
    criterion: str
    figure: str
    grids: tuple[str, ...]
    check: Callable[[Tables], Outcome]


def study_claims(study: str) -> tuple[Claim, ...]:
    """The ``CLAIMS`` of a study (empty when it has no ``claims`` module)."""
    try:
        module = importlib.import_module(f"toymodels.studies.{study}.claims")
    except ModuleNotFoundError as error:
        if error.name != f"toymodels.studies.{study}.claims":
            raise
        return ()
    return tuple(module.CLAIMS)


def evaluate(study: str, claims: tuple[Claim, ...], tables: Tables) -> list[dict[str, Any]]:
    """One scorecard row per claim (columns :data:`COLUMNS`); a claim whose grids are not all in ``tables`` is
    ``not measured`` without running its check, as is one whose check raises :class:`NotMeasured`."""
    rows = []
    for claim in claims:
        missing = [grid for grid in claim.grids if grid not in tables]
        if missing:
            outcome = not_measured(f"the config has no grid {', '.join(missing)}")
        else:
            try:
                outcome = claim.check({grid: tables[grid] for grid in claim.grids})
            except NotMeasured as lacking:
                outcome = not_measured(str(lacking))
        rows.append({"study": study, "id": claim.id, "source": claim.source, "statement": claim.statement,
                     "measured": outcome.measured, "criterion": claim.criterion, "verdict": outcome.verdict,
                     "figure": claim.figure})
    return rows
