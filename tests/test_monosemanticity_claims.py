"""The monosemanticity claims on small hand-made tables: each check once holding, once failing, and short of cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from toymodels.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, evaluate
from toymodels.studies.monosemanticity.claims import CLAIMS

BY_ID = {claim.id: claim for claim in CLAIMS}
ENGINEERED = {"bias_offset": -1.0, "bias_decay": 0.03}
PLAIN = {"bias_offset": 0.0, "bias_decay": 0.0}
CELL = {"n_features": 8, "d": 4, "k": 16, "frequencies": "uniform", "eps": 1 / 64, "task": "decoder",
        "nonlinearity": "relu", "lr": 0.01, **ENGINEERED}


def instances(*cells: dict) -> pd.DataFrame:
    """Two seeds per cell: ``cells`` give the cell's values and its seed-0 measurements; seed 1 repeats them."""
    rows = []
    for cell in cells:
        row = {**CELL, "loss": 1.0, "mono_fraction_features": 0.1, "n_dead": 0, "mean_bias": 0.0, **cell}
        row.setdefault("n_mono", row["mono_fraction_features"] * row["n_features"])
        row.setdefault("mono_fraction_neurons", row["n_mono"] / row["k"])
        rows += [{**row, "seed": 0}, {**row, "seed": 1}]
    return pd.DataFrame(rows)


def judge(claim_id: str, **grids: dict[str, pd.DataFrame]) -> dict:
    (row,) = evaluate("monosemanticity", (BY_ID[claim_id],), grids)
    return row


def verdict(claim_id: str, **grids: dict[str, pd.DataFrame]) -> str:
    return judge(claim_id, **grids)["verdict"]


def test_offset_decay_must_raise_mono_at_comparable_loss_at_some_uniform_lr():
    holds = instances({**ENGINEERED, "mono_fraction_features": 0.4, "loss": 0.6}, {**PLAIN, "loss": 0.7},
                      {**ENGINEERED, "lr": 0.003, "mono_fraction_features": 0.0, "loss": 1.0}, {**PLAIN, "lr": 0.003, "loss": 0.7})
    row = judge("offset_decay_raises_mono", learning_rate={"instances": holds})
    assert row["verdict"] == REPRODUCED
    assert "uniform, lr 0.003: 0.000 vs 0.100 (loss 1.000 vs 0.700)" in row["measured"]
    costly = instances({**ENGINEERED, "mono_fraction_features": 0.5, "loss": 0.8}, {**PLAIN, "loss": 0.7},
                       {**ENGINEERED, "frequencies": "power_law", "mono_fraction_features": 0.5, "loss": 0.5},
                       {**PLAIN, "frequencies": "power_law", "loss": 0.7})
    assert verdict("offset_decay_raises_mono", learning_rate={"instances": costly}) == NOT_REPRODUCED
    assert verdict("offset_decay_raises_mono", learning_rate={"instances": instances(PLAIN)}) == NOT_MEASURED


def test_offset_decay_must_be_highly_monosemantic_at_every_lr():
    holds = instances({**ENGINEERED, "mono_fraction_features": 0.9, "loss": 0.6}, {**PLAIN, "mono_fraction_features": 0.8, "loss": 0.6},
                      {**ENGINEERED, "lr": 0.003, "mono_fraction_features": 0.6, "loss": 0.7}, {**PLAIN, "lr": 0.003, "loss": 0.7})
    assert verdict("offset_decay_mono_at_every_lr", learning_rate={"instances": holds}) == REPRODUCED
    beaten = instances({**ENGINEERED, "mono_fraction_features": 0.6, "loss": 0.6}, {**PLAIN, "mono_fraction_features": 0.8, "loss": 0.6})
    assert verdict("offset_decay_mono_at_every_lr", learning_rate={"instances": beaten}) == NOT_REPRODUCED
    stalled = instances({**ENGINEERED, "mono_fraction_features": 0.0, "loss": 1.0}, {**PLAIN, "mono_fraction_features": 0.0, "loss": 0.7})
    assert verdict("offset_decay_mono_at_every_lr", learning_rate={"instances": stalled}) == NOT_REPRODUCED
    assert verdict("offset_decay_mono_at_every_lr", learning_rate={"instances": instances(PLAIN)}) == NOT_MEASURED


