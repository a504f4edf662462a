"""The double-descent claims on small hand-made tables: each check once holding, once failing, and short of cells."""

import pandas as pd
import pytest

from toymodels.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, evaluate
from toymodels.studies.double_descent.claims import (
    CLAIMS,
    best_test_loss,
    generalising_onset,
    variant_label,
)

BY_ID = {claim.id: claim for claim in CLAIMS}


def table(columns: str, *rows: tuple) -> pd.DataFrame:
    """Rows of the named columns; every row is its cell's best seed unless a ``selected`` column says otherwise."""
    frame = pd.DataFrame(rows, columns=columns.split())
    return frame if "selected" in frame else frame.assign(selected=True)


def judge(claim_id: str, **grids: pd.DataFrame) -> dict:
    """The scorecard row of one claim, each grid given by its instances table."""
    (row,) = evaluate("double_descent", (BY_ID[claim_id],), {grid: {"instances": t} for grid, t in grids.items()})
    return row


def losses(*per_m: tuple[int, list[int], list[float]]) -> pd.DataFrame:
    """Best-seed test losses, one (m, T values, losses) per m, plus a worse seed per cell that must be ignored."""
    rows = [(m, t, loss, True) for m, ts, values in per_m for t, loss in zip(ts, values, strict=True)]
    rows += [(m, t, 100.0 * (i + 1), False) for i, (m, t, _, _) in enumerate(list(rows))]
    return table("m T test_loss selected", *rows)


def test_best_test_loss_reads_the_best_seed_and_averages_data_seeds():
    instances = table("m T data_seed test_loss selected", (2, 3, 0, 1.0, True), (2, 3, 1, 2.0, True),
                      (2, 3, 0, 9.0, False))
    assert best_test_loss(instances).loc[2, 3] == 1.5


def test_datapoint_dimensionality_compares_with_the_ceiling_min_1_m_over_T():
    holds = table("m T mean_datapoint_dimensionality", (2, 3, 0.6), (5, 3, 0.9), (2, 100, 0.001))
    fails = table("m T mean_datapoint_dimensionality", (2, 3, 0.3), (5, 3, 0.9))
    row = judge("datapoint_dimensionality", dataset_size=holds)
    assert row["verdict"] == REPRODUCED and row["measured"] == "at T = 3, mean D_t / min(1, m/T) = 0.90 (m = 2), 0.90 (m = 5)"
    assert judge("datapoint_dimensionality", dataset_size=fails)["verdict"] == NOT_REPRODUCED


def test_regime_switch_needs_data_points_first_then_features():
    columns = "m T mean_datapoint_dimensionality max_feature_dimensionality"
    holds = table(columns, (2, 3, 0.6, 0.1), (2, 1000, 0.01, 0.3))
    fails = table(columns, (2, 3, 0.6, 0.1), (2, 1000, 0.01, 0.005))
    assert judge("regime_switch", dataset_size=holds)["verdict"] == REPRODUCED
    assert judge("regime_switch", dataset_size=fails)["verdict"] == NOT_REPRODUCED
    assert judge("regime_switch", dataset_size=holds.head(1))["verdict"] == NOT_MEASURED


def test_test_loss_peak_must_lie_strictly_inside_the_T_range():
    holds = losses((2, [3, 100, 1000], [1.0, 1.5, 0.9]), (3, [3, 100, 1000], [1.0, 1.2, 1.0]))
    fails = losses((2, [3, 100, 1000], [1.0, 1.5, 0.9]), (3, [3, 100, 1000], [1.0, 1.1, 1.2]))
    row = judge("test_loss_peak", dataset_size=holds)
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == "peak test loss at T = 100 (m = 2, 1.50), T = 100 (m = 3, 1.20); grid T = 3 .. 1000"
    assert judge("test_loss_peak", dataset_size=fails)["verdict"] == NOT_REPRODUCED
    short = judge("test_loss_peak", dataset_size=losses((2, [3, 100], [1.0, 1.5])))
    assert (short["verdict"], short["measured"]) == (NOT_MEASURED, "needs at least 3 values of T in the dataset_size grid, has 2")


