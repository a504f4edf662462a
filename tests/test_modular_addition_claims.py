"""The modular-addition claims on small hand-made tables: each check once holding, once failing, and short of cells."""

import pandas as pd
import pytest

from toymodels.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, evaluate
from toymodels.studies.modular_addition.claims import CLAIMS

BY_ID = {claim.id: claim for claim in CLAIMS}


def table(columns: str, *rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def judge(claim_id: str, tables: dict) -> dict:
    (row,) = evaluate("modular_addition", (BY_ID[claim_id],), tables)
    return row


def survivors_grid(counts: dict[int, list[int]], dead_final: float = 0.5) -> dict:
    """The dimension grid: survivor counts per d (one instance per count, p = 59: K = 29), and for every instance
    one dead frequency going from signal 1 to ``dead_final``."""
    rows = [(59, d, seed, n) for d, ns in counts.items() for seed, n in enumerate(ns)]
    instances = table("p d seed n_survivors", *rows)
    frequencies = table("d seed k survived initial_signal final_signal",
                        *[(d, seed, 1, False, 1.0, dead_final) for _, d, seed, _ in rows])
    return {"dimension": {"instances": instances, "frequencies": frequencies}}


def test_few_survive_needs_one_to_a_quarter_of_the_frequencies_and_the_rest_decaying():
    row = judge("few_survive", survivors_grid({16: [3, 5], 128: [7]}))
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("3 to 7 survivors of K = 29 per instance (3 instances); the dead frequencies end "
                               "weaker than they started in 100% of instances")
    assert judge("few_survive", survivors_grid({16: [3, 0]}))["verdict"] == NOT_REPRODUCED
    assert judge("few_survive", survivors_grid({16: [3, 8]}))["verdict"] == NOT_REPRODUCED
    assert judge("few_survive", survivors_grid({16: [3, 5]}, dead_final=2.0))["verdict"] == NOT_REPRODUCED


def fitness_grid(predictor: str, values: list[float], survived_in: list[int]) -> dict:
    """Two seeds sharing embedding 0, frequencies k = 1..4 with the given predictor values; frequency k survives in
    ``survived_in[k - 1]`` of the two seeds. The other predictor is unrelated to survival."""
    other = "early_gradient" if predictor == "initial_signal" else "initial_signal"
    rows = [(59, 32, 0, seed, k, value, (0.5, 0.2, 0.9, 0.1)[k - 1], seed < n)
            for seed in (0, 1) for k, (value, n) in enumerate(zip(values, survived_in, strict=True), start=1)]
    return {"fitness": {"frequencies": table(f"p d embedding_seed seed k {predictor} {other} survived", *rows)}}


@pytest.mark.parametrize("predictor", ["initial_signal", "early_gradient"])
def test_fitness_high_values_survive_more_often(predictor):
    claim_id = f"{predictor}_fitness"
    row = judge(claim_id, fitness_grid(predictor, [1.0, 2.0, 3.0, 4.0], [0, 0, 1, 2]))
    assert (row["verdict"], row["measured"]) == (REPRODUCED, "ROC AUC 0.97, Spearman 0.95 over 8 (instance, k) rows")
    assert judge(claim_id, fitness_grid(predictor, [4.0, 3.0, 2.0, 1.0], [0, 0, 1, 2]))["verdict"] == NOT_REPRODUCED
    assert judge(claim_id, fitness_grid(predictor, [1.0, 2.0, 3.0, 4.0], [0, 0, 0, 0]))["verdict"] == NOT_MEASURED


def test_more_survive_with_d_needs_a_rising_trend():
    row = judge("more_survive_with_d", survivors_grid({16: [3, 4], 32: [4, 4], 64: [5, 4]}))
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("mean survivors 3.50 (d = 16), 4.00 (d = 32), 4.50 (d = 64); Spearman of d and survivors "
                               "over 6 instances +0.71")
    noisy = judge("more_survive_with_d", survivors_grid({16: [4, 5], 32: [3, 4], 64: [4, 4], 128: [5, 6]}))
    assert noisy["verdict"] == REPRODUCED                    # a dip between the ends does not break a trend
    assert judge("more_survive_with_d", survivors_grid({16: [3, 4], 32: [5, 5], 64: [3, 4]}))["verdict"] == NOT_REPRODUCED
    assert judge("more_survive_with_d", survivors_grid({16: [3, 4]}))["verdict"] == NOT_MEASURED


def ode_grid(lasso: dict[int, list[float]]) -> dict:
    """Lasso R^2 of the one-step change per d and seed; least squares fits perfectly everywhere (it must be ignored)."""
    rows = [(d, seed, method, r2 if method == "lasso" else 1.0) for d, r2s in lasso.items()
            for seed, r2 in enumerate(r2s) for method in ("lasso", "least_squares")]
    return {"dimension": {"ode": table("d seed method r2_derivative", *rows)}}


def test_linear_ode_lasso_explains_most_of_the_variance_at_every_d():
    row = judge("linear_ode", ode_grid({16: [0.8, 0.7], 128: [0.6, 0.9]}))
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == "Lasso R^2 of the one-step change 0.75 (d = 16), 0.75 (d = 128)"
    assert judge("linear_ode", ode_grid({16: [0.8, 0.7], 128: [0.3, 0.5]}))["verdict"] == NOT_REPRODUCED


def ablation_grid(per_d: dict[int, list[float]], kept: tuple[int, ...] = (1, 2, 3, 29)) -> dict:
    """Test loss per d with the embedding rebuilt from ``kept`` frequencies (one seed)."""
    rows = [(d, 0, n, loss) for d, values in per_d.items() for n, loss in zip(kept, values, strict=True)]
    return {"dimension": {"ablation": table("d seed n_kept test_loss", *rows)}}


def test_circles_cooperate_loss_falls_with_each_kept_circle():
    row = judge("circles_cooperate", ablation_grid({16: [3.0, 1.0, 0.1, 0.01], 64: [2.0, 0.5, 0.2, 0.01]}))
    assert row["verdict"] == REPRODUCED
    assert row["measured"] == ("mean test loss with 1 / 2 / 3 frequencies kept: 3.00 / 1.00 / 0.10 (d = 16), "
                               "2.00 / 0.50 / 0.20 (d = 64)")
    worse = ablation_grid({16: [3.0, 1.0, 0.1, 0.01], 64: [2.0, 0.5, 0.7, 0.01]})
    assert judge("circles_cooperate", worse)["verdict"] == NOT_REPRODUCED
    assert judge("circles_cooperate", ablation_grid({16: [3.0, 0.1]}, kept=(1, 29)))["verdict"] == NOT_MEASURED


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_claim_is_not_measured_on_a_config_without_its_grids(claim):
    (row,) = evaluate("modular_addition", (claim,), {})
    assert row["verdict"] == NOT_MEASURED and row["measured"].startswith("the config has no grid")
