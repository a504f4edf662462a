"""Code edits rerun what they change: after a finished quick run, an edited source file makes `snakemake -n` list
exactly the jobs of the rules that run it, and what depends on them (the same jobs as forcing those rules with -R)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import QUICK, ROOT, job_counts, run_snakemake
from toymodels.config import load_config_file

pytestmark = pytest.mark.workflow
PACKAGE = ROOT / "src" / "toymodels"
STUDIES = tuple(load_config_file(QUICK)["studies"])
FIGURES = {study: tuple(block.get("figures", {})) for study, block in load_config_file(QUICK)["studies"].items()}
EVERY_FIGURE = tuple(name for names in FIGURES.values() for name in names)

# source file -> the rules whose jobs run it (the rest of what reruns depends on those jobs' outputs)
CASES = {
    "studies/double_descent/data.py": ("dataset_double_descent", "train_double_descent", "measure_double_descent",
                                       "dataset_connectivity"),  # the connectivity bundle reads dd datasets with it
    "studies/double_descent/model.py": ("train_double_descent", "measure_double_descent"),
    "studies/monosemanticity/model.py": ("train_monosemanticity", "measure_monosemanticity",
                                         "train_connectivity", "measure_connectivity"),  # its families use mono's model
    "training.py": (*(f"{stage}_{study}" for stage in ("train", "measure") for study in STUDIES), "dataset_connectivity"),
    "studies/sae/measure.py": ("measure_sae",),
    "tables.py": tuple(f"collect_{study}" for study in STUDIES),
    "studies/sae/figures.py": FIGURES["sae"],
    "plotting.py": (*EVERY_FIGURE, "claims"),  # claims of modular addition reuse its figures' helpers
    "studies/double_descent/claims.py": ("claims",),
}


@contextmanager
def edited(path: Path) -> Iterator[None]:
    """``path`` with a comment line appended (Snakemake reruns for a newer input only if its checksum changed too),
    restored byte for byte, modification time included, afterwards."""
    before, text = path.stat(), path.read_bytes()
    path.write_bytes(text + b"# edited by tests/test_code_inputs.py\n")
    os.utime(path, (before.st_atime, max(time.time(), before.st_mtime) + 1))
    try:
        yield
    finally:
        path.write_bytes(text)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def dry_run(workdir: Path, *args: str) -> dict[str, int]:
    return job_counts(run_snakemake(workdir, "-n", "--cores", "1", f"--configfile={QUICK}", *args).stdout)


@pytest.mark.parametrize("source", CASES)
def test_an_edited_source_file_reruns_the_jobs_that_run_it_and_what_depends_on_them(quick_run, source):
    with edited(PACKAGE / source):
        rerun = dry_run(quick_run)
    assert set(CASES[source]) <= set(rerun), rerun
    assert rerun == dry_run(quick_run, "-R", *CASES[source])


def test_editing_a_model_retrains_that_study_and_its_readers_only(quick_run):
    """Connectivity reads double-descent models as inputs of its dataset jobs: it alone retrains with them."""
    with edited(PACKAGE / "studies/double_descent/model.py"):
        rerun = dry_run(quick_run)
    trained = {rule for rule in rerun if rule.startswith(("dataset_", "train_"))}
    assert trained == {"train_double_descent", "dataset_connectivity", "train_connectivity"}, rerun