def test_peak_moves_to_larger_T_as_m_grows():
    ts = [3, 100, 1000, 5000]
    holds = losses((2, ts, [1.0, 1.5, 0.9, 0.9]), (3, ts, [1.0, 1.5, 0.9, 0.9]), (4, ts, [1.0, 1.0, 1.2, 0.9]))
    fails = losses((2, ts, [1.0, 1.0, 1.2, 0.9]), (3, ts, [1.0, 1.5, 0.9, 0.9]))
    assert judge("peak_moves_with_m", dataset_size=holds)["verdict"] == REPRODUCED
    assert judge("peak_moves_with_m", dataset_size=fails)["verdict"] == NOT_REPRODUCED
    assert judge("peak_moves_with_m", dataset_size=losses((2, ts, [1.0, 1.5, 0.9, 0.9])))["verdict"] == NOT_MEASURED


def test_peak_regularisation_more_decay_lowers_it_longer_training_raises_it():
    decay = table("weight_decay T test_loss", (0.01, 10, 1.0), (0.01, 100, 1.5), (1.0, 10, 1.0), (1.0, 100, 1.05))
    longer = table("steps T test_loss", (500, 10, 1.0), (500, 100, 1.1), (6000, 10, 1.0), (6000, 100, 8.0))
    shorter = longer.assign(steps=longer["steps"].map({500: 6000, 6000: 500}))
    row = judge("peak_regularisation", weight_decay=decay, training_length=longer)
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("highest test loss over T: 1.50 (weight decay 0.01), 1.05 (weight decay 1); "
                               "1.10 (steps 500), 8.00 (steps 6000)")
    assert judge("peak_regularisation", weight_decay=decay, training_length=shorter)["verdict"] == NOT_REPRODUCED
    one_decay = decay[decay["weight_decay"] == 0.01]
    assert judge("peak_regularisation", weight_decay=one_decay, training_length=longer)["verdict"] == NOT_MEASURED


def feature_dims(by: str, curves: dict[float, list[float]], ts: tuple[int, ...] = (10, 100, 1000)) -> pd.DataFrame:
    """Max feature dimensionality per (by, T), as two seeds whose mean is the given curve."""
    rows = [(value, t, seed, dim + (0.01 if seed else -0.01)) for value, dims in curves.items()
            for t, dim in zip(ts, dims, strict=True) for seed in (0, 1)]
    return table(f"{by} T seed max_feature_dimensionality", *rows)


def test_generalising_onset_is_the_first_T_at_half_the_highest_value():
    onsets = generalising_onset(feature_dims("weight_decay", {0.01: [0.05, 0.2, 0.3], 1.0: [0.05, 0.1, 0.3]}), "weight_decay")
    assert onsets == {0.01: 100, 1.0: 1000}


def test_generalising_onset_is_sought_after_the_small_T_bump():
    u_shaped = feature_dims("weight_decay", {0.01: [0.3, 0.05, 0.3], 1.0: [0.2, 0.04, 0.25]})
    assert generalising_onset(u_shaped, "weight_decay") == {0.01: 1000, 1.0: 1000}


def test_a_curve_that_does_not_double_after_its_dip_has_no_jump_in_the_grid():
    # S = 0.997 at T <= 1000: the dip at T = 100, then 0.046 (< twice the dip): its half-maximum point is the dip itself
    no_jump = feature_dims("sparsity", {0.9: [0.05, 0.3, 0.3], 0.997: [0.3, 0.032, 0.046]})
    assert generalising_onset(no_jump, "sparsity") == {0.9: 100, 0.997: None}
    row = judge("scale_vs_sparsity", sparsity=no_jump)
    assert row["verdict"] == NOT_REPRODUCED
    assert row["measured"].startswith("after its dip, max feature dimensionality reaches half its highest value at "
                                      "T = 100 (S = 0.9), no jump in the grid (S = 0.997); grid T")


