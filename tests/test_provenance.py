"""Code versions: each stage's source files (read from import statements), the code version in every artifact's
metadata, and figure provenance that names the code of every input and flags inputs made by different code."""

import subprocess

import pandas as pd
import pytest
import torch

from toymodels import provenance
from toymodels.artifacts import load_tensors, read_metadata, read_table, save_tensors, write_table
from toymodels.provenance import (
    CODE_KEY,
    LINEAGE_KEY,
    PACKAGE_DIR,
    code_version,
    figure_provenance,
    git_state,
    provenance_rst,
    source_files,
    source_key,
    source_sha256,
    stage_metadata,
)
from toymodels.studies import STAGES, STUDY_NAMES, stage_code


def names(files) -> set[str]:
    return {str(path.relative_to(PACKAGE_DIR)) for path in files}


def test_train_code_is_the_model_and_the_shared_loop_it_imports():
    assert names(stage_code("double_descent", "train")) == {
        "studies/double_descent/model.py", "studies/double_descent/data.py", "studies/double_descent/__init__.py",
        "training.py", "optimizers.py", "schedules.py", "artifacts.py", "grid.py"}


def test_a_study_init_imported_for_its_names_counts_but_its_imports_are_not_followed():
    """dd's data module reads DATA_KEYS from the package ``__init__``, which imports toymodels.tables for the collect
    job's columns: the data code is the ``__init__``, not the collect code behind it."""
    assert names(stage_code("double_descent", "dataset")) == {
        "studies/double_descent/data.py", "studies/double_descent/__init__.py", "grid.py"}


def test_function_level_and_cross_study_imports_are_followed():
    assert {"studies/modular_addition/figures.py", "plotting.py"} <= names(stage_code("modular_addition", "claims"))
    assert {"studies/double_descent/data.py", "studies/monosemanticity/data.py", "training.py"} <= names(
        stage_code("connectivity", "dataset"))
    assert "studies/monosemanticity/model.py" in names(stage_code("connectivity", "train"))


# Studies built on another's models: connectivity trains all of them; the SAE data code (in every stage that
# draws batches) samples a monosemanticity model's hidden activations (its ``activations`` key).
CROSS_STUDY = {"sae": {"studies/monosemanticity/__init__.py", "studies/monosemanticity/data.py"}}


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_every_stage_has_its_entry_modules_and_only_them_among_the_stage_modules(study):
    package = f"studies/{study}"
    entry = {"dataset": "data.py" if study != "connectivity" else "bundle.py",
             "train": "fit.py" if study in ("monosemanticity", "connectivity") else "model.py",
             "measure": "measure.py", "figures": "figures.py", "claims": "claims.py"}
    for stage in STAGES:
        files = names(stage_code(study, stage))
        other_studies = {name for name in files if name.startswith("studies/") and not name.startswith(f"{package}/")
                         and name != "studies/__init__.py"}
        allowed = CROSS_STUDY.get(study, set())
        assert files and (other_studies <= allowed or study == "connectivity"), (stage, other_studies)
        if stage in entry:
            assert f"{package}/{entry[stage]}" in files
    assert names(stage_code(study, "collect")) == {"tables.py"}
    assert "plotting.py" in names(stage_code(study, "figures"))
    assert "training.py" not in names(stage_code(study, "figures")) | names(stage_code(study, "collect"))
    assert "figures.py" not in {name.rpartition("/")[2] for name in names(stage_code(study, "train"))}


def test_unknown_entries_and_stages_are_refused():
    with pytest.raises(ValueError, match="not modules of toymodels"):
        source_files("toymodels.nope")
    with pytest.raises(ValueError, match="unknown stage 'plot'"):
        stage_code("sae", "plot")


def test_source_hash_follows_content_and_names(tmp_path, monkeypatch):
    package = tmp_path / "toymodels"
    package.mkdir()
    a, b = package / "a.py", package / "b.py"
    a.write_text("x = 1\n")
    b.write_text("x = 1\n")
    monkeypatch.setattr(provenance, "PACKAGE_DIR", package)
    before = source_sha256([a])
    assert source_sha256([a]) == before != source_sha256([b]) and source_sha256([a, b]) == source_sha256([b, a])
    a.write_text("x = 2\n")
    assert source_sha256([a]) != before


def test_git_state_names_this_checkout_and_nothing_outside_one(tmp_path, monkeypatch):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True).stdout.strip()
    assert git_state()["git_commit"] == head and isinstance(git_state()["git_dirty"], bool)
    (tmp_path / "toymodels").mkdir()
    monkeypatch.setattr(provenance, "PACKAGE_DIR", tmp_path / "toymodels")
    assert git_state.__wrapped__() == {"git_commit": None, "git_dirty": None}


