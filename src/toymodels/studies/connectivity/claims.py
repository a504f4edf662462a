"""The mode-connectivity findings the study's sources state, as checks over the collected tables.

Barriers are the mean-endpoints convention (Frankle et al. 2020, git re-basin) on the test split. Two models count as
linearly connected (one basin) when their barrier is "near zero", read as at most :data:`NEAR_ZERO` of their mean
endpoint loss; the same reading serves every claim below. Light at import (no pandas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toymodels.claims import Claim, NotMeasured, Outcome, Tables, judged

if TYPE_CHECKING:
    import pandas as pd

REBASIN = "Ainsworth et al. 2022, Git Re-Basin (via the roundup, seed 004)"
CURVES = "Garipov et al. 2018 (mode connectivity), via the roundup's 'simple, but not linear, paths' (seed 004)"
ENTEZARI = "Entezari et al. 2021, The Role of Permutation Invariance in Linear Mode Connectivity (via seed 004)"
PAPER = "Jermyn, Schiefer & Hubinger 2022, Sec. 4.1.1 (p. 10), and the author's replies in seed 000"
NEAR_ZERO = 0.1  # "near-zero barrier": at most a tenth of the pair's mean endpoint loss
SMALL_PENALTY = 0.1  # "stitches with a small penalty": at most a tenth of the receiving model's loss
OFTEN = 0.25  # "often": at least a quarter of the models


def pairs_on_test_split(tables: Tables, grid: str) -> pd.DataFrame:
    """The pairs of a grid on the test split (``relative_barrier`` = barrier / mean endpoint loss)."""
    pairs = tables[grid]["pairs"]
    pairs = pairs[pairs["split"] == "test"]
    if pairs.empty:
        raise NotMeasured(f"the {grid} grid has no test-split pairs")
    return pairs


def _matched(pairs: pd.DataFrame) -> pd.DataFrame:
    matched = pairs[pairs["alignment"] == "weight"]
    if matched.empty:
        raise NotMeasured("no weight-matched pairs (the family has no weight matching)")
    return matched


def _matching_lowers_barrier(tables: Tables) -> Outcome:
    pairs = pairs_on_test_split(tables, "mono")
    means = pairs.groupby(["pair_type", "alignment"])["barrier_mean_endpoints"].mean().unstack("alignment")
    if not {"naive", "weight"} <= set(means.columns):
        raise NotMeasured("the mono grid needs naive and weight-matched pairs")
    holds = bool((means["weight"] < means["naive"]).all())
    measured = "; ".join(f"{kind}: {row['naive']:.3f} -> {row['weight']:.3f}" for kind, row in means.iterrows())
    return judged(holds, f"mean barrier naive -> weight-matched: {measured}")


def _same_recipe_connected(tables: Tables) -> Outcome:
    same = _matched(pairs_on_test_split(tables, "mono"))
    same = same[same["same_cell"]]
    if same.empty:
        raise NotMeasured("the mono grid has no two seeds of one source cell")
    holds = bool((same["relative_barrier"] <= NEAR_ZERO).all())
    measured = "; ".join(f"{row.pair_type} ({row.cell_a}, seeds {row.seed_a}/{row.seed_b}): {row.barrier_mean_endpoints:.3f} "
                         f"= {row.relative_barrier:.0%} of the endpoint loss" for row in same.itertuples())
    return judged(holds, f"weight-matched barrier: {measured}")


def _mono_poly_separate(tables: Tables) -> Outcome:
    matched = _matched(pairs_on_test_split(tables, "mono"))
    across = matched[matched["class_a"] != matched["class_b"]]
    within = matched[matched["class_a"] == matched["class_b"]]
    if across.empty:
        raise NotMeasured("the mono grid has no pair across the two classes")
    holds = bool((across["relative_barrier"] > NEAR_ZERO).all())
    within_text = ", ".join(f"{kind} {part['relative_barrier'].median():.0%}" for kind, part in within.groupby("pair_type"))
    return judged(holds, f"weight-matched barrier / endpoint loss across classes: min {across['relative_barrier'].min():.0%}, "
                         f"median {across['relative_barrier'].median():.0%} ({len(across)} pairs; mono #mono/#features "
                         f"{across[['mono_a', 'mono_b']].max(axis=1).mean():.2f} vs poly "
                         f"{across[['mono_a', 'mono_b']].min(axis=1).mean():.2f}); within a class (median): {within_text}")


def _curves_connect_seeds(tables: Tables) -> Outcome:
    curves = tables["mono"]["curves"]
    curves = curves[(curves["split"] == "test") & (curves["alignment"] == "naive")]
    if curves.empty:
        raise NotMeasured("the mono grid has no test-split curves")
    relative = curves.set_index(["pair_type", "curve"])["relative_barrier"]
    within = [kind for kind in dict.fromkeys(curves["pair_type"]) if len(set(kind.split("-"))) == 1]
    if not within:
        raise NotMeasured("the mono grid has no curve between two models of one class")
    holds = all(relative[(kind, "bezier")] <= NEAR_ZERO for kind in within)
    measured = "; ".join(f"{kind}: line {relative[(kind, 'line')]:.0%}, Bezier {relative[(kind, 'bezier')]:.0%}, "
                         f"chain {relative[(kind, 'chain')]:.0%}" for kind in dict.fromkeys(curves["pair_type"]))
    return judged(holds, f"naive test barrier / mean endpoint loss: {measured}")


def _seed_pair_means(tables: Tables, grid: str, state: str, alignment: str, column: str) -> pd.DataFrame:
    """Mean test ``column`` of the seed pairs of ``grid`` per group (rows) and sweep value (columns)."""
    table = tables[grid]["seed_pairs"]
    table = table[(table["split"] == "test") & (table["state"] == state) & (table["alignment"] == alignment)]
    if table.empty or table["sweep_value"].nunique() < 2:
        raise NotMeasured(f"the {grid} grid has no {state} {alignment} seed pairs at two or more swept values")
    return table.groupby(["group", "sweep_value"])[column].mean().unstack("sweep_value")


def _trend(means: pd.DataFrame, sign: int) -> tuple[bool, str]:
    """Whether every group's mean barrier moves with the swept value in direction ``sign`` (Spearman correlation of
    that sign and the last value beyond the first), and the numbers."""
    from scipy.stats import spearmanr

    holds, parts = True, []
    for group, row in means.iterrows():
        row = row.dropna()
        rho = float(spearmanr(row.index, row.to_numpy()).statistic)
        ok = sign * rho > 0 and sign * (row.iloc[-1] - row.iloc[0]) > 0
        holds &= ok
        values = ", ".join(f"{v:.3g}" for v in row)
        parts.append(f"{group}: {values} (Spearman {rho:+.2f})")
    return holds, "; ".join(parts)


def _barrier_falls_with_width(tables: Tables) -> Outcome:
    means = _seed_pair_means(tables, "width", "trained", "naive", "barrier_mean_endpoints")
    holds, measured = _trend(means, -1)
    return judged(holds, f"naive test barrier at k = {', '.join(f'{v:g}' for v in means.columns)}: {measured}")


def _barrier_rises_with_difficulty(tables: Tables) -> Outcome:
    means = _seed_pair_means(tables, "difficulty", "trained", "naive", "barrier_mean_endpoints")
    holds, measured = _trend(means, 1)
    return judged(holds, f"naive test barrier at eps = {', '.join(f'{v:g}' for v in means.columns)}: {measured}")


def _barrier_rises_with_depth(tables: Tables) -> Outcome:
    means = _seed_pair_means(tables, "depth", "trained", "naive", "barrier_mean_endpoints")
    holds, measured = _trend(means, 1)
    return judged(holds, f"naive test barrier with {', '.join(f'{v:g}' for v in means.columns)} hidden layers: {measured}")


def _untrained_connected(tables: Tables) -> Outcome:
    means = _seed_pair_means(tables, "width", "init", "weight", "relative_barrier")
    widest = means.columns.max()
    holds = bool((means[widest] <= NEAR_ZERO).all())
    measured = "; ".join(f"{group}: {', '.join(f'{v:.1%}' for v in row)}" for group, row in means.iterrows())
    return judged(holds, f"weight-matched barrier / endpoint loss of untrained pairs at k = "
                         f"{', '.join(f'{v:g}' for v in means.columns)}: {measured}")


def _cell_values(cell: str) -> dict[str, str]:
    """The hyperparameters of a cell label (``batch_size=32/data_order=None`` -> {batch_size: '32', ...})."""
    return dict(part.split("=", 1) for part in cell.split("/") if "=" in part)


def _small_batch_separates_seeds(tables: Tables) -> Outcome:
    seeds = _matched(pairs_on_test_split(tables, "noise"))
    seeds = seeds[seeds["same_cell"]]
    batch = {row.cell_a: (float(_cell_values(row.cell_a).get("batch_size", "nan")), row.relative_barrier)
             for row in seeds.itertuples() if _cell_values(row.cell_a).get("data_order", "None") == "None"}
    sizes = sorted({size for size, _ in batch.values() if size == size})
    if len(sizes) < 2:
        raise NotMeasured("the noise grid needs seed pairs (per-seed batches) at two batch sizes")
    small = [b for size, b in batch.values() if size == sizes[0]]
    large = [b for size, b in batch.values() if size == sizes[-1]]
    measured = "; ".join(f"{cell}: {b:.1%}" for cell, (_, b) in sorted(batch.items()))
    return judged(min(small) > max(large), f"weight-matched barrier / endpoint loss between two seeds: {measured}")


def _finetune_leaves_basin(tables: Tables) -> Outcome:
    table = tables["mono_training"]["finetune"]
    if table.empty or table["beta"].nunique() < 2 or 0.0 not in set(table["beta"]):
        raise NotMeasured("the mono_training grid has no plain and barrier-rewarded fine-tuning runs")
    last = table[table["step"] == table["step"].max()].set_index("beta")
    plain, strongest = last.loc[0.0], last.loc[last.index.max()]
    relative = strongest["barrier_matched"] / strongest["loss_start"]
    low_loss = strongest["loss"] <= (1 + SMALL_PENALTY) * plain["loss"]
    return judged(bool(relative > NEAR_ZERO and low_loss),
                  f"beta {last.index.max():g}: matched barrier to the start {strongest['barrier_matched']:.3f} = "
                  f"{relative:.0%} of the start's loss (naive {strongest['barrier_naive']:.3f}), test loss "
                  f"{strongest['loss']:.3f} against {plain['loss']:.3f} for plain fine-tuning; #mono/#features "
                  f"{strongest['mono']:.3f} (plain {plain['mono']:.3f}, start {strongest['mono_start']:.3f})")


def _mli_often_fails(tables: Tables) -> Outcome:
    curves = [tables[grid]["mli"] for grid in ("mono", "dd")]
    parts, flags = [], []
    for grid, mli in zip(("mono", "dd"), curves):
        test = mli[mli["split"] == "test"]
        if test.empty:
            raise NotMeasured(f"the {grid} grid has no test-split MLI curves")
        flags.extend((~test["monotonic"]).tolist())
        parts.append(f"{grid}: {int((~test['monotonic']).sum())} of {len(test)} non-monotonic")
    share = sum(flags) / len(flags)
    return judged(share >= OFTEN, f"{share:.0%} of the init -> final curves rise somewhere ({'; '.join(parts)})")


SGD = ("sgd", "sgd_momentum")
LUCAS = "Lucas et al. 2021 (monotonic linear interpolation), via seed 004"


def _monotonic_by_optimizer(tables: Tables) -> tuple[pd.Series, pd.Series, str]:
    """Share of monotonic test init -> final curves of the optimizers grid: SGD models, adaptive ones, and the text."""
    mli = tables["optimizers"]["mli"]
    test = mli[mli["split"] == "test"]
    sgd, adaptive = test[test["optimizer"].isin(SGD)], test[~test["optimizer"].isin(SGD)]
    if sgd.empty or adaptive.empty:
        raise NotMeasured("the optimizers grid needs models trained with SGD and with an adaptive optimiser")
    text = "; ".join(f"{name} (lr {lr:g}): {int(part['monotonic'].sum())} of {len(part)} monotonic"
                     for (name, lr), part in test.groupby(["optimizer", "lr"]))
    return sgd["monotonic"], adaptive["monotonic"], text


def _mli_holds_for_sgd(tables: Tables) -> Outcome:
    sgd, _, text = _monotonic_by_optimizer(tables)
    return judged(bool(sgd.mean() >= 0.5), f"{sgd.mean():.0%} of the SGD curves fall monotonically ({text})")


def _mli_fails_more_with_adaptive(tables: Tables) -> Outcome:
    sgd, adaptive, text = _monotonic_by_optimizer(tables)
    return judged(bool((~adaptive).mean() > (~sgd).mean()),
                  f"non-monotonic: adaptive {(~adaptive).mean():.0%}, SGD {(~sgd).mean():.0%} ({text})")


def _stitching_small(tables: Tables) -> Outcome:
    stitching = tables["mono"]["stitching"]
    within = stitching[(stitching["split"] == "test") & stitching["stitch"].isin(["high1 -> high2", "low1 -> low2"])]
    if within.empty:
        raise NotMeasured("the mono grid has no within-class stitches")
    relative = within["penalty"] / within["loss_b"]
    measured = "; ".join(f"{row.stitch}: {row.penalty:+.3f} ({rel:+.0%} of B's loss {row.loss_b:.3f})"
                         for row, rel in zip(within.itertuples(), relative))
    return judged(bool((relative <= SMALL_PENALTY).all()), f"stitching penalty: {measured}")


def _stitching_along_training(tables: Tables) -> Outcome:
    table = tables["mono_training"]["stitch_training"]
    within = table[(table["split"] == "test") & (table["kind"] == "within")]
    within = within[(within["step"] >= within["final_step"] / 10) & (within["step"] < within["final_step"])]
    if within.empty:
        raise NotMeasured("the mono_training grid has no checkpoint between a tenth of training and its end")
    measured = "; ".join(f"{row.class_a} step {row.step}: {row.relative_penalty:+.1%}" for row in within.itertuples())
    return judged(bool((within["relative_penalty"] <= SMALL_PENALTY).all()),
                  f"penalty / final model's test loss, checkpoint -> own final model: {measured}")


CLAIMS = (
    Claim("matching_lowers_barrier", REBASIN,
          "Aligning the hidden units of one model to the other's by weight matching lowers the loss barrier on the "
          "straight path between independently trained networks.",
          "For every pair type of the mono grid, the mean weight-matched barrier is below the mean naive barrier.",
          "conn_paths", ("mono",), _matching_lowers_barrier),
    Claim("same_recipe_connected", f"{REBASIN}; Entezari et al. 2021's conjecture",
          "Two networks trained the same way from different seeds are linearly connected up to a permutation of their "
          "hidden units: after matching, the barrier is near zero.",
          f"Every pair of seeds of one source cell has a weight-matched barrier at most {NEAR_ZERO:.0%} of its mean "
          "endpoint loss ('near zero').",
          "conn_barrier_matrix", ("mono",), _same_recipe_connected),
    Claim("mono_poly_different_basins", PAPER,
          "Monosemantic and polysemantic solutions of equal loss are not joined by an equal-loss path: they lie in "
          "different basins (the author's weakly held belief; the commenter's question).",
          f"Every weight-matched pair of a monosemantic and a polysemantic model has a barrier above {NEAR_ZERO:.0%} "
          "of its mean endpoint loss (not 'near zero', the one-basin criterion of same_recipe_connected).",
          "conn_barrier_matrix", ("mono",), _mono_poly_separate),
    Claim("curves_connect_seeds", CURVES,
          "Networks trained the same way from different initialisations are joined by simple curves (a quadratic "
          "Bezier curve, a polygonal chain with one bend) along which the loss stays nearly constant, without any "
          "permutation, where the straight line between them has a barrier.",
          f"For every pair of models of one class (mono-mono, poly-poly), the trained Bezier curve between them as "
          f"trained (naive) has a test barrier at most {NEAR_ZERO:.0%} of the mean endpoint loss ('near zero').",
          "conn_curves", ("mono",), _curves_connect_seeds),
    Claim("barrier_falls_with_width", ENTEZARI,
          "The loss barrier on the linear interpolation between two trained networks decreases with width.",
          "For every recipe of the width grid, the mean naive test barrier between two seeds falls with hidden width "
          "k: a negative Spearman correlation over k and a lower barrier at the largest k than at the smallest.",
          "conn_barrier_width", ("width",), _barrier_falls_with_width),
    Claim("barrier_rises_with_difficulty", ENTEZARI,
          "The loss barrier on the linear interpolation between two trained networks increases with the difficulty of "
          "the training data.",
          "The mean naive test barrier between two seeds rises with the feature probability eps (more features active "
          "at once, a harder task for the same d and k): a positive Spearman correlation over eps and a higher barrier "
          "at the largest eps than at the smallest.",
          "conn_barrier_difficulty", ("difficulty",), _barrier_rises_with_difficulty),
    Claim("barrier_rises_with_depth", ENTEZARI,
          "The loss barrier on the linear interpolation between two trained networks increases with depth.",
          "The mean naive test barrier between two seeds of the depth grid's recipe is higher with two hidden layers "
          "than with one (with more depths: a positive Spearman correlation and a higher barrier at the deepest).",
          "conn_barrier_depth", ("depth",), _barrier_rises_with_depth),
    Claim("untrained_networks_connected", f"{ENTEZARI}, its one-hidden-layer result at random initialisation",
          "Two one-hidden-layer networks at random initialisation are linearly connected after a permutation of their "
          "hidden units, once they are wide enough.",
          f"At the largest width of the width grid, the weight-matched test barrier between two untrained (step-0) "
          f"seeds is at most {NEAR_ZERO:.0%} of their mean endpoint loss ('near zero') for every recipe.",
          "conn_barrier_width", ("width",), _untrained_connected),
    Claim("small_batch_separates_seeds", "The commenter in seed 000",
          "With more noise in training (for instance a much lower batch size, so that SGD is noisy), the same "
          "configuration is less likely to end in the same basin.",
          "In the noise grid, the weight-matched test barrier between two seeds of the smallest-batch cell (batch 32) "
          "is higher, as a share of their endpoint loss, than between two seeds of the largest-batch cell (batch 128), "
          "both drawing per-seed batches.",
          "conn_noise", ("noise",), _small_batch_separates_seeds),
    Claim("finetune_leaves_basin", "Lubana et al. 2023 (connectivity-based fine-tuning), via seed 000",
          "Fine-tuning with a reward for a loss barrier back to the original model finds a new parametrisation that is "
          "linearly disconnected from the original one, at low task loss.",
          f"The mono_training grid's fine-tuning run with the largest beta ends with a weight-matched barrier back to the start "
          f"above {NEAR_ZERO:.0%} of the start's loss (not 'near zero': a new basin, not a permutation of the start) "
          f"and a test loss at most {SMALL_PENALTY:.0%} above plain fine-tuning's.",
          "conn_finetune", ("mono_training",), _finetune_leaves_basin),
    Claim("mli_often_fails_with_adaptive_optimisers", "Lucas et al. 2021 (monotonic linear interpolation), via seed 004",
          "The loss falls monotonically from initialisation to the trained network for most SGD-trained networks, but "
          "often not for networks trained with Adam (every model here: LAMB or AdamW).",
          f"At least {OFTEN:.0%} ('often') of the init -> final test-loss curves of the mono and dd models rise "
          "somewhere (bump > 1e-6 of the initial loss).",
          "conn_mli", ("mono", "dd"), _mli_often_fails),
    Claim("mli_holds_for_sgd", LUCAS,
          "The loss falls monotonically on the straight line from initialisation to the trained network for most "
          "networks trained with SGD.",
          "At least half ('most') of the init -> final test-loss curves of the optimizers grid's SGD models (with and "
          "without momentum) never rise (bump <= 1e-6 of the initial loss).",
          "conn_optimizers", ("optimizers",), _mli_holds_for_sgd),
    Claim("mli_fails_more_with_adaptive", LUCAS,
          "Monotonic linear interpolation fails more often for networks trained with Adam than with SGD.",
          "In the optimizers grid (one recipe, one data stream), the share of non-monotonic init -> final test curves "
          "is larger for the LAMB and AdamW models than for the SGD models.",
          "conn_optimizers", ("optimizers",), _mli_fails_more_with_adaptive),
    Claim("stitching_small_penalty", "Bansal et al. 2021 (model stitching), via seed 004",
          "Networks of one architecture trained from different seeds can be stitched with an affine layer at a small "
          "cost: their hidden representations agree up to an affine map.",
          f"The within-class stitches (high1 -> high2, low1 -> low2) cost at most {SMALL_PENALTY:.0%} of the receiving "
          "model's test loss.",
          "conn_stitching", ("mono",), _stitching_small),
    Claim("stitching_across_training", "Bansal et al. 2021 (model stitching), via seed 004",
          "Models at different points in the training process can be stitched together: a network's representation "
          "is stable enough through training that an affine map joins an earlier checkpoint to the final model.",
          f"Every within-run stitch of the mono_training grid's representatives, from a checkpoint after the first tenth of "
          f"training (and before its end) into the run's final model, costs at most {SMALL_PENALTY:.0%} of the final "
          "model's test loss.",
          "conn_stitching_training", ("mono_training",), _stitching_along_training),
)