def test_generalising_scale_does_not_move_with_weight_decay():
    same = feature_dims("weight_decay", {0.01: [0.05, 0.05, 0.3], 1.0: [0.04, 0.06, 0.25]})
    moved = feature_dims("weight_decay", {0.01: [0.05, 0.05, 0.3], 1.0: [0.05, 0.3, 0.3]})
    flat = feature_dims("weight_decay", {0.01: [0.3, 0.3, 0.3], 1.0: [0.3, 0.3, 0.3]})
    row = judge("scale_vs_weight_decay", weight_decay=same)
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("after its dip, max feature dimensionality reaches half its highest value at T = 1000 "
                               "(weight decay 0.01), 1000 (weight decay 1); grid T = 10 .. 1000")
    assert judge("scale_vs_weight_decay", weight_decay=moved)["verdict"] == NOT_REPRODUCED
    assert judge("scale_vs_weight_decay", weight_decay=flat)["verdict"] == NOT_REPRODUCED
    one = same[same["weight_decay"] == 0.01]
    assert judge("scale_vs_weight_decay", weight_decay=one)["verdict"] == NOT_MEASURED


def test_generalising_scale_lines_up_against_T_times_density():
    follows = feature_dims("sparsity", {0.9: [0.05, 0.3, 0.3], 0.99: [0.05, 0.05, 0.3]})
    ignores = feature_dims("sparsity", {0.9: [0.05, 0.05, 0.3], 0.99: [0.05, 0.05, 0.3]})
    row = judge("scale_vs_sparsity", sparsity=follows)
    assert row["verdict"] == REPRODUCED
    assert "T(1-S) = 10 (S = 0.9), 10 (S = 0.99): spread x10 in T, x1 in T(1-S)" in row["measured"]
    assert judge("scale_vs_sparsity", sparsity=ignores)["verdict"] == NOT_REPRODUCED


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_claim_is_not_measured_on_a_config_without_its_grids(claim):
    (row,) = evaluate("double_descent", (claim,), {})
    assert row["verdict"] == NOT_MEASURED and row["measured"].startswith("the config has no grid")


def repeat_grid(dims: dict[int, list[float]], share: dict[int, float], test_loss: float = 0.9) -> dict:
    """A repeated_generalising grid (best seed only): features along +y, the repeated point along +x."""
    instances = table("repeat_count T seed test_loss", *[(r, 1000, 0, test_loss) for r in dims])
    features = pd.DataFrame([(r, 0, i, d, 0.0, 1.0) for r, ds in dims.items() for i, d in enumerate(ds)],
                            columns=["repeat_count", "seed", "feature", "dimensionality", "x", "y"])
    points = pd.DataFrame([(r, 0, 0, share.get(r, 0.0) / r, 1.0, 1.0, 0.0) for r in dims],
                          columns=["repeat_count", "seed", "sample", "dimensionality", "norm", "x", "y"])
    return {"instances": instances, "features": features, "datapoints": points}


def judge_tables(claim_id: str, **grids: dict[str, pd.DataFrame]) -> dict:
    """The scorecard row of one claim, each grid given by its tables."""
    (row,) = evaluate("double_descent", (BY_ID[claim_id],), grids)
    return row


def test_few_repeats_leave_the_generalising_features_and_are_not_memorised():
    pentagon = [0.4] * 5 + [0.05]
    holds = repeat_grid({1: pentagon, 2: pentagon, 3: pentagon, 10: [0.4] * 4 + [0.05] * 2}, {2: 0.01, 3: 0.05, 10: 0.5})
    memorised = repeat_grid({1: pentagon, 3: pentagon}, {3: 0.3})
    row = judge_tables("few_repeats_unchanged", repeated_generalising=holds)
    assert row["verdict"] == REPRODUCED
    assert row["measured"].startswith("large features (D_i >= 0.200, half the R = 1 model's max), repeated point's R D_t, "
                                      "and D_i of the feature along it: R = 1: 5, 0.000, 0.400; R = 2: 5, 0.010")
    assert judge_tables("few_repeats_unchanged", repeated_generalising=memorised)["verdict"] == NOT_REPRODUCED
    only_many = repeat_grid({1: pentagon, 10: pentagon}, {})
    assert judge_tables("few_repeats_unchanged", repeated_generalising=only_many)["verdict"] == NOT_MEASURED