def test_higher_lr_more_mono_and_more_negative_bias_without_offset():
    holds = instances({**PLAIN, "lr": 0.003, "mono_fraction_features": 0.0, "mean_bias": 0.04},
                      {**PLAIN, "lr": 0.01, "mono_fraction_features": 0.05, "mean_bias": -0.09})
    assert verdict("higher_lr_more_mono", learning_rate={"instances": holds}) == REPRODUCED
    fails = instances({**PLAIN, "lr": 0.003, "mono_fraction_features": 0.0, "mean_bias": 0.04},
                      {**PLAIN, "lr": 0.01, "mono_fraction_features": 0.05, "mean_bias": 0.05})
    assert verdict("higher_lr_more_mono", learning_rate={"instances": fails}) == NOT_REPRODUCED
    assert verdict("higher_lr_more_mono", learning_rate={"instances": instances(PLAIN)}) == NOT_MEASURED


def neurons(biases: list[float], mono: list[bool], dead: list[bool] | None = None, **cell) -> pd.DataFrame:
    """One cell's neurons table for seeds 0 and 1 (identical)."""
    dead = dead or [False] * len(biases)
    rows = [{**CELL, **PLAIN, **cell, "seed": seed, "neuron": n, "bias": b, "is_monosemantic": m, "is_dead": x}
            for seed in (0, 1) for n, (b, m, x) in enumerate(zip(biases, mono, dead))]
    return pd.DataFrame(rows)


def test_monosemantic_neurons_have_negative_and_polysemantic_positive_biases():
    holds = neurons([-0.5] * 6 + [0.1, 0.2, -3.0], [True] * 6 + [False] * 3, [False] * 8 + [True])
    assert verdict("mono_neurons_negative_bias", learning_rate={"neurons": holds}) == REPRODUCED
    fails = neurons([-0.5] * 6 + [-0.1, -0.2], [True] * 6 + [False] * 2)
    assert verdict("mono_neurons_negative_bias", learning_rate={"neurons": fails}) == NOT_REPRODUCED
    few = neurons([-0.5, 0.1], [True, False])
    assert verdict("mono_neurons_negative_bias", learning_rate={"neurons": few}) == NOT_MEASURED
    engineered = neurons([-0.5] * 6 + [-0.1, -0.2], [True] * 6 + [False] * 2, **ENGINEERED)   # offset cells are not judged
    assert verdict("mono_neurons_negative_bias", learning_rate={"neurons": engineered}) == NOT_MEASURED


def test_residual_band_counts_positive_bias_neurons_against_d():
    cell = instances(ENGINEERED)
    holds = neurons([0.1] * 4 + [-0.5] * 12, [False] * 4 + [True] * 12, **ENGINEERED)   # 4 positive = d
    assert verdict("residual_band_about_d", learning_rate={"instances": cell, "neurons": holds}) == REPRODUCED
    fails = neurons([0.1] * 10 + [-0.5] * 6, [False] * 10 + [True] * 6, **ENGINEERED)    # 10 positive = 2.5 d
    assert verdict("residual_band_about_d", learning_rate={"instances": cell, "neurons": fails}) == NOT_REPRODUCED
    assert verdict("residual_band_about_d", learning_rate={"instances": instances(PLAIN), "neurons": fails}) == NOT_MEASURED


def k_sweep(n_mono: list[float], losses: list[float], ks: tuple[int, ...] = (2, 4, 8, 16)) -> pd.DataFrame:
    return instances(*({"k": k, "n_mono": m, "loss": loss} for k, m, loss in zip(ks, n_mono, losses)))


def test_mono_rises_with_k_never_falling():
    assert verdict("mono_rises_with_k", neurons={"instances": k_sweep([0, 1, 5, 9], [1, 1, 1, 1])}) == REPRODUCED
    assert verdict("mono_rises_with_k", neurons={"instances": k_sweep([0, 6, 5, 9], [1, 1, 1, 1])}) == NOT_REPRODUCED
    short = k_sweep([0, 1], [1, 1], ks=(2, 4))
    assert verdict("mono_rises_with_k", neurons={"instances": short}) == NOT_MEASURED


def test_loss_falls_until_k_exceeds_n_then_flattens():
    assert verdict("loss_falls_with_k_until_n", neurons={"instances": k_sweep([0] * 4, [2.0, 1.5, 1.0, 0.95])}) == REPRODUCED
    steep = k_sweep([0] * 4, [2.0, 1.5, 1.0, 0.5])                      # still falling fast beyond N = 8
    assert verdict("loss_falls_with_k_until_n", neurons={"instances": steep}) == NOT_REPRODUCED
    no_large_k = k_sweep([0] * 3, [2.0, 1.5, 1.0], ks=(2, 4, 8))
    assert verdict("loss_falls_with_k_until_n", neurons={"instances": no_large_k}) == NOT_MEASURED


