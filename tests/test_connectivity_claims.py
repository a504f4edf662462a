"""The connectivity claims on small hand-made tables: each check once holding, once failing, and short of rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from toymodels.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, evaluate
from toymodels.config import load_config_file
from toymodels.studies.connectivity.claims import CLAIMS

BY_ID = {claim.id: claim for claim in CLAIMS}


def judge(claim_id: str, **grids: dict[str, pd.DataFrame]) -> dict:
    (row,) = evaluate("connectivity", (BY_ID[claim_id],), grids)
    return row


def pairs(*rows: tuple[str, str, bool, float, float]) -> pd.DataFrame:
    """(pair type, alignment, same cell, barrier, mean endpoint loss) per test-split pair, plus a train row to ignore."""
    frame = []
    for index, (kind, alignment, same, barrier, loss) in enumerate(rows):
        class_a, class_b = kind.split("-")
        row = {"pair_type": kind, "class_a": class_a, "class_b": class_b, "alignment": alignment, "same_cell": same,
               "cell_a": f"c{index}", "seed_a": 0, "seed_b": 1, "mono_a": 0.5 if class_a == "mono" else 0.05,
               "mono_b": 0.5 if class_b == "mono" else 0.05, "barrier_mean_endpoints": barrier, "loss_a": loss, "loss_b": loss,
               "relative_barrier": barrier / loss}
        frame += [{**row, "split": "test"}, {**row, "split": "train", "barrier_mean_endpoints": 99.0, "relative_barrier": 99.0 / loss}]
    return pd.DataFrame(frame)


def test_weight_matching_must_lower_the_mean_barrier_of_every_pair_type():
    holds = pairs(("mono-mono", "naive", True, 0.3, 1.0), ("mono-mono", "weight", True, 0.01, 1.0),
                  ("mono-poly", "naive", False, 0.4, 1.0), ("mono-poly", "weight", False, 0.2, 1.0))
    row = judge("matching_lowers_barrier", mono={"pairs": holds})
    assert row["verdict"] == REPRODUCED and row["measured"] == ("mean barrier naive -> weight-matched: mono-mono: 0.300 -> "
                                                                "0.010; mono-poly: 0.400 -> 0.200")
    fails = pairs(("mono-poly", "naive", False, 0.4, 1.0), ("mono-poly", "weight", False, 0.5, 1.0))
    assert judge("matching_lowers_barrier", mono={"pairs": fails})["verdict"] == NOT_REPRODUCED
    naive_only = pairs(("mono-poly", "naive", False, 0.4, 1.0))
    assert judge("matching_lowers_barrier", mono={"pairs": naive_only})["verdict"] == NOT_MEASURED


def test_same_recipe_seeds_are_connected_after_matching_and_mono_poly_pairs_are_not():
    connected = pairs(("mono-mono", "weight", True, 0.05, 1.0), ("poly-poly", "weight", True, 0.08, 1.0),
                      ("mono-poly", "weight", False, 0.3, 1.0))
    assert judge("same_recipe_connected", mono={"pairs": connected})["verdict"] == REPRODUCED
    assert judge("mono_poly_different_basins", mono={"pairs": connected})["verdict"] == REPRODUCED
    one_basin = pairs(("mono-mono", "weight", True, 0.3, 1.0), ("mono-poly", "weight", False, 0.05, 1.0))
    assert judge("same_recipe_connected", mono={"pairs": one_basin})["verdict"] == NOT_REPRODUCED
    assert judge("mono_poly_different_basins", mono={"pairs": one_basin})["verdict"] == NOT_REPRODUCED
    across_only = pairs(("mono-poly", "weight", False, 0.3, 1.0))
    assert judge("same_recipe_connected", mono={"pairs": across_only})["verdict"] == NOT_MEASURED
    within_only = pairs(("mono-mono", "weight", True, 0.05, 1.0))
    assert judge("mono_poly_different_basins", mono={"pairs": within_only})["verdict"] == NOT_MEASURED


def mli(*monotonic: bool) -> pd.DataFrame:
    return pd.DataFrame([{"split": split, "monotonic": m} for m in monotonic for split in ("test", "train")])


def test_mli_often_fails_when_a_quarter_of_the_curves_rise():
    assert judge("mli_often_fails_with_adaptive_optimisers", mono={"mli": mli(False, True, True)},
                 dd={"mli": mli(True)})["verdict"] == REPRODUCED
    assert judge("mli_often_fails_with_adaptive_optimisers", mono={"mli": mli(False, True, True, True)},
                 dd={"mli": mli(True)})["verdict"] == NOT_REPRODUCED
    assert judge("mli_often_fails_with_adaptive_optimisers", mono={"mli": mli(False)})["verdict"] == NOT_MEASURED


def stitches(penalty: float) -> pd.DataFrame:
    rows = [{"stitch": s, "split": "test", "penalty": p, "loss_b": 1.0}
            for s, p in (("high1 -> high2", 0.02), ("low1 -> low2", penalty), ("low1 -> high1", 0.5))]
    return pd.DataFrame(rows)


def test_within_class_stitches_cost_at_most_a_tenth_of_the_loss():
    assert judge("stitching_small_penalty", mono={"stitching": stitches(0.05)})["verdict"] == REPRODUCED
    assert judge("stitching_small_penalty", mono={"stitching": stitches(0.3)})["verdict"] == NOT_REPRODUCED
    across = stitches(0.0).query("stitch == 'low1 -> high1'")
    assert judge("stitching_small_penalty", mono={"stitching": across})["verdict"] == NOT_MEASURED


def curves(bezier_poly: float) -> pd.DataFrame:
    """Relative barriers of naive test-split curves per pair type (line, bezier, chain), plus rows the claim ignores."""
    values = {"mono-mono": (0.6, 0.04, 0.05), "poly-poly": (0.4, bezier_poly, 0.2), "mono-poly": (0.5, 0.3, 0.3)}
    rows = [{"pair_type": kind, "curve": curve, "alignment": "naive", "split": "test", "relative_barrier": value}
            for kind, triple in values.items() for curve, value in zip(("line", "bezier", "chain"), triple)]
    rows += [{**row, "alignment": "weight", "relative_barrier": 9.0} for row in rows]
    rows += [{**row, "split": "train", "relative_barrier": 9.0} for row in rows]
    return pd.DataFrame(rows)


def test_curves_connect_seeds_when_every_within_class_bezier_barrier_is_near_zero():
    row = judge("curves_connect_seeds", mono={"curves": curves(0.08)})
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("naive test barrier / mean endpoint loss: mono-mono: line 60%, Bezier 4%, chain 5%; "
                               "poly-poly: line 40%, Bezier 8%, chain 20%; mono-poly: line 50%, Bezier 30%, chain 30%")
    assert judge("curves_connect_seeds", mono={"curves": curves(0.15)})["verdict"] == NOT_REPRODUCED
    across = curves(0.08).query("pair_type == 'mono-poly'")
    assert judge("curves_connect_seeds", mono={"curves": across})["verdict"] == NOT_MEASURED


def test_every_claim_names_a_default_config_figure_and_grid():
    study = load_config_file(Path(__file__).parents[1] / "config" / "config.yaml")["studies"]["connectivity"]
    for claim in CLAIMS:
        assert claim.figure in study["figures"], claim.id
        assert set(claim.grids) <= set(study["grids"]), claim.id


def seed_pairs(values: dict[float, float], state: str = "trained", alignment: str = "naive") -> pd.DataFrame:
    """Test-split seed pairs of two groups at the swept values given (barrier per value; group b's doubled), plus
    rows of the other state, alignment and split, which the claims ignore."""
    rows = [{"group": group, "sweep_value": x, "state": state, "alignment": alignment, "split": "test",
             "barrier_mean_endpoints": scale * y, "relative_barrier": scale * y}
            for group, scale in (("a", 1.0), ("b", 2.0)) for x, y in values.items()]
    rows += [{**row, "state": "init" if state == "trained" else "trained", "barrier_mean_endpoints": 9.0,
              "relative_barrier": 9.0} for row in rows]
    rows += [{**row, "alignment": "weight" if alignment == "naive" else "naive", "split": "train",
              "barrier_mean_endpoints": -9.0, "relative_barrier": -9.0} for row in rows]
    return pd.DataFrame(rows)


def test_barrier_trends_with_width_and_difficulty_need_the_rank_correlation_and_the_end_points():
    falling = {32: 0.3, 64: 0.2, 128: 0.25, 256: 0.1}
    row = judge("barrier_falls_with_width", width={"seed_pairs": seed_pairs(falling)})
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("naive test barrier at k = 32, 64, 128, 256: a: 0.3, 0.2, 0.25, 0.1 (Spearman -0.80); "
                               "b: 0.6, 0.4, 0.5, 0.2 (Spearman -0.80)")
    rising_end = {32: 0.3, 64: 0.2, 128: 0.1, 256: 0.35}  # rank correlation negative, but the widest is the highest
    assert judge("barrier_falls_with_width", width={"seed_pairs": seed_pairs(rising_end)})["verdict"] == NOT_REPRODUCED
    assert judge("barrier_falls_with_width", width={"seed_pairs": seed_pairs({32: 0.3})})["verdict"] == NOT_MEASURED
    rising = {0.01: 0.1, 0.03: 0.2, 0.1: 0.4}
    assert judge("barrier_rises_with_difficulty", difficulty={"seed_pairs": seed_pairs(rising)})["verdict"] == REPRODUCED
    assert judge("barrier_rises_with_difficulty", difficulty={"seed_pairs": seed_pairs(falling)})["verdict"] == NOT_REPRODUCED
    assert judge("barrier_rises_with_depth", depth={"seed_pairs": seed_pairs({1: 0.1, 2: 0.3})})["verdict"] == REPRODUCED
    assert judge("barrier_rises_with_depth", depth={"seed_pairs": seed_pairs({1: 0.3, 2: 0.1})})["verdict"] == NOT_REPRODUCED


def test_untrained_networks_are_connected_when_the_widest_matched_init_barrier_is_near_zero():
    table = seed_pairs({32: 0.3, 512: 0.04}, state="init", alignment="weight")
    row = judge("untrained_networks_connected", width={"seed_pairs": table})
    assert row["verdict"] == REPRODUCED  # group b at k = 512: 0.08 <= 0.1
    assert row["measured"].endswith("a: 30.0%, 4.0%; b: 60.0%, 8.0%")
    table = seed_pairs({32: 0.3, 512: 0.06}, state="init", alignment="weight")
    assert judge("untrained_networks_connected", width={"seed_pairs": table})["verdict"] == NOT_REPRODUCED  # b: 12%


def test_stitching_across_training_reads_the_within_run_checkpoints_after_a_tenth_of_training():
    rows = [{"class_a": "mono", "kind": kind, "step": step, "final_step": 1000, "split": split, "relative_penalty": value}
            for step, value in ((0, 5.0), (50, 0.5), (100, 0.08), (500, 0.02), (1000, 0.0))
            for kind in ("within", "across") for split in ("train", "test")]
    table = pd.DataFrame(rows)
    row = judge("stitching_across_training", mono_training={"stitch_training": table})
    assert row["verdict"] == REPRODUCED
    assert row["measured"].endswith("mono step 100: +8.0%; mono step 500: +2.0%")
    table.loc[(table["step"] == 500) & (table["kind"] == "within"), "relative_penalty"] = 0.2
    assert judge("stitching_across_training", mono_training={"stitch_training": table})["verdict"] == NOT_REPRODUCED
    early = table[table["step"] < 100]
    assert judge("stitching_across_training", mono_training={"stitch_training": early})["verdict"] == NOT_MEASURED


def mli_by_optimizer(monotonic: dict[str, list[bool]]) -> pd.DataFrame:
    """Test-split MLI rows per optimiser (lr 0.1) with the given monotonic flags, plus train rows the claims ignore."""
    rows = [{"optimizer": name, "lr": 0.1, "split": "test", "monotonic": flag}
            for name, flags in monotonic.items() for flag in flags]
    return pd.DataFrame(rows + [{**row, "split": "train", "monotonic": not row["monotonic"]} for row in rows])


def test_mli_claims_compare_sgd_with_the_adaptive_optimisers():
    table = mli_by_optimizer({"lamb": [False, True], "adamw": [False, False], "sgd": [True, True], "sgd_momentum": [True, False]})
    row = judge("mli_holds_for_sgd", optimizers={"mli": table})
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("75% of the SGD curves fall monotonically (adamw (lr 0.1): 0 of 2 monotonic; lamb (lr 0.1): "
                               "1 of 2 monotonic; sgd (lr 0.1): 2 of 2 monotonic; sgd_momentum (lr 0.1): 1 of 2 monotonic)")
    assert judge("mli_fails_more_with_adaptive", optimizers={"mli": table})["verdict"] == REPRODUCED  # 75% > 25%
    flat = mli_by_optimizer({"lamb": [True, True], "sgd": [False, True]})
    assert judge("mli_holds_for_sgd", optimizers={"mli": flat})["verdict"] == REPRODUCED  # exactly half
    assert judge("mli_fails_more_with_adaptive", optimizers={"mli": flat})["verdict"] == NOT_REPRODUCED
    only_sgd = mli_by_optimizer({"sgd": [True]})
    assert judge("mli_holds_for_sgd", optimizers={"mli": only_sgd})["verdict"] == NOT_MEASURED


def test_small_batch_separates_seeds_compares_the_seed_pairs_of_the_two_batch_sizes():
    def table(small: float) -> pd.DataFrame:
        rows = [(cell, barrier) for cell, barrier in (("batch_size=128/data_order=None", 0.05), ("batch_size=128/data_order=1", 0.5),
                                                      ("batch_size=32/data_order=None", small))]
        frame = pairs(*[("mono-mono", "weight", True, barrier, 1.0) for _, barrier in rows])
        frame["cell_a"] = [cell for cell, _ in rows for _ in range(2)]
        return frame

    row = judge("small_batch_separates_seeds", noise={"pairs": table(0.08)})
    assert row["verdict"] == REPRODUCED  # 8% > 5%; the data_order cell (50%) is not a batch-size comparison
    assert row["measured"] == ("weight-matched barrier / endpoint loss between two seeds: batch_size=128/data_order=None: "
                               "5.0%; batch_size=32/data_order=None: 8.0%")
    assert judge("small_batch_separates_seeds", noise={"pairs": table(0.03)})["verdict"] == NOT_REPRODUCED
    one_size = table(0.08).iloc[:4]
    assert judge("small_batch_separates_seeds", noise={"pairs": one_size})["verdict"] == NOT_MEASURED


def test_finetune_leaves_basin_needs_a_matched_barrier_at_a_low_loss():
    def table(barrier: float, loss: float) -> pd.DataFrame:
        rows = [{"beta": beta, "step": step, "loss": 0.7 if beta == 0 or step == 0 else loss, "loss_start": 0.7,
                 "barrier_matched": 0.0 if beta == 0 or step == 0 else barrier, "barrier_naive": 0.3, "mono": 0.1,
                 "mono_start": 0.05} for beta in (0.0, 8.0, 16.0) for step in (0, 100)]
        return pd.DataFrame(rows)

    row = judge("finetune_leaves_basin", mono_training={"finetune": table(0.14, 0.75)})
    assert row["verdict"] == REPRODUCED
    assert row["measured"].startswith("beta 16: matched barrier to the start 0.140 = 20% of the start's loss")
    assert judge("finetune_leaves_basin", mono_training={"finetune": table(0.05, 0.75)})["verdict"] == NOT_REPRODUCED  # 7%
    assert judge("finetune_leaves_basin", mono_training={"finetune": table(0.14, 0.8)})["verdict"] == NOT_REPRODUCED  # loss +14%
    assert judge("finetune_leaves_basin", mono_training={"finetune": table(0.14, 0.75).query("beta > 0")})["verdict"] == NOT_MEASURED