def test_safetensors_and_parquet_metadata_carry_the_code_version(tmp_path):
    code = stage_code("double_descent", "dataset")
    data = tmp_path / "data.safetensors"
    save_tensors(data, {"x": torch.ones(2)}, {"values": {"T": 4}, **stage_metadata("double_descent", "dataset", code)})
    record = read_metadata(data)[CODE_KEY]
    assert record == code_version("double_descent", "dataset", code)
    assert record["git_commit"] == git_state()["git_commit"] and record["toymodels"] and record["source_sha256"]
    assert record["source_files"] == sorted(f"toymodels/{name}" for name in names(code))
    assert load_tensors(data)[1]["values"] == {"T": 4} and read_metadata(data)[LINEAGE_KEY] == []

    table = tmp_path / "history.parquet"
    write_table(table, pd.DataFrame({"step": [0, 1]}), stage_metadata("double_descent", "train",
                                                                       stage_code("double_descent", "train"), [data]))
    meta = read_metadata(table)
    assert meta[CODE_KEY]["stage"] == "train" and meta[LINEAGE_KEY] == [record]
    assert list(read_table(table).columns) == ["step"]


def test_source_key_follows_the_source_of_the_stage_and_its_inputs_not_the_commit():
    train = stage_metadata("double_descent", "train", stage_code("double_descent", "train"))
    data = code_version("double_descent", "dataset", stage_code("double_descent", "dataset"))
    with_data = {**train, LINEAGE_KEY: [data]}
    assert len(source_key(train)) == 12 and source_key(train) != source_key(with_data)
    recommitted = {CODE_KEY: {**train[CODE_KEY], "git_commit": "0" * 40, "git_dirty": True}, LINEAGE_KEY: [data]}
    assert source_key(recommitted) == source_key(with_data)
    edited_data = {**with_data, LINEAGE_KEY: [{**data, "source_sha256": "e" * 64}]}
    edited_train = {**with_data, CODE_KEY: {**train[CODE_KEY], "source_sha256": "e" * 64}}
    assert len({source_key(with_data), source_key(edited_data), source_key(edited_train)}) == 3


def write_cell_table(path, version, lineage=()):
    write_table(path, pd.DataFrame({"loss": [0.5]}), {CODE_KEY: version, LINEAGE_KEY: list(lineage)})
    return str(path)


def test_figure_provenance_lists_every_input_code_version_and_flags_mixed_ones(tmp_path):
    files = stage_code("double_descent", "train")
    trained = code_version("double_descent", "train", files)
    edited = {**trained, "source_sha256": "0" * 64, "git_commit": "f" * 40}
    recommitted = {**trained, "git_commit": "e" * 40}  # same code at another commit: not a mix
    measured = code_version("double_descent", "measure", stage_code("double_descent", "measure"))
    figure_code = [str(path) for path in stage_code("double_descent", "figures")]

    same = [write_cell_table(tmp_path / f"same{i}.parquet", measured, [version]) for i, version in
            enumerate([trained, recommitted])]
    record = figure_provenance("f", "double_descent", {"figure": {}}, same, figure_code, ["f.png"])
    assert record["mixed_code_versions"] is False and record["mixed"] == []
    assert {(v["stage"], v["git_commit"]) for v in record["input_code_versions"]} == {
        ("measure", measured["git_commit"]), ("train", trained["git_commit"]), ("train", "e" * 40)}
    assert [entry["code_version"] for entry in record["inputs"] if entry["path"] in same] == [measured, measured]
    assert {entry["path"] for entry in record["inputs"]} == {*same, *figure_code}
    assert record["code_version"]["stage"] == "figures" and record["outputs"] == ["f.png"]

    mixed = [*same, write_cell_table(tmp_path / "mixed.parquet", measured, [edited])]
    record = figure_provenance("f", "double_descent", {}, mixed, figure_code, [])
    assert record["mixed_code_versions"] is True
    (entry,) = record["mixed"]
    assert (entry["study"], entry["stage"]) == ("double_descent", "train")
    assert {v["source_sha256"] for v in entry["versions"]} == {trained["source_sha256"], "0" * 64}


def test_provenance_rst_names_every_input_table_its_writer_and_a_mix(tmp_path):
    measured = code_version("double_descent", "measure", stage_code("double_descent", "measure"))
    trained = code_version("double_descent", "train", stage_code("double_descent", "train"))
    edited = {**trained, "source_sha256": "0" * 64}
    figure_code = [str(path) for path in stage_code("double_descent", "figures")]
    tables = [write_cell_table(tmp_path / "a.parquet", measured, [trained])]
    record = figure_provenance("f", "double_descent", {}, tables, figure_code, [])
    text = provenance_rst(record, "results/figures/f.json")
    assert text.startswith("**Provenance** (the full record: ``results/figures/f.json``)")
    assert f"``{tables[0]}`` (sha256 {record['inputs'][0]['sha256'][:12]}), written by double_descent measure code, " \
           f"source sha256 {measured['source_sha256'][:12]}" in text
    assert f"- double_descent train code, source sha256 {trained['source_sha256'][:12]}" in text
    assert figure_code[0] not in text and "Mixed code versions" not in text

    tables.append(write_cell_table(tmp_path / "b.parquet", measured, [edited]))
    text = provenance_rst(figure_provenance("f", "double_descent", {}, tables, figure_code, []), "f.json")
    assert "**Mixed code versions**: double_descent train by " in text and "000000000000" in text
