"""The study contract (docs/adding-a-study.md): light packages, lazy heavy entry points, one function per plot."""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from toymodels.studies import STUDY_NAMES, LazyExports, draw, load_study
from toymodels.tables import INDEX_TABLE

HEAVY = ("torch", "matplotlib", "sklearn", "scipy")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_package_imports_no_heavy_module(study: str) -> None:
    """What the Snakemake process and every figure job read must not import torch, matplotlib, sklearn or scipy."""
    code = (f"import sys, toymodels.studies.{study} as s; s.DATA_KEYS, s.SEED_KEYS, s.TABLES, s.PLOTS, s.KEY_COLUMNS, s.resources; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"toymodels.studies.{study} imports {loaded} at package level"


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_table_names_leave_room_for_history_and_the_grid_index(study: str) -> None:
    tables = load_study(study).TABLES
    assert len(set(tables)) == len(tables) and not {"history", INDEX_TABLE} & set(tables)


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_entry_points_resolve_with_the_contract_signature(study: str) -> None:
    module = load_study(study)
    for submodule in ("measure", "figures"):  # importing submodules first must not shadow the entry points
        importlib.import_module(f"toymodels.studies.{study}.{submodule}")
    train_parameters = list(inspect.signature(module.train_model).parameters)
    assert train_parameters[:5] == ["params", "data", "seeds", "device", "resume_path"]
    assert list(inspect.signature(module.measure_cell).parameters)[:5] == ["params", "seeds", "data", "model", "checkpoints"]
    assert callable(module.make_dataset)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        module.nope


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_every_plot_has_its_drawing_function(study: str) -> None:
    figures = importlib.import_module(f"toymodels.studies.{study}.figures")
    for plot, roles in load_study(study).PLOTS.items():
        assert list(inspect.signature(getattr(figures, plot)).parameters) == ["tables", "options"], plot
        assert roles and all(isinstance(role, str) for role in roles)


@pytest.mark.parametrize("study", STUDY_NAMES)
def test_seed_keys_are_hyperparameters_and_include_the_data_keys(study: str) -> None:
    """Seeds derive from the keys that fix shapes and data (grid.Cell.instance_seeds): schema keys, data keys included."""
    module = load_study(study)
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "studies" / f"{study}.schema.yaml").read_text())
    assert set(module.DATA_KEYS) <= set(module.SEED_KEYS) <= set(schema["properties"])
    assert "n_seeds" not in module.SEED_KEYS


def test_draw_rejects_an_unknown_plot_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown plot 'pie' of double_descent; allowed values: \['dimensionality'"):
        draw("double_descent", "pie", {}, {})


def test_an_export_named_like_a_submodule_is_refused() -> None:
    with pytest.raises(ValueError, match=r"exported names \['measure'\] are also submodule names"):
        LazyExports("toymodels.studies.sae", measure="measure")