def features(statuses: dict[int, list[str]], **cell) -> pd.DataFrame:
    """Per k: the statuses of the N = 8 features (both seeds identical)."""
    rows = [{**CELL, **cell, "k": k, "seed": seed, "feature": f, "status": s}
            for k, status in statuses.items() for seed in (0, 1) for f, s in enumerate(status)]
    return pd.DataFrame(rows)


def test_k_below_n_learns_some_features_monosemantically_others_shared():
    sweep = {"instances": k_sweep([1, 2, 5], [1, 1, 1], ks=(2, 4, 16))}
    mixed = features({2: ["monosemantic"] + ["shared"] * 6 + ["dropped"], 4: ["monosemantic"] * 2 + ["shared"] * 6})
    assert verdict("k_below_n_mixed", neurons={**sweep, "features": mixed}) == REPRODUCED
    ignoring = features({2: ["monosemantic"] * 2 + ["dropped"] * 6, 4: ["monosemantic"] * 2 + ["shared"] * 6})
    assert verdict("k_below_n_mixed", neurons={**sweep, "features": ignoring}) == NOT_REPRODUCED
    large_k_only = features({16: ["monosemantic"] * 8})
    assert verdict("k_below_n_mixed", neurons={**sweep, "features": large_k_only}) == NOT_MEASURED


def test_k_below_n_a_large_fraction_of_neurons_is_monosemantic_only_with_the_offset():
    holds = instances({"k": 4, "n_mono": 2}, {**PLAIN, "k": 4, "n_mono": 0}, {"k": 16, "n_mono": 9})
    assert verdict("k_below_n_needs_offset", neurons={"instances": holds}) == REPRODUCED
    small = instances({"k": 4, "n_mono": 0.5}, {**PLAIN, "k": 4, "n_mono": 0})       # 1/8 of the neurons
    assert verdict("k_below_n_needs_offset", neurons={"instances": small}) == NOT_REPRODUCED
    assert verdict("k_below_n_needs_offset", neurons={"instances": instances({"k": 4, "n_mono": 2})}) == NOT_MEASURED


def test_denser_features_leave_almost_no_monosemantic_neurons_by_n_eps_2d():
    # N = 8, d = 4: N eps <= d/4 = 1 at eps 1/8; N eps >= 2d = 8 at eps 1
    def sweep(dense: float) -> dict:
        return {"instances": instances({"eps": 0.125, "mono_fraction_features": 0.6},
                                       {"eps": 0.5, "mono_fraction_features": 0.3}, {"eps": 1.0, "mono_fraction_features": dense})}
    assert verdict("denser_features_less_mono", sparsity=sweep(0.02)) == REPRODUCED
    assert verdict("denser_features_less_mono", sparsity=sweep(0.2)) == NOT_REPRODUCED
    assert verdict("denser_features_less_mono", sparsity={"instances": instances({"eps": 0.125})}) == NOT_MEASURED


def offsets(mono_at: dict[tuple[float, float], float], dead_at: dict[tuple[float, float], float] | None = None) -> dict:
    dead_at = dead_at or {}
    return {"instances": instances(*({"bias_offset": o, "bias_decay": d, "mono_fraction_features": m,
                                      "n_dead": dead_at.get((o, d), 0), "loss": 2.0 if (o, d) in dead_at else 1.0}
                                     for (o, d), m in mono_at.items()))}


def test_offset_must_lie_below_minus_sqrt_eps_for_monosemanticity():
    # eps = 1/64: -sqrt(eps) = -0.125
    holds = offsets({(0.0, 0.03): 0.05, (-0.5, 0.03): 0.4, (-1.0, 0.03): 0.5})
    assert verdict("offset_below_sqrt_eps", offset=holds) == REPRODUCED
    fails = offsets({(0.0, 0.03): 0.45, (-0.5, 0.03): 0.4, (-1.0, 0.03): 0.5})
    assert verdict("offset_below_sqrt_eps", offset=fails) == NOT_REPRODUCED
    assert verdict("offset_below_sqrt_eps", offset=offsets({(-1.0, 0.03): 0.5})) == NOT_MEASURED


