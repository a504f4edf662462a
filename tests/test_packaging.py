"""pip users (pyproject.toml) and conda users (environment.yml) get the same pins."""

import re
import tomllib

import yaml

from conftest import ROOT


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_pins = {entry for block in environment["dependencies"] if isinstance(block, dict) for entry in block["pip"]}
    assert "-e ." in conda_pins  # conda users (and --use-conda jobs) get the toymodels package itself
    conda_pins.discard("-e .")
    assert pip_pins == conda_pins
    assert "torch==2.13.0" in pip_pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9.]*", pin) for pin in pip_pins)
