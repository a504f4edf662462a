"""Orchestration and memory: paper-config dry run, rebuilding figures after a plotting edit, per-job cost.

    .venv/bin/python benchmarks/bench_orchestration.py [--results-dir .]

Needs a finished default run in --results-dir (e.g. after `make figures`) for the rebuild and the job table.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from toymodels.forkserver import read_usage

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args],
                            capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def benchmark_table(results: Path) -> pd.DataFrame:
    """Every Snakemake benchmark file: study, stage, cell, wall seconds, CPU seconds, peak RSS.

    Wall time is the benchmark file's. A job run by the warm job server did its work in a forked child that
    Snakemake does not see; its CPU time and peak RSS are the usage line the child appended to the job's log."""
    rows = []
    for path in results.rglob("*.benchmark.tsv"):
        record = pd.read_csv(path, sep="\t").iloc[0]
        parts = path.relative_to(results).parts
        stage = path.name.split(".")[0]
        usage = read_usage(path.with_name(f"{stage}.log").read_text()) or {
            "cpu_s": float(record["cpu_time"]), "max_rss_mb": float(record["max_rss"])}
        rows.append({"study": parts[0], "stage": stage, "cell": "/".join(parts[1:-1]), "wall_s": float(record["s"]),
                     "cpu_s": usage["cpu_s"], "max_rss_mb": usage["max_rss_mb"]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=ROOT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        seconds, output = snakemake(Path(empty), "-n", "figures", f"--configfile={ROOT / 'config' / 'paper.yaml'}")
    print(f"| paper config dry run | {sum(job_counts(output).values())} jobs | {seconds:.1f} s |")

    workdir = args.results_dir
    plotting = ROOT / "src" / "toymodels" / "studies" / "double_descent" / "figures.py"
    original = plotting.read_text()
    try:  # a real edit: Snakemake compares the checksum of small inputs, so a mere touch reruns nothing
        plotting.write_text(original + "\n# benchmark edit\n")
        _, planned = snakemake(workdir, "-n", "figures")
        counts = job_counts(planned)
        # the scorecard reads the figures' measurements (toymodels.studies.stage_code(study, "claims")), so it is redone too
        assert all(rule.startswith("double_descent_") or rule in ("figures", "claims") for rule in counts), \
            f"a plotting edit should rerun figures and the scorecard only: {counts}"
        _, planned_one = snakemake(workdir, "-n", "double_descent_heatmap")
        assert job_counts(planned_one) == {"double_descent_heatmap": 1}, job_counts(planned_one)
        seconds, _ = snakemake(workdir, "--cores", "2", "double_descent_heatmap")
        print(f"| rebuild one figure (`snakemake --cores 2 double_descent_heatmap`) after editing double_descent/figures.py "
              f"| 1 figure job, nothing retrained | {seconds:.1f} s |")
        seconds, _ = snakemake(workdir, "--cores", "2", "figures")
        others = sum(count for rule, count in counts.items() if rule.startswith("double_descent_")) - 1
        print(f"| then every figure the edit touched (`snakemake --cores 2 figures`) | the {others} other figure jobs, the scorecard "
              f"and the `figures` target, nothing retrained | {seconds:.1f} s |")
    finally:
        plotting.write_text(original)
    snakemake(workdir, "--cores", "2", "figures")  # the restored code is another edit: redraw, untimed

    jobs = benchmark_table(workdir / "results")
    if len(jobs):
        per_study = jobs.groupby(["study", "stage"]).agg(jobs=("cell", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"),
                                                         max_wall_s=("wall_s", "max"), max_rss_mb=("max_rss_mb", "max"))
        print()
        print(per_study.round(1).to_markdown())
        largest = jobs.loc[jobs["max_rss_mb"].idxmax()]
        print(f"\nlargest peak RSS: {largest['max_rss_mb']:.0f} MB ({largest['study']} {largest['stage']} {largest['cell']}); "
              f"total CPU of train + measure jobs: {jobs['cpu_s'].sum() / 60:.1f} min")


if __name__ == "__main__":
    main()
