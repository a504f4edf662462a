import pandas as pd
import pytest
import torch

from toymodels.artifacts import ArtifactError, load_tensors, read_table, save_tensors, write_table


def test_tensors_roundtrip_with_metadata(tmp_path):
    path = tmp_path / "a.safetensors"
    save_tensors(path, {"W": torch.arange(6.0).reshape(2, 3)}, {"seeds": [1, 2]})
    tensors, meta = load_tensors(path)
    assert torch.equal(tensors["W"], torch.arange(6.0).reshape(2, 3)) and meta == {"seeds": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_tensors_are_detected_with_the_file_named(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"W": torch.randn(50, 50)})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"model\.safetensors.*rebuild"):
        load_tensors(path)


def test_damaged_parquet_is_detected(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, pd.DataFrame({"x": range(1000), "y": [0.5] * 1000}))
    assert read_table(path)["x"].sum() == 499500
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ArtifactError, match=r"t\.parquet.*rebuild"):
        read_table(path)


def test_failed_write_leaves_nothing_behind(tmp_path):
    class Boom(Exception):
        pass

    frame = pd.DataFrame({"x": [object()]})  # pyarrow cannot convert: the write fails midway
    with pytest.raises(Exception):
        write_table(tmp_path / "bad.parquet", frame)
    assert list(tmp_path.iterdir()) == []
