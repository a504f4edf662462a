"""Send a job's output (progress bar, warnings, tracebacks) to its log file."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pandas as pd

QUIET_VARIABLE = "TOYMODELS_QUIET"  # set by the workflow under `snakemake --quiet`: jobs then print nothing to the console


@contextlib.contextmanager
def log_to(path: str | Path | None) -> Iterator[None]:
    """Redirect stdout and stderr to ``path`` (appending); a failing job leaves its traceback there too."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        try:
            yield
        except BaseException:
            traceback.print_exc(file=handle)
            raise


def cell_summary(study: str, cell: str, wall_s: float, history: pd.DataFrame) -> str:
    """One line for a finished training job: study, cell home, wall time and the final loss (mean over its instances)."""
    if history.empty:
        return f"toymodels: trained {study} {cell} in {wall_s:.1f} s: nothing to train"
    last = history[history["step"] == history["step"].max()]
    return (f"toymodels: trained {study} {cell} in {wall_s:.1f} s: {int(last['step'].iloc[0])} steps, final loss "
            f"{last['loss'].mean():.4g} (mean of {len(last)} instance{'s' if len(last) != 1 else ''})")


def announce(line: str) -> None:
    """Print ``line`` to the job's console (the terminal running Snakemake, even inside :func:`log_to`) and to the
    current output (the job's log), unless the run is quiet."""
    print(line)
    if not os.environ.get(QUIET_VARIABLE) and sys.__stderr__ is not None and sys.stdout is not sys.__stdout__:
        print(line, file=sys.__stderr__, flush=True)
