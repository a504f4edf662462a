"""Send a job's output (progress bar, warnings, tracebacks) to its log file."""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import Iterator


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
