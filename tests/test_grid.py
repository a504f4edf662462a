import pytest

from toymodels.grid import cell_path, data_path, derive_seed, format_value, grid_cells, home_name, home_values, study_cells


def test_format_value_is_readable():
    assert [format_value(v) for v in (2, 0.001, 1e-5, True, "lamb", 1.0)] == ["2", "0.001", "1e-05", "true", "lamb", "1"]


def test_cell_path_keeps_sweep_order_and_has_a_default():
    assert cell_path({"m": 2, "T": 1000}) == "m=2/T=1000"
    assert cell_path({}) == "default"


def test_grid_cells_product_times_cases_over_defaults_and_set():
    defaults = {"m": 1, "T": 5, "lr": 0.1, "n_seeds": 2}
    spec = {"set": {"lr": 0.01}, "sweep": {"m": [2, 3], "T": [10]}, "cases": [{"optimizer": "adamw"}, {"optimizer": "lamb"}]}
    cells = grid_cells("s", "g", defaults, spec)
    assert [c.path for c in cells] == [
        "m=2/T=10/optimizer=adamw", "m=2/T=10/optimizer=lamb", "m=3/T=10/optimizer=adamw", "m=3/T=10/optimizer=lamb"]
    assert cells[0].params == {"m": 2, "T": 10, "lr": 0.01, "n_seeds": 2, "optimizer": "adamw"}
    assert cells[0].directory == "s/cells/T=10__lr=0.01__m=2__optimizer=adamw"  # every value off the defaults, sorted


def test_seeds_are_stable_distinct_and_independent_of_seed_count():
    a = grid_cells("s", "g", {"m": 1, "n_seeds": 3}, {"sweep": {"m": [2]}})[0]
    b = grid_cells("s", "other_grid", {"m": 1, "n_seeds": 5}, {"sweep": {"m": [2]}})[0]
    assert a.instance_seeds(("m",)) == b.instance_seeds(("m",))[:3]
    assert len(set(b.instance_seeds(("m",)))) == 5
    assert derive_seed("x", 1) == derive_seed("x", 1) != derive_seed("x", 2)
    assert 0 <= derive_seed("x") < 2**63


def test_cells_of_a_sweep_share_seeds_unless_a_seed_key_differs():
    cells = grid_cells("s", "g", {"m": 2, "lr": 0.1, "history_points": 10, "n_seeds": 2},
                       {"sweep": {"lr": [0.1, 0.01], "history_points": [10, 40], "m": [2, 3]}})
    seeds = {(c.params["lr"], c.params["history_points"], c.params["m"]): c.instance_seeds(("m",)) for c in cells}
    assert seeds[(0.1, 10, 2)] == seeds[(0.01, 10, 2)] == seeds[(0.01, 40, 2)]
    assert seeds[(0.1, 10, 2)] != seeds[(0.1, 10, 3)]
    assert seeds[(0.1, 10, 2)] != grid_cells("other", "g", {"m": 2, "n_seeds": 2}, {})[0].instance_seeds(("m",))


def test_data_path_uses_only_data_keys():
    assert data_path({"T": 10, "m": 2, "sparsity": 0.99}, ("sparsity", "T")) == "sparsity=0.99/T=10"
    assert data_path({"T": 10, "source": None}, ("T", "source")) == "T=10"  # an unset optional data key


def test_home_values_are_the_values_off_the_defaults_in_key_order():
    assert home_values({"m": 2, "T": 10, "lr": 1, "extra": "x"}, {"m": 2, "T": 5, "lr": 1.0}) == {
        "T": 10, "extra": "x", "lr": 1}  # 1 and 1.0 differ: their hashes (and seeds) would too


def test_home_names_are_one_readable_directory_with_digests_for_what_is_not_path_safe():
    assert home_name({}) == "default"
    assert home_name({"T": 4, "lr": 1e-5, "relu": True, "optimizer": "lamb"}) == "T=4__lr=1e-05__relu=true__optimizer=lamb"
    named = home_name({"inits": ["xavier", "svd"], "grid": "a b", "where": {"m": 2}})
    assert named.startswith("inits=~") and len(named.split("__")) == 3 and named.count("=~") == 3
    assert named != home_name({"inits": ["xavier"], "grid": "a b", "where": {"m": 2}})
    long = home_name({f"key_{i}": 0.123456 for i in range(20)})
    assert long.startswith("~") and len(long) == 13


def test_cells_shared_by_grids_have_one_home_named_by_their_hyperparameters():
    block = {"defaults": {"m": 2, "T": 10, "wd": 0.01},
             "grids": {"size": {"sweep": {"T": [10, 20]}}, "decay": {"sweep": {"wd": [0.01, 1.0]}}, "one": {}}}
    cells = study_cells("s", block)
    assert list(cells) == [("size", "T=10"), ("size", "T=20"), ("decay", "wd=0.01"), ("decay", "wd=1"), ("one", "default")]
    assert [cells[key].directory for key in cells] == [
        "s/cells/default", "s/cells/T=20", "s/cells/default", "s/cells/wd=1", "s/cells/default"]


def test_homes_do_not_depend_on_the_order_or_number_of_grids():
    defaults = {"m": 2, "T": 10, "wd": 0.01}
    grids = {"size": {"sweep": {"T": [10, 20]}}, "decay": {"set": {"T": 20}, "sweep": {"wd": [0.01, 1.0]}}}
    homes = {key: c.directory for key, c in study_cells("s", {"defaults": defaults, "grids": grids}).items()}
    reordered = {"new": {"sweep": {"m": [2, 4]}}, **dict(reversed(grids.items()))}
    moved = {key: c.directory for key, c in study_cells("s", {"defaults": defaults, "grids": reordered}).items()}
    assert {key: moved[key] for key in homes} == homes
    assert homes[("decay", "wd=0.01")] == homes[("size", "T=20")] == "s/cells/T=20"


def test_values_that_print_alike_but_differ_are_refused():
    block = {"defaults": {"lr": 0.5}, "grids": {"a": {"sweep": {"lr": [1]}}, "b": {"sweep": {"lr": [1.0]}}}}
    with pytest.raises(ValueError, match="a/lr=1 and b/lr=1 would share the home s/cells/lr=1"):
        study_cells("s", block)
