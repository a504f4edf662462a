"""Artifacts on disk: safetensors and Parquet I/O with atomic writes, checksums and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:  # torch is imported where tensors are handled: table-only jobs skip its ~2 s import
    import torch

CHECKSUM_KEY = "toymodels_sha256"


class ArtifactError(RuntimeError):
    """An artifact is missing, truncated or altered; the message says how to rebuild it."""


def _rebuild_hint(path: Path) -> str:
    return f"delete it and rebuild with `snakemake --cores N {path}` (or rerun the target that needs it)"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on failure removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def tensors_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in sorted name order."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> None:
    """Write tensors atomically with a content checksum; ``metadata`` values are stored as JSON."""
    from safetensors.torch import save_file

    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    meta = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    meta[CHECKSUM_KEY] = tensors_checksum(cpu)
    with atomic_path(path) as tmp:
        save_file(cpu, str(tmp), metadata=meta)


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read tensors and metadata, verifying the checksum written by :func:`save_tensors`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: missing; {_rebuild_hint(path)}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_meta = handle.metadata() or {}
        tensors = load_file(str(path))
    except Exception as error:  # safetensors raises several types for truncated or garbled headers
        raise ArtifactError(f"{path}: not a readable safetensors file ({error}); {_rebuild_hint(path)}") from error
    expected = raw_meta.get(CHECKSUM_KEY)
    if expected is None or tensors_checksum(tensors) != expected:
        raise ArtifactError(f"{path}: checksum mismatch (the file was altered or written by another tool); {_rebuild_hint(path)}")
    return {name: t.to(device) for name, t in tensors.items()}, _decoded(raw_meta)


def _decoded(raw: Mapping[str | bytes, str | bytes]) -> dict[str, Any]:
    """JSON-decoded metadata, without the entries toymodels did not write as JSON (checksum, pandas schema)."""
    keys = {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}
    return {key: json.loads(value) for key, value in keys.items() if key not in (CHECKSUM_KEY, "pandas")}


def write_table(path: str | os.PathLike, table: pd.DataFrame, metadata: Mapping[str, Any] | None = None) -> None:
    """Write a DataFrame to Parquet atomically, with page checksums, and no pandas index; ``metadata`` values are stored
    as JSON in the file's key-value metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        arrow = arrow.replace_schema_metadata({**arrow.schema.metadata, **{key: json.dumps(value, sort_keys=True)
                                                                          for key, value in metadata.items()}})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, write_page_checksum=True, compression="zstd")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet table, verifying page checksums; errors name the file and how to rebuild it."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: missing; {_rebuild_hint(path)}")
    try:
        return pq.read_table(path, page_checksum_verification=True).to_pandas()
    except Exception as error:
        raise ArtifactError(f"{path}: not a readable Parquet file ({error}); {_rebuild_hint(path)}") from error


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a safetensors or Parquet file, read from its header or footer only (never its data)."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: missing; {_rebuild_hint(path)}")
    try:
        if path.suffix == ".parquet":
            return _decoded(pq.read_schema(path).metadata or {})
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            return _decoded(handle.metadata() or {})
    except Exception as error:
        raise ArtifactError(f"{path}: unreadable metadata ({error}); {_rebuild_hint(path)}") from error


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str | os.PathLike, text: str) -> None:
    """A text file, written atomically (an interrupted job leaves no half-written file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
