from toymodels.grid import cell_path, data_path, derive_seed, format_value, grid_cells, home_cells, study_cells


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
    assert cells[0].directory == "s/g/m=2/T=10/optimizer=adamw"


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


def test_cells_shared_by_grids_have_one_home_the_first_in_config_order():
    block = {"defaults": {"m": 2, "T": 10, "wd": 0.01},
             "grids": {"size": {"sweep": {"T": [10, 20]}}, "decay": {"sweep": {"wd": [0.01, 1.0]}}, "one": {}}}
    cells = study_cells("s", block)
    assert list(cells) == [("size", "T=10"), ("size", "T=20"), ("decay", "wd=0.01"), ("decay", "wd=1"), ("one", "default")]
    homes = home_cells(cells)
    assert [homes[key].directory for key in cells] == ["s/size/T=10", "s/size/T=20", "s/size/T=10", "s/decay/wd=1", "s/size/T=10"]
    assert homes[("decay", "wd=0.01")].swept == {"T": 10}  # the home keeps its own swept values; views relabel
