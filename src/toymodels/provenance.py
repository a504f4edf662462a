"""Provenance of a figure: the config it used, the code version and every input artifact's checksum."""

from __future__ import annotations

import subprocess
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Iterable, Mapping

from toymodels import __version__
from toymodels.artifacts import sha256_file


def code_version(repo: str | Path = ".") -> dict[str, Any]:
    """Package version, and the git commit (with a dirty flag) when run inside a checkout."""
    version: dict[str, Any] = {"toymodels": __version__, "torch": package_version("torch")}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True,
                               check=True).stdout.strip()
        version.update(git_commit=commit, git_dirty=bool(dirty))
    except (OSError, subprocess.CalledProcessError):
        version.update(git_commit=None, git_dirty=None)
    return version


def figure_provenance(figure: str, config: Mapping[str, Any], inputs: Iterable[str], outputs: Iterable[str]) -> dict[str, Any]:
    """The record written next to every figure."""
    return {
        "figure": figure,
        "config": dict(config),
        "code_version": code_version(),
        "inputs": [{"path": str(path), "sha256": sha256_file(path)} for path in sorted(inputs)],
        "outputs": sorted(str(path) for path in outputs),
    }
