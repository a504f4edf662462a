"""Code versions: which source files a stage runs, the version of the code that made an artifact, and the provenance of
a figure or scorecard (its config, its code, every input with its checksum and the code versions behind it).

Light at import (standard library only): the Snakemake process finds every stage's source files at parse time.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from toymodels import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
CODE_KEY = "toymodels_code"  # metadata: the code version of the stage that wrote the artifact
LINEAGE_KEY = "toymodels_lineage"  # metadata: the distinct code versions of every artifact it was made from


def module_path(module: str) -> Path | None:
    """The source file of a ``toymodels`` module (a package's ``__init__.py``); None for any other name."""
    parts = module.split(".")
    if parts[0] != "toymodels":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if candidate.is_file():
            return candidate
    return None


def _statements(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every statement, nested ones (in functions, classes, branches, handlers) included; expressions are skipped,
    which makes this several times faster than ``ast.walk``."""
    for node in nodes:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            yield from _statements(getattr(node, field, ()))


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """The modules a module's import statements name, in function bodies too; ``from X import y`` names ``X.y`` when
    that is a module, and ``X`` when some imported name is not."""
    path = module_path(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _statements(ast.parse(path.read_bytes(), str(path)).body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            anchor = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(part for part in (anchor, node.module) if part)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            names.update(name for name in submodules if module_path(name))
            if not all(module_path(name) for name in submodules):
                names.add(base)
    return frozenset(names)


@functools.cache
def source_files(*entries: str) -> tuple[Path, ...]:
    """The source files of the ``toymodels`` modules ``entries`` and of every ``toymodels`` module they import, directly
    or not, found by reading import statements (nothing is imported). A package's ``__init__`` imported for its names
    counts, but its own imports are not followed: a study's ``__init__`` is the workflow's light glue (constants, lazy
    exports, table columns), and following it would make every stage depend on every other."""
    missing = [entry for entry in entries if module_path(entry) is None]
    if missing:
        raise ValueError(f"not modules of toymodels: {missing}")
    found: dict[str, Path] = {}
    pending = list(entries)
    while pending:
        module = pending.pop()
        path = module_path(module)
        if path is None or module in found:
            continue
        found[module] = path
        if path.name != "__init__.py":
            pending.extend(_imports(module))
    return tuple(sorted(set(found.values())))


def _relative(path: str | os.PathLike) -> str:
    """A source file's path from the folder holding the ``toymodels`` package (the same in every checkout)."""
    return str(Path(path).resolve().relative_to(PACKAGE_DIR.parent))


def source_sha256(files: Iterable[str | os.PathLike]) -> str:
    """sha256 over the files' paths (from the package folder) and contents, in path order."""
    digest = hashlib.sha256()
    for name, path in sorted((_relative(path), path) for path in files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def git_state() -> dict[str, Any]:
    """The commit of the checkout this package's source is tracked in, and whether tracked files differ from it; both
    None outside one (an installed wheel, or a copy inside a git-ignored folder of some checkout)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, check=True,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}).stdout

    try:
        git("ls-files", "--error-unmatch", Path(__file__).name)
        status = git("status", "--porcelain=v2", "--branch", "--untracked-files=no").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    commit = next((line.split()[2] for line in status if line.startswith("# branch.oid ")), None)
    return {"git_commit": commit, "git_dirty": any(not line.startswith("#") for line in status)}


def code_version(study: str | None, stage: str, files: Iterable[str | os.PathLike]) -> dict[str, Any]:
    """The version of the code of one stage: package versions, git commit and dirty flag, and the sha256 of the stage's
    source files (``toymodels.studies.stage_code``), which alone tells whether two artifacts were made by the same code."""
    files = list(files)
    return {"study": study, "stage": stage, "toymodels": __version__, "torch": package_version("torch"), **git_state(),
            "source_sha256": source_sha256(files), "source_files": sorted(_relative(path) for path in files)}


def _distinct(metadata: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct code versions recorded in artifacts' metadata (each one's own and its lineage), in study, stage order."""
    versions: dict[str, dict[str, Any]] = {}
    for meta in metadata:
        for version in [*([meta[CODE_KEY]] if CODE_KEY in meta else []), *meta.get(LINEAGE_KEY, [])]:
            versions.setdefault(json.dumps(version, sort_keys=True), version)
    return sorted(versions.values(), key=lambda v: (v["study"] or "", v["stage"], json.dumps(v, sort_keys=True)))


def stage_metadata(study: str | None, stage: str, code: Iterable[str | os.PathLike],
                   inputs: Iterable[str | os.PathLike] = ()) -> dict[str, Any]:
    """The metadata of an artifact a stage writes: its code version and the distinct code versions that made its
    inputs and everything they were made from."""
    from toymodels.artifacts import read_metadata

    return {CODE_KEY: code_version(study, stage, code), LINEAGE_KEY: _distinct(read_metadata(path) for path in inputs)}


def source_key(metadata: Mapping[str, Any]) -> str:
    """12 hex digits naming the source of a stage's code and of the code behind every input (``stage_metadata``'s
    result; package versions included, git state not): a resume snapshot is valid only for the same key."""
    versions = [metadata[CODE_KEY], *metadata.get(LINEAGE_KEY, [])]
    identity = sorted({(v["study"] or "", v["stage"], v["toymodels"], v["torch"], v["source_sha256"]) for v in versions})
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]


def mixed_code_versions(versions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The (study, stage) pairs whose artifacts were made by more than one code version (source hash or package
    version; the commit alone may differ for identical code), each with its versions."""
    groups: dict[tuple[Any, str], dict[tuple[str, str], dict[str, Any]]] = {}
    for version in versions:
        identity = (version["toymodels"], version["source_sha256"])
        groups.setdefault((version["study"], version["stage"]), {}).setdefault(identity, version)
    return [{"study": study, "stage": stage, "versions": [
                {key: v[key] for key in ("toymodels", "source_sha256", "git_commit", "git_dirty")} for v in found.values()]}
            for (study, stage), found in groups.items() if len(found) > 1]


def inputs_provenance(study: str | None, stage: str, artifacts: Iterable[str], code: Iterable[str]) -> dict[str, Any]:
    """What a figure or scorecard was made from: its own code version, every input (artifacts, then source files) with
    its sha256 (artifacts with the code version that wrote them), the distinct code versions behind the artifacts, and
    whether one stage of one study was made by different code (``mixed_code_versions``, ``mixed``)."""
    from toymodels.artifacts import read_metadata, sha256_file

    metadata = {str(path): read_metadata(path) for path in sorted(artifacts)}
    code = sorted(str(path) for path in code)
    versions = _distinct(metadata.values())
    mixed = mixed_code_versions(versions)
    return {
        "code_version": code_version(study, stage, code),
        "inputs": [*({"path": path, "sha256": sha256_file(path), "code_version": meta.get(CODE_KEY)}
                     for path, meta in metadata.items()),
                   *({"path": path, "sha256": sha256_file(path)} for path in code)],
        "input_code_versions": versions,
        "mixed_code_versions": bool(mixed),
        "mixed": mixed,
    }


def figure_provenance(figure: str, study: str, config: Mapping[str, Any], tables: Iterable[str], code: Iterable[str],
                      outputs: Iterable[str]) -> dict[str, Any]:
    """The record written next to every figure."""
    return {"figure": figure, "config": dict(config), **inputs_provenance(study, "figures", tables, code),
            "outputs": sorted(str(path) for path in outputs)}


def _short(version: Mapping[str, Any] | None) -> str:
    """One code version in a line: stage, source hash, package version, commit (and whether it was dirty)."""
    if not version:
        return "no code version recorded"
    commit = version.get("git_commit")
    where = f"commit {commit[:10]}{' (uncommitted edits)' if version.get('git_dirty') else ''}" if commit else \
        "outside a git checkout"
    study = f"{version['study']} " if version.get("study") else ""
    return (f"{study}{version['stage']} code, source sha256 {version['source_sha256'][:12]}, "
            f"toymodels {version['toymodels']}, torch {version['torch']}, {where}")


def provenance_rst(record: Mapping[str, Any], record_path: str) -> str:
    """A figure's provenance (:func:`figure_provenance`'s record) as a reST paragraph for its report caption: the
    code that drew it, each input table with its checksum and the code that wrote it, the code versions behind them,
    and a warning when one stage's artifacts came from different code."""
    tables = [entry for entry in record["inputs"] if "code_version" in entry]
    lines = [f"**Provenance** (the full record: ``{record_path}``)", "",
             f"Drawn by {_short(record['code_version'])}, from:", ""]
    lines += [f"- ``{entry['path']}`` (sha256 {entry['sha256'][:12]}), written by {_short(entry['code_version'])}"
              for entry in tables]
    lines += ["", "Code behind them:", ""]
    lines += [f"- {_short(version)}" for version in record["input_code_versions"]]
    if record["mixed_code_versions"]:
        mixes = "; ".join(f"{entry['study'] or 'the run'} {entry['stage']} by "
                          f"{', '.join(v['source_sha256'][:12] for v in entry['versions'])}" for entry in record["mixed"])
        lines += ["", f"**Mixed code versions**: {mixes}. Rerun ``make figures`` to rebuild them with one version."]
    return "\n".join(lines) + "\n"