def test_many_repeats_embed_the_point_and_displace_a_feature():
    pentagon = [0.4] * 5 + [0.05]
    holds = repeat_grid({1: pentagon, 10: [0.4] * 4 + [0.05] * 2}, {10: 0.5})
    kept = repeat_grid({1: pentagon, 10: pentagon}, {10: 0.5})
    memorised = repeat_grid({1: pentagon, 10: [0.05] * 6}, {10: 0.9})
    assert judge_tables("many_repeats_displace", repeated_generalising=holds)["verdict"] == REPRODUCED
    assert judge_tables("many_repeats_displace", repeated_generalising=kept)["verdict"] == NOT_REPRODUCED
    assert judge_tables("many_repeats_displace", repeated_generalising=memorised)["verdict"] == NOT_REPRODUCED
    few = repeat_grid({1: pentagon, 3: pentagon}, {})
    assert judge_tables("many_repeats_displace", repeated_generalising=few)["verdict"] == NOT_MEASURED
    memorising = judge_tables("many_repeats_displace", repeated_generalising=repeat_grid(
        {1: pentagon, 10: [0.4] * 4 + [0.05] * 2}, {10: 0.5}, test_loss=1.2))
    assert (memorising["verdict"], memorising["measured"]) == (
        NOT_MEASURED, "the R = 1 model does not generalise at T = 1000 (test loss 1.200 >= 1, predicting zero)")


def by_m(curves: dict[tuple[int, float], list[float]], ts: tuple[int, ...] = (10, 100, 1000, 10000)) -> pd.DataFrame:
    rows = [(m, s, t, 0, d) for (m, s), ds in curves.items() for t, d in zip(ts, ds, strict=True)]
    return table("m sparsity T seed max_feature_dimensionality", *rows)


def test_collapse_gets_worse_at_larger_m():
    clean, loose = [0.05, 0.3, 0.3, 0.3], [0.05, 0.05, 0.05, 0.3]
    worse = by_m({(2, 0.9): clean, (2, 0.99): [0.05, 0.05, 0.3, 0.3], (5, 0.9): clean, (5, 0.99): loose})
    same = by_m({(2, 0.9): clean, (2, 0.99): [0.05, 0.05, 0.3, 0.3], (5, 0.9): clean, (5, 0.99): [0.05, 0.05, 0.3, 0.3]})
    row = judge("collapse_by_m", sparsity_by_m=worse)
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == "spread of the onsets in log10 T(1-S): 0.00 (m = 2), 1.00 (m = 5); grid T = 10 .. 10000"
    assert judge("collapse_by_m", sparsity_by_m=same)["verdict"] == NOT_REPRODUCED
    no_jump = by_m({(2, 0.9): clean, (2, 0.99): [0.05, 0.05, 0.3, 0.3], (5, 0.9): clean, (5, 0.99): [0.3] * 4})
    assert judge("collapse_by_m", sparsity_by_m=no_jump)["verdict"] == NOT_MEASURED


def test_peak_feature_dimensionality_falls_past_the_onset():
    falls = feature_dims("m", {2: [0.05, 0.4, 0.3], 3: [0.05, 0.3, 0.2]})
    rises = feature_dims("m", {2: [0.05, 0.25, 0.3]})
    row = judge("peak_falls_post_generalisation", dataset_size=falls)
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("max feature dimensionality from the onset on: m = 2: 0.400 (T = 100), 0.300 (T = 1000); "
                               "m = 3: 0.300 (T = 100), 0.200 (T = 1000)")
    assert judge("peak_falls_post_generalisation", dataset_size=rises)["verdict"] == NOT_REPRODUCED
    late = feature_dims("m", {2: [0.05, 0.05, 0.3]})
    assert judge("peak_falls_post_generalisation", dataset_size=late)["verdict"] == NOT_MEASURED
def variant_losses(loss: str | None, activation: str | None, values: list[float]) -> pd.DataFrame:
    """One variant's best-seed test losses at T = 6, 100, 1000 (m = 2), plus a worse seed that must be ignored."""
    rows = [(2, t, v, loss, activation, True) for t, v in zip([6, 100, 1000], values, strict=True)]
    rows += [(2, t, 50.0, loss, activation, False) for t in [6, 100, 1000]]
    return table("m T test_loss loss hidden_activation selected", *rows)


def test_variant_label_names_the_default_and_each_variant():
    rows = table("loss hidden_activation", ("mse", None), ("l1", None), (None, "relu"), ("huber", "relu"), ("mse", "none"))
    assert variant_label(rows) == ["default (mse)", "loss l1", "hidden ReLU", "loss huber, hidden ReLU", "default (mse)"]
    assert variant_label(table("T", (3,))) == ["default (mse)"]