def test_no_decay_leaves_the_offset_network_dead():
    holds = offsets({(-1.0, 0.0): 0.0, (-1.0, 0.03): 0.5}, dead_at={(-1.0, 0.0): 16})
    row = judge("no_decay_stalls", offset=holds)
    assert row["verdict"] == REPRODUCED and row["measured"].startswith("offset -1 without decay: 16 of 16 neurons dead")
    alive = offsets({(-1.0, 0.0): 0.0, (-1.0, 0.03): 0.5}, dead_at={(-1.0, 0.0): 4})
    assert verdict("no_decay_stalls", offset=alive) == NOT_REPRODUCED
    assert verdict("no_decay_stalls", offset=offsets({(-1.0, 0.03): 0.5})) == NOT_MEASURED


def test_no_l1_offset_model_is_comparable_to_the_best_l1_model():
    def grid(base_mono: float, base_loss: float) -> dict:
        return {"instances": instances({"l1": 0.0, "mono_fraction_features": base_mono, "loss": base_loss},
                                       {"l1": 0.01, "mono_fraction_features": 0.5, "loss": 0.7},
                                       {"l1": 0.1, "mono_fraction_features": 0.3, "loss": 0.9})}
    assert verdict("l1_comparable", l1=grid(0.45, 0.71)) == REPRODUCED
    assert verdict("l1_comparable", l1=grid(0.2, 0.7)) == NOT_REPRODUCED
    assert verdict("l1_comparable", l1=grid(0.45, 0.9)) == NOT_REPRODUCED
    assert verdict("l1_comparable", l1={"instances": instances({"l1": 0.0})}) == NOT_MEASURED


def test_reprojector_has_roughly_one_monosemantic_neuron_per_feature_with_the_offset():
    def grid(mono: float) -> dict:
        return {"instances": instances({"task": "reproject", "mono_fraction_features": mono},
                                       {**PLAIN, "task": "reproject", "mono_fraction_features": 0.1})}
    assert verdict("reproject_about_one", reproject=grid(0.9)) == REPRODUCED
    assert verdict("reproject_about_one", reproject=grid(0.3)) == NOT_REPRODUCED
    assert verdict("reproject_about_one", reproject={"instances": instances({"task": "reproject"})}) == NOT_MEASURED


def test_abs_task_needs_decay_and_the_more_monosemantic_model_has_the_lower_loss():
    def grid(decayed_loss: float) -> dict:
        return {"instances": instances({"task": "abs", "bias_decay": 0.0, "mono_fraction_features": 0.0, "loss": 2.0},
                                       {"task": "abs", "mono_fraction_features": 0.5, "loss": decayed_loss})}
    assert verdict("abs_needs_decay", absolute=grid(1.5)) == REPRODUCED
    assert verdict("abs_needs_decay", absolute=grid(2.5)) == NOT_REPRODUCED
    assert verdict("abs_needs_decay", absolute={"instances": instances({"task": "abs"})}) == NOT_MEASURED


def masks(fixed_loss: float, grow_loss: float) -> dict:
    return {"instances": instances({"mask": "dense", "loss": 1.0}, {"mask": "fixed", "loss": fixed_loss},
                                   {"mask": "prune_grow", "loss": grow_loss})}


def test_a_fixed_sparse_mask_costs_loss_and_prune_and_grow_recovers_some():
    assert verdict("fixed_mask_costs_loss", sparse=masks(1.5, 1.2)) == REPRODUCED
    assert verdict("fixed_mask_costs_loss", sparse=masks(1.05, 1.0)) == NOT_REPRODUCED
    assert verdict("prune_grow_beats_fixed", sparse=masks(1.5, 1.2)) == REPRODUCED
    assert verdict("prune_grow_beats_fixed", sparse=masks(1.5, 1.6)) == NOT_REPRODUCED
    dense_only = {"instances": instances({"mask": "dense"})}
    assert verdict("fixed_mask_costs_loss", sparse=dense_only) == verdict("prune_grow_beats_fixed", sparse=dense_only) == NOT_MEASURED


def test_every_claim_names_a_default_config_figure_and_grid():
    from toymodels.config import load_config_file

    study = load_config_file(Path(__file__).parents[1] / "config" / "config.yaml")["studies"]["monosemanticity"]
    for claim in CLAIMS:
        assert claim.figure in study["figures"], claim.id
        assert set(claim.grids) <= set(study["grids"]), claim.id
