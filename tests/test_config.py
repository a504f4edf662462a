"""Bad configs are rejected before any job runs, with the key path and what is allowed."""

import copy

import pytest
import yaml

from conftest import ROOT, run_snakemake
from toymodels.config import ConfigError, load_config_file, load_schema, validate_config
from toymodels.studies import STUDY_NAMES, load_study

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def plots_of(config: dict) -> dict:
    return {name: load_study(name).PLOTS for name in config["studies"] if name in STUDY_NAMES}


QUICK = load_config_file(ROOT / "config" / "quick.yaml")
PLOTS = plots_of(QUICK)
DD = ("studies", "double_descent")


def mutate(path: tuple, value):
    """A copy of the quick config with the value at ``path`` replaced (``...`` deletes the key)."""
    config = copy.deepcopy(QUICK)
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


BAD = {
    "unknown top-level key": (("verbose",), True,
                              r"<config root>: unknown key\(s\) \['verbose'\]; allowed keys: \['device', 'studies', 'threads'\]"),
    "unknown study": (("studies", "grokking"), {}, r"studies: unknown key\(s\) \['grokking'\]; allowed keys: \[.*'double_descent'"),
    "no study at all": (("studies",), {}, r"studies: \{\} should be non-empty"),
    "unknown device": (("device",), "gpu", r"device: 'gpu' is not allowed; allowed values: \['auto', 'cpu', 'cuda'\]"),
    "zero threads": (("threads",), 0, r"threads: 0 is less than the minimum of 1"),
    "unknown hyperparameter": ((*DD, "defaults", "hidden"), 3,
                               r"studies.double_descent.defaults: unknown key\(s\) \['hidden'\]; allowed keys: \['T',"),
    "missing hyperparameter": ((*DD, "defaults", "lr"), ..., r"studies.double_descent.defaults: 'lr' is a required property"),
    "wrong type": ((*DD, "defaults", "m"), "two", r"studies.double_descent.defaults.m: 'two' is not of type 'integer'"),
    "negative size": ((*DD, "defaults", "n_features"), -5, r"defaults.n_features: -5 is less than the minimum of 1"),
    "zero m": ((*DD, "defaults", "m"), 0, r"defaults.m: 0 is less than the minimum of 1"),
    "T below 1": ((*DD, "defaults", "T"), 0, r"defaults.T: 0 is less than the minimum of 1"),
    "sparsity of one": ((*DD, "defaults", "sparsity"), 1.0, r"defaults.sparsity: 1.0 is greater than or equal to the maximum of 1"),
    "negative sparsity": ((*DD, "defaults", "sparsity"), -0.1, r"defaults.sparsity: -0.1 is less than the minimum of 0"),
    "zero learning rate": ((*DD, "defaults", "lr"), 0, r"defaults.lr: 0 is less than or equal to the minimum of 0"),
    "zero seeds": ((*DD, "defaults", "n_seeds"), 0, r"defaults.n_seeds: 0 is less than the minimum of 1"),
    "unknown optimizer": ((*DD, "defaults", "optimizer"), "sgd",
                          r"defaults.optimizer: 'sgd' is not allowed; allowed values: \['adamw', 'lamb'\]"),
    "unknown schedule": ((*DD, "defaults", "schedule"), "step",
                         r"defaults.schedule: 'step' is not allowed; allowed values: \['warmup_cosine'"),
    "unknown loss": ((*DD, "defaults", "loss"), "hinge",
                     r"defaults.loss: 'hinge' is not allowed; allowed values: \['mse', 'l1', 'huber'\]"),
    "unknown hidden activation": ((*DD, "defaults", "hidden_activation"), "tanh",
                                  r"defaults.hidden_activation: 'tanh' is not allowed; allowed values: \['none', 'relu'\]"),
    "T neither a size nor null": ((*DD, "defaults", "T"), "infinite", r"defaults.T: 'infinite' is not of type 'integer', 'null'"),
    "unknown SAE resampling method": (("studies", "sae", "defaults", "resample_method"), "random",
                                      r"defaults.resample_method: 'random' is not allowed; allowed values: "
                                      r"\['loss_squared', 'top_k', 'cluster'\]"),
    "warm-up beyond training": ((*DD, "defaults", "warmup_fraction"), 1.5, r"warmup_fraction: 1.5 is greater than the maximum of 1"),
    "empty sweep list": ((*DD, "grids", "dataset_size", "sweep", "T"), [], r"grids.dataset_size.sweep.T: \[\] should be non-empty"),
    "no grids": ((*DD, "grids"), {}, r"studies.double_descent.grids: \{\} should be non-empty"),
    "swept value out of range": ((*DD, "grids", "dataset_size", "sweep", "m"), [2, 0],
                                 r"grids.dataset_size \(cell m=0/T=4\): m: 0 is less than the minimum of 1"),
    "swept key unknown": ((*DD, "grids", "dataset_size", "sweep", "width"), [2],
                          r"grids.dataset_size.sweep: 'width' is not allowed; allowed values: \['n_features', 'sparsity', 'm', 'T'"),
    "repeated swept values": ((*DD, "grids", "dataset_size", "sweep", "T"), [4, 4], r"grids.dataset_size.sweep.T: values repeat"),
    "unknown grid key": ((*DD, "grids", "dataset_size", "sweeps"), {"m": [2]},
                         r"grids.dataset_size: unknown key\(s\) \['sweeps'\]; allowed keys: \['cases', 'set', 'sweep'\]"),
    "reserved grid name": ((*DD, "grids", "datasets"), {"sweep": {"m": [2]}}, r"grids.datasets: grid name 'datasets' is reserved"),
    "grid name with a slash": ((*DD, "grids", "a/b"), {"sweep": {"m": [2]}}, r"grids: 'a/b' does not match"),
    "figure names a missing grid": ((*DD, "figures", "double_descent_heatmap", "grids"), {"sweep": "nope"},
                                    r"figures.double_descent_heatmap.grids.sweep: grid 'nope' does not exist; grids of double_descent: \["),
    "figure with an unknown plot": ((*DD, "figures", "double_descent_heatmap", "plot"), "pie",
                                    r"figures.double_descent_heatmap.plot: 'pie' is not allowed; allowed values: \['dimensionality',"),
    "figure with wrong grid roles": ((*DD, "figures", "double_descent_heatmap", "grids"), {"main": "dataset_size"},
                                     r"figures.double_descent_heatmap.grids: needs exactly the roles \['sweep'\], got \['main'\]"),
    "figure without grids": ((*DD, "figures", "double_descent_heatmap", "grids"), ...,
                             r"figures.double_descent_heatmap: 'grids' is a required property"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_is_rejected_with_key_path_and_allowed_values(case):
    path, value, message = BAD[case]
    with pytest.raises(ConfigError, match=message):
        validate_config(mutate(path, value), SCHEMA, PLOTS)


def test_shipped_configs_are_valid():
    for name in ("config/config.yaml", "config/paper.yaml", "config/quick.yaml"):
        config = load_config_file(ROOT / name)
        validate_config(config, SCHEMA, plots_of(config))


def test_duplicate_grid_names_are_rejected(tmp_path):
    text = (ROOT / "config" / "quick.yaml").read_text()
    duplicated = text.replace("      repeated:\n", "      dataset_size:\n", 1)
    path = tmp_path / "dup.yaml"
    path.write_text(duplicated)
    with pytest.raises(ConfigError, match=r"dup.yaml: line \d+: key 'dataset_size' appears twice"):
        load_config_file(path)


@pytest.mark.workflow
def test_workflow_rejects_bad_config_before_any_job(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(mutate((*DD, "defaults", "sparsity"), 1.5)))
    result = run_snakemake(tmp_path, "--cores", "1", f"--configfile={path}", check=False)
    assert result.returncode != 0
    assert "studies.double_descent.defaults.sparsity: 1.5 is greater than or equal to the maximum of 1" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def rejection_message(case: str) -> str:
    path, value, _ = BAD[case]
    with pytest.raises(ConfigError) as error:
        validate_config(mutate(path, value), SCHEMA, PLOTS)
    return str(error.value).split("\n")[1].strip()


def write_config_errors_doc() -> None:
    """Regenerate docs/config-errors.md: `.venv/bin/python tests/test_config.py`."""
    rows = [f"| {case} | `{'.'.join(map(str, BAD[case][0]))}` = `{'(deleted)' if BAD[case][1] is ... else repr(BAD[case][1])}` "
            f"| `{rejection_message(case)}` |" for case in BAD]
    (ROOT / "docs" / "config-errors.md").write_text(
        "# Rejected configs and their messages\n\n"
        "Every config is checked before any job starts (`toymodels.config.validate_config`, called from\n"
        "`workflow/rules/common.smk`; duplicate keys by `toymodels.config.load_config_file`). Each case below is\n"
        "a test in `tests/test_config.py` (the quick config with one value changed); the message is what\n"
        "`snakemake` prints after `invalid config:`. Several problems are reported together. Regenerate with\n"
        "`.venv/bin/python tests/test_config.py`.\n\n| case | change | message |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n| duplicate grid names | two `dataset_size:` keys under `grids` | `<file>: line N: key 'dataset_size' "
        "appears twice in the same block (first on line M); names must be unique` |\n")


def test_docs_list_every_rejected_config_with_its_message():
    """docs/config-errors.md shows each case above with the message users actually get."""
    doc = (ROOT / "docs" / "config-errors.md").read_text()
    for case in BAD:
        assert f"| {case} |" in doc and rejection_message(case) in doc, f"docs/config-errors.md is stale for {case!r}"


if __name__ == "__main__":
    write_config_errors_doc()