@pytest.mark.parametrize(("claim_id", "loss", "activation"), [("peak_l1_loss", "l1", None), ("peak_hidden_relu", None, "relu")])
def test_variant_peak_needs_an_interior_peak_ten_percent_above_both_ends(claim_id, loss, activation):
    default = variant_losses("mse", None, [1.0, 1.6, 0.9])  # the other variant's rows must not count
    def grid(values):
        return {"variants": {"instances": pd.concat([default, variant_losses(loss, activation, values)])}}
    assert judge_tables(claim_id, **grid([1.0, 1.5, 0.9]))["verdict"] == REPRODUCED
    assert judge_tables(claim_id, **grid([1.0, 1.05, 0.9]))["verdict"] == NOT_REPRODUCED  # interior, but flat
    assert judge_tables(claim_id, **grid([2.0, 1.5, 0.9]))["verdict"] == NOT_REPRODUCED  # highest at the smallest T
    assert judge_tables(claim_id, variants={"instances": default})["verdict"] == NOT_MEASURED


def features(sparsity: float, dims: list[float], norms: list[float] | None = None, seed: int = 0) -> pd.DataFrame:
    norms = norms or [1.0] * len(dims)
    return pd.DataFrame({"sparsity": sparsity, "seed": seed, "feature": range(len(dims)), "dimensionality": dims,
                         "norm": norms})


def test_pentagon_wants_five_features_at_two_fifths_at_the_highest_sparsity():
    instances = table("m n_features sparsity seed", (2, 5, 0.0, 0), (2, 5, 0.99, 0))
    square = features(0.99, [0.5, 0.5, 0.5, 0.5, 0.0])
    pentagon = features(0.99, [0.41, 0.39, 0.40, 0.43, 0.37])
    dense = features(0.0, [1.0, 1.0, 0.0, 0.0, 0.0])
    holds = judge_tables("infinite_pentagon", infinite_pentagon={"instances": instances, "features": pd.concat([dense, pentagon])})
    assert holds["verdict"] == REPRODUCED
    assert holds["measured"] == "at 1 - S = 0.01 (m = 2, N = 5): D_i = 0.410, 0.390, 0.400, 0.430, 0.370"
    fails = judge_tables("infinite_pentagon", infinite_pentagon={"instances": instances, "features": pd.concat([dense, square])})
    assert fails["verdict"] == NOT_REPRODUCED


def test_dims_per_feature_must_fall_with_sparsity():
    def judged(values):
        rows = [(s, v) for s, v in zip([0.0, 0.5, 0.9], values, strict=True)]
        return judge_tables("dims_per_feature_falls", infinite_sparsity={"instances": table("sparsity dims_per_feature", *rows)})
    assert judged([1.0, 0.5, 0.4])["verdict"] == REPRODUCED
    assert judged([1.0, 0.5, 0.51])["verdict"] == REPRODUCED  # within 0.02: seed scatter
    assert judged([1.0, 0.4, 0.5])["verdict"] == NOT_REPRODUCED
    assert judge_tables("dims_per_feature_falls", infinite_sparsity={
        "instances": table("sparsity dims_per_feature", (0.0, 1.0), (0.5, 0.5))})["verdict"] == NOT_MEASURED


def test_sticky_fractions_compares_with_the_share_the_windows_cover():
    instances = table("sparsity seed", (0.5, 0), (0.9, 0))
    sticky = pd.concat([features(0.5, [0.5, 0.51, 0.49, 0.99]), features(0.9, [0.4, 0.41, 0.2, 0.1])])
    spread = pd.concat([features(0.5, [0.45, 0.58, 0.6, 0.85]), features(0.9, [0.9, 0.62, 0.2, 0.1])])
    row = judge_tables("sticky_fractions", infinite_sparsity={"instances": instances, "features": sticky})
    assert row["verdict"] == REPRODUCED and row["measured"].startswith("100% of 6 feature dimensionalities")
    assert judge_tables("sticky_fractions", infinite_sparsity={"instances": instances, "features": spread})["verdict"] == NOT_REPRODUCED
