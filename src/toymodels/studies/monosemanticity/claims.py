"""The findings of Jermyn, Schiefer & Hubinger 2022 (and of its discussion) as checks over the collected tables.

Every check averages the per-seed rows of a cell (``instances``: one row per seed) and compares cells the way the
paper's text does. "offset + decay" is a cell with bias_offset < 0 and bias_decay > 0 (the paper's engineered recipe,
offset -1 and decay 0.03); "plain" is a cell with neither. Light at import (no pandas): the workflow reads ``CLAIMS``
at parse time.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

from toymodels.claims import Claim, NotMeasured, Outcome, Tables, judged
from toymodels.studies.monosemanticity import POSITIVE_BIAS

if TYPE_CHECKING:
    import pandas as pd

PAPER = "Jermyn, Schiefer & Hubinger 2022, Engineering Monosemanticity in Toy Models"
DISCUSSION = "the paper's discussion thread (seed 000), the author's reply"
CELL = ["frequencies", "task", "nonlinearity", "k", "eps", "lr", "bias_offset", "bias_decay"]
LOSS_TOLERANCE = 0.05  # "comparable" / "equal" loss: within 5% of the other cell's
MONO_TOLERANCE = 0.2  # "comparable monosemanticity": within 20% of the other cell's #mono / #features
HIGHLY = 0.5  # "highly monosemantic": at least half as many monosemantic neurons as features (the paper: 0.6-1 per feature)


def cells(instances: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Seed means of every cell of a grid, one row per cell, with a ``recipe`` column (offset+decay, plain, other)."""
    keys = [c for c in (*CELL, *extra) if c in instances.columns]
    means = instances.groupby(keys, as_index=False)[
        ["loss", "mono_fraction_features", "mono_fraction_neurons", "n_mono", "n_dead", "mean_bias"]].mean()
    engineered = (means["bias_offset"] < 0) & (means["bias_decay"] > 0)
    plain = (means["bias_offset"] == 0) & (means["bias_decay"] == 0)
    return means.assign(recipe=["offset+decay" if e else "plain" if p else "other" for e, p in zip(engineered, plain)])


def _recipe_pairs(means: pd.DataFrame, by: list[str]) -> list[tuple[tuple, pd.Series, pd.Series]]:
    """(key, offset+decay row, plain row) for every value of ``by`` that has both recipes."""
    pairs = []
    for key, part in means.groupby(by):
        recipes = {recipe: rows.iloc[0] for recipe, rows in part.groupby("recipe")}
        if {"offset+decay", "plain"} <= set(recipes):
            pairs.append((key, recipes["offset+decay"], recipes["plain"]))
    if not pairs:
        raise NotMeasured(f"no {', '.join(by)} has both an offset+decay and a plain cell")
    return pairs


def _name(key: tuple, by: list[str]) -> str:
    return ", ".join(f"{column} {value:g}" if isinstance(value, float) else f"{value}" for column, value in zip(by, key))


def _offset_decay_raises_mono(tables: Tables) -> Outcome:
    by = ["frequencies", "lr"]
    pairs = [pair for pair in _recipe_pairs(cells(tables["learning_rate"]["instances"]), by) if pair[0][0] == "uniform"]
    if not pairs:
        raise NotMeasured("the learning_rate grid has no uniform lr with both recipes")
    holds = any(w["mono_fraction_features"] > p["mono_fraction_features"]
                and w["loss"] <= (1 + LOSS_TOLERANCE) * p["loss"] for _, w, p in pairs)
    return judged(holds, f"#mono/#features offset+decay vs plain: {_pair_listing(pairs, by)}")


def _offset_decay_mono_at_every_lr(tables: Tables) -> Outcome:
    by = ["frequencies", "lr"]
    pairs = _recipe_pairs(cells(tables["learning_rate"]["instances"]), by)
    holds = all(w["mono_fraction_features"] >= max(HIGHLY, p["mono_fraction_features"])
                and w["loss"] <= (1 + LOSS_TOLERANCE) * p["loss"] for _, w, p in pairs)
    return judged(holds, f"#mono/#features offset+decay vs plain: {_pair_listing(pairs, by)}")


def _pair_listing(pairs: list[tuple[tuple, pd.Series, pd.Series]], by: list[str]) -> str:
    return "; ".join(f"{_name(key, by)}: {w['mono_fraction_features']:.3f} vs {p['mono_fraction_features']:.3f} "
                     f"(loss {w['loss']:.3f} vs {p['loss']:.3f})" for key, w, p in pairs)


def _higher_lr_more_mono(tables: Tables) -> Outcome:
    means = cells(tables["learning_rate"]["instances"])
    plain = means[means["recipe"] == "plain"]
    parts = []
    holds = True
    for law, part in plain.groupby("frequencies"):
        if part["lr"].nunique() < 2:
            continue
        low, high = part.loc[part["lr"].idxmin()], part.loc[part["lr"].idxmax()]
        holds &= bool(high["mono_fraction_features"] > low["mono_fraction_features"] and high["mean_bias"] < low["mean_bias"])
        parts.append(f"{law}: lr {low['lr']:g} -> {high['lr']:g}: #mono/#features {low['mono_fraction_features']:.3f} -> "
                     f"{high['mono_fraction_features']:.3f}, mean bias {low['mean_bias']:.3f} -> {high['mean_bias']:.3f}")
    if not parts:
        raise NotMeasured("the learning_rate grid has fewer than two learning rates of the plain recipe")
    return judged(holds, "; ".join(parts))


def _mono_neurons_have_negative_biases(tables: Tables) -> Outcome:
    neurons = tables["learning_rate"]["neurons"]
    neurons = neurons[(neurons["bias_offset"] == 0) & (neurons["bias_decay"] == 0)]
    keys = [c for c in CELL if c in neurons.columns]
    parts, holds = [], True
    for key, part in neurons.groupby(keys):
        mono = part[part["is_monosemantic"]]
        poly = part[~part["is_monosemantic"] & ~part["is_dead"]]
        if len(mono) < 5 * part["seed"].nunique() or poly.empty:
            continue
        mono_bias, poly_bias = float(mono["bias"].median()), float(poly["bias"].median())
        holds &= mono_bias < 0 < poly_bias
        cell = dict(zip(keys, key))
        parts.append(f"{cell['frequencies']}, lr {cell['lr']:g}: "
                     f"{mono_bias:+.3f} / {poly_bias:+.3f}")
    if not parts:
        raise NotMeasured("no plain cell of the learning_rate grid has at least 5 monosemantic neurons per seed")
    return judged(holds, "median bias of monosemantic / live polysemantic neurons: " + "; ".join(parts))


def _residual_band_about_d(tables: Tables) -> Outcome:
    neurons = tables["learning_rate"]["neurons"]
    means = cells(tables["learning_rate"]["instances"], ("d",))
    engineered = means[(means["recipe"] == "offset+decay") & (means["frequencies"] == "uniform")]
    if engineered.empty:
        raise NotMeasured("the learning_rate grid has no uniform offset+decay cell")
    parts, holds = [], True
    for _, cell in engineered.iterrows():
        rows = neurons[(neurons["frequencies"] == "uniform") & (neurons["lr"] == cell["lr"])
                       & (neurons["bias_offset"] == cell["bias_offset"]) & (neurons["bias_decay"] == cell["bias_decay"])]
        count = float((rows["bias"] > POSITIVE_BIAS).groupby(rows["seed"]).sum().mean())
        d = int(cell["d"])
        holds &= 0.75 * d <= count <= 1.25 * d
        parts.append(f"lr {cell['lr']:g}: {count:.1f} neurons with bias > {POSITIVE_BIAS} (d = {d})")
    return judged(holds, "; ".join(parts))


def _neuron_sweep(tables: Tables) -> pd.DataFrame:
    means = cells(tables["neurons"]["instances"], ("n_features",))
    engineered = means[means["recipe"] == "offset+decay"]
    if engineered["k"].nunique() < 3:
        raise NotMeasured("the neurons grid has fewer than three k values of the offset+decay recipe")
    return engineered


def _mono_rises_with_k(tables: Tables) -> Outcome:
    parts, holds = [], True
    for law, part in _neuron_sweep(tables).groupby("frequencies"):
        counts = part.sort_values("k").set_index("k")["n_mono"]
        holds &= all(b >= a for a, b in pairwise(counts)) and counts.iloc[-1] > counts.iloc[0]
        parts.append(f"{law}: " + ", ".join(f"k {k}: {n:.1f}" for k, n in counts.items()))
    return judged(holds, "monosemantic neurons (seed mean): " + "; ".join(parts))


def _loss_falls_with_k_until_n(tables: Tables) -> Outcome:
    parts, holds = [], True
    for law, part in _neuron_sweep(tables).groupby("frequencies"):
        n = int(part["n_features"].iloc[0])
        loss = part.sort_values("k").set_index("k")["loss"]
        up_to_n, beyond = loss[loss.index <= n], loss[loss.index > n]
        if len(up_to_n) < 2 or beyond.empty:
            raise NotMeasured(f"the neurons grid ({law}) needs two k <= N = {n} and one k > N")
        below, at = up_to_n.iloc[-2], up_to_n.iloc[-1]
        falls = all(b < a for a, b in pairwise(up_to_n))
        holds &= falls and (at - beyond.iloc[-1]) / at < (below - at) / below
        parts.append(f"{law}: " + ", ".join(f"k {k}: {value:.3f}" for k, value in loss.items()))
    return judged(holds, "final loss (seed mean): " + "; ".join(parts))


def _k_below_n_mixed(tables: Tables) -> Outcome:
    features = tables["neurons"]["features"]
    means = _neuron_sweep(tables)
    n = int(means["n_features"].iloc[0])
    engineered = features[(features["bias_offset"] < 0) & (features["bias_decay"] > 0) & (features["k"] < n)]
    if engineered.empty:
        raise NotMeasured(f"the neurons grid has no offset+decay cell with k < N = {n}")
    parts, holds = [], True
    for (law, k), part in engineered.groupby(["frequencies", "k"]):
        share = part.groupby("seed")["status"].value_counts(normalize=True).unstack(fill_value=0.0).mean()
        mono, shared, dropped = (float(share.get(s, 0.0)) for s in ("monosemantic", "shared", "dropped"))
        holds &= mono > 0 and shared > 0 and dropped < (n - k) / n
        parts.append(f"{law} k {k}: {mono:.2f} mono / {shared:.2f} shared / {dropped:.2f} dropped")
    return judged(holds, "fraction of features: " + "; ".join(parts))


def _k_below_n_needs_offset(tables: Tables) -> Outcome:
    means = cells(tables["neurons"]["instances"], ("n_features",))
    n = int(means["n_features"].iloc[0])
    pairs = _recipe_pairs(means[means["k"] < n], ["frequencies", "k"])
    holds = all(w["mono_fraction_neurons"] >= 0.25 and w["mono_fraction_neurons"] > p["mono_fraction_neurons"]
                for _, w, p in pairs)
    measured = "; ".join(f"{law} k {k}: {w['mono_fraction_neurons']:.3f} vs {p['mono_fraction_neurons']:.3f}"
                         for (law, k), w, p in pairs)
    return judged(holds, f"#mono/#neurons offset+decay vs plain, k < N = {n}: {measured}")


def _denser_features_less_mono(tables: Tables) -> Outcome:
    means = cells(tables["sparsity"]["instances"], ("n_features", "d"))
    means = means[means["recipe"] == "offset+decay"]
    active = means["n_features"] * means["eps"]
    d = means["d"]
    sparse, dense = means[active <= d / 4], means[active >= 2 * d]
    if sparse.empty or dense.empty:
        raise NotMeasured("the sparsity grid needs an eps with N eps <= d/4 and one with N eps >= 2d")
    peak = float(means["mono_fraction_features"].max())
    worst_dense, best_sparse = float(dense["mono_fraction_features"].max()), float(sparse["mono_fraction_features"].max())
    holds = worst_dense < 0.1 * peak and worst_dense < best_sparse
    listing = ", ".join(f"N eps {a:g}: {m:.3f}" for a, m in zip(active, means["mono_fraction_features"]))
    return judged(holds, f"#mono/#features (d = {int(d.iloc[0])}): {listing}")


def _offset_threshold(tables: Tables) -> Outcome:
    means = cells(tables["offset"]["instances"])
    parts, holds = [], True
    for eps, decayed in means[means["bias_decay"] > 0].groupby("eps"):
        threshold = -math.sqrt(eps)
        below, above = decayed[decayed["bias_offset"] < threshold], decayed[decayed["bias_offset"] > threshold]
        if below.empty or above.empty:
            continue
        holds &= float(below["mono_fraction_features"].min()) > float(above["mono_fraction_features"].max())
        listing = ", ".join(f"{o:g}: {m:.3f}" for o, m in zip(decayed["bias_offset"], decayed["mono_fraction_features"]))
        parts.append(f"eps {eps:g} (-sqrt(eps) = {threshold:.3f}), offset: {listing}")
    if not parts:
        raise NotMeasured("the offset grid needs decayed cells with offsets on both sides of -sqrt(eps)")
    return judged(holds, "#mono/#features with decay: " + "; ".join(parts))


def _no_decay_stalls(tables: Tables) -> Outcome:
    means = cells(tables["offset"]["instances"])
    stalled = means[(means["bias_offset"] < 0) & (means["bias_decay"] == 0)]
    decayed = means[(means["bias_offset"] < 0) & (means["bias_decay"] > 0)]
    if stalled.empty or decayed.empty:
        raise NotMeasured("the offset grid needs a negative offset with and without decay")
    cell = stalled.loc[stalled["bias_offset"].idxmin()]
    partner = decayed.iloc[(decayed["bias_offset"] - cell["bias_offset"]).abs().argmin()]
    holds = cell["n_dead"] >= 0.9 * cell["k"] and cell["loss"] > partner["loss"]
    return judged(holds, f"offset {cell['bias_offset']:g} without decay: {cell['n_dead']:.0f} of {cell['k']} neurons dead, "
                         f"loss {cell['loss']:.3f}; with decay {partner['bias_decay']:g}: {partner['n_dead']:.0f} dead, "
                         f"loss {partner['loss']:.3f}")


def _l1_comparable(tables: Tables) -> Outcome:
    means = cells(tables["l1"]["instances"], ("l1",))
    means = means[means["recipe"] == "offset+decay"]
    without, with_l1 = means[means["l1"] == 0], means[means["l1"] > 0]
    if without.empty or with_l1.empty:
        raise NotMeasured("the l1 grid needs an offset+decay cell without and one with an L1 penalty")
    base, best = without.iloc[0], with_l1.loc[with_l1["mono_fraction_features"].idxmax()]
    holds = (base["mono_fraction_features"] >= (1 - MONO_TOLERANCE) * best["mono_fraction_features"]
             and base["loss"] <= (1 + LOSS_TOLERANCE) * best["loss"])
    return judged(holds, f"no L1: #mono/#features {base['mono_fraction_features']:.3f}, loss {base['loss']:.3f}; "
                         f"best L1 ({best['l1']:g}): {best['mono_fraction_features']:.3f}, loss {best['loss']:.3f}")


def _reproject_about_one(tables: Tables) -> Outcome:
    (_, engineered, plain), *_ = _recipe_pairs(cells(tables["reproject"]["instances"]), ["task"])
    ratio = float(engineered["mono_fraction_features"])
    holds = 0.5 <= ratio <= 2.0 and ratio > float(plain["mono_fraction_features"])
    return judged(holds, f"#mono/#features offset+decay {ratio:.3f}, plain {plain['mono_fraction_features']:.3f}")


def _abs_needs_decay(tables: Tables) -> Outcome:
    means = cells(tables["absolute"]["instances"])
    offset_only = means[(means["bias_offset"] < 0) & (means["bias_decay"] == 0)]
    decayed = means[(means["bias_offset"] < 0) & (means["bias_decay"] > 0)]
    if offset_only.empty or decayed.empty:
        raise NotMeasured("the absolute grid needs an offset cell with and one without decay")
    alone, best = offset_only.iloc[0], decayed.loc[decayed["mono_fraction_features"].idxmax()]
    holds = best["mono_fraction_features"] > alone["mono_fraction_features"] and best["loss"] < alone["loss"]
    return judged(holds, f"offset alone: #mono/#features {alone['mono_fraction_features']:.3f}, loss {alone['loss']:.3f}; "
                         f"with decay {best['bias_decay']:g}: {best['mono_fraction_features']:.3f}, loss {best['loss']:.3f}")


def _sparse_cells(tables: Tables) -> dict[str, pd.Series]:
    means = cells(tables["sparse"]["instances"], ("mask",))
    masks = {mask: rows.iloc[0] for mask, rows in means.groupby("mask")}
    if not {"dense", "fixed", "prune_grow"} <= set(masks):
        raise NotMeasured("the sparse grid needs dense, fixed and prune_grow cells")
    return masks


def _fixed_mask_costs_loss(tables: Tables) -> Outcome:
    masks = _sparse_cells(tables)
    fixed, dense = masks["fixed"]["loss"], masks["dense"]["loss"]
    return judged(fixed >= 1.1 * dense, f"loss: fixed mask {fixed:.3f}, dense {dense:.3f}")


def _prune_grow_beats_fixed(tables: Tables) -> Outcome:
    masks = _sparse_cells(tables)
    grow, fixed = masks["prune_grow"], masks["fixed"]
    return judged(grow["loss"] < fixed["loss"],
                  f"loss: prune-and-grow {grow['loss']:.3f}, fixed {fixed['loss']:.3f}; #mono/#features "
                  f"{grow['mono_fraction_features']:.3f} vs {fixed['mono_fraction_features']:.3f}")


CLAIMS = (
    Claim("offset_decay_raises_mono", f"{PAPER}, abstract and Fig. 1 (LR3 against LR1)",
          "Models can be made more monosemantic without increasing the loss, just by changing which minimum training "
          "finds: a first-layer bias started at -1 and decayed during the first half of training.",
          "At some learning rate of the uniform-frequency grid, offset+decay has a higher seed-mean #mono/#features "
          f"than plain at a seed-mean loss at most {LOSS_TOLERANCE:.0%} above plain's ('without increasing the loss').",
          "mono_lr_final", ("learning_rate",), _offset_decay_raises_mono),
    Claim("offset_decay_mono_at_every_lr", f"{PAPER}, Sec. 4.1.2, Figs. 1, 7 and 12 (LR3, LR4 against LR1, LR2)",
          "With the offset and decay, all learning rates find highly monosemantic solutions, at comparable (slightly "
          "lower) loss, for uniform and power-law frequencies.",
          f"In every (frequencies, lr) of the grid, offset+decay has a seed-mean #mono/#features of at least {HIGHLY} "
          "('highly': the paper's offset+decay models have 0.6-1 monosemantic neurons per feature) and at least "
          f"plain's, at a loss at most {LOSS_TOLERANCE:.0%} above plain's.",
          "mono_lr_final", ("learning_rate",), _offset_decay_mono_at_every_lr),
    Claim("higher_lr_more_mono", f"{PAPER}, Sec. 4.1.1, Figs. 3 and 6 (LR1, LR2)",
          "Without the offset, higher learning rates find loss minima with more monosemantic neurons and more negative "
          "neuron biases.",
          "For each frequency law, the plain recipe at the highest lr has a higher #mono/#features and a lower mean "
          "bias than at the lowest lr.",
          "mono_lr_final", ("learning_rate",), _higher_lr_more_mono),
    Claim("mono_neurons_negative_bias", f"{PAPER}, Sec. 4.1.1, Fig. 5 (LR1: no offset, no decay)",
          "In models trained without the offset, monosemantic neurons have moderate negative biases and polysemantic "
          "neurons small positive ones.",
          "In every plain cell with at least 5 monosemantic neurons per seed, the median bias of monosemantic neurons "
          "is below 0 and that of live polysemantic neurons above 0.",
          "mono_lr_bias", ("learning_rate",), _mono_neurons_have_negative_biases),
    Claim("residual_band_about_d", f"{PAPER}, Sec. 4.1.2, Figs. 10-11 (65 at d = 64, 33 at d = 32, 130 at d = 128)",
          "The offset+decay models keep about d polysemantic neurons with positive biases (a low-rank identity), "
          "whatever the learning rate.",
          f"In every uniform offset+decay cell the seed-mean count of neurons with bias > {POSITIVE_BIAS} (the paper's "
          "proxy) lies within 25% of d ('about d'; the paper counts 1.02-1.03 d).",
          "mono_lr_bias", ("learning_rate",), _residual_band_about_d),
    Claim("mono_rises_with_k", f"{PAPER}, Sec. 4.1.4, Figs. 15-17 (K1, K2)",
          "With the offset+decay recipe, the number of monosemantic neurons rises with the number of neurons k.",
          "For each frequency law, the seed-mean count of monosemantic neurons never falls from one k to the next "
          "larger one and is higher at the largest k than at the smallest.",
          "mono_neurons", ("neurons",), _mono_rises_with_k),
    Claim("loss_falls_with_k_until_n", f"{PAPER}, Sec. 4.1.4, Fig. 15",
          "The loss falls as neurons are added until k exceeds N, then barely changes.",
          "For each frequency law, the seed-mean loss falls at every step of k up to N, and its relative drop from "
          "k = N to the largest k is smaller than the drop from the k below N to N.",
          "mono_neurons", ("neurons",), _loss_falls_with_k_until_n),
    Claim("k_below_n_mixed", f"{DISCUSSION}; {PAPER}, Sec. 4.1.4",
          "With fewer neurons than features, models learn some features monosemantically and others polysemantically "
          "(rather than ignoring all but k features), for uniform and power-law frequencies.",
          "At every k < N of the offset+decay recipe, some features are monosemantic, some shared, and fewer than "
          "(N - k) / N are dropped (seed means of the feature statuses).",
          "mono_feature_status", ("neurons",), _k_below_n_mixed),
    Claim("k_below_n_needs_offset", f"{PAPER}, Sec. 4.1.4",
          "A large fraction of the neurons become monosemantic even with fewer neurons than features; this is not "
          "seen without the negative bias.",
          "At every k < N with both recipes, offset+decay has #mono/#neurons >= 0.25 ('a large fraction': at least a "
          "quarter) and above plain's.",
          "mono_neurons", ("neurons",), _k_below_n_needs_offset),
    Claim("denser_features_less_mono", f"{PAPER}, Sec. 4.1.5, Figs. 18-20 (E1-E4)",
          "Monosemanticity falls as features get denser: the transition begins around N eps = d/4, and by "
          "N eps = 2d there are almost no monosemantic neurons.",
          "Among offset+decay cells, the best #mono/#features at N eps >= 2d is below a tenth of the grid's peak "
          "('almost none') and below the best at N eps <= d/4.",
          "mono_sparsity", ("sparsity",), _denser_features_less_mono),
    Claim("offset_below_sqrt_eps", f"{PAPER}, Sec. 4.1.2, Figs. 8-9 (B1-B5)",
          "With bias decay, models are monosemantic when the initial mean bias lies below about -sqrt(eps); "
          "monosemanticity drops off rapidly for more positive offsets.",
          "For each eps, every decayed cell with offset below -sqrt(eps) has a higher #mono/#features than every "
          "decayed cell with offset above it.",
          "mono_offset", ("offset",), _offset_threshold),
    Claim("no_decay_stalls", f"{PAPER}, Sec. 4.1.2",
          "With the negative offset but no bias decay, no neurons activate and training stalls.",
          "The most negative offset without decay ends with at least 90% of its neurons dead and a higher loss than "
          "the same offset with decay.",
          "mono_offset", ("offset",), _no_decay_stalls),
    Claim("l1_comparable", f"{PAPER}, Sec. 4.1.3, Fig. 14 (RG1)",
          "The negative-bias model without L1 reaches comparable monosemanticity and task loss to the best model "
          "found with an L1 penalty on the activations.",
          f"The offset+decay cell without L1 has #mono/#features at least {1 - MONO_TOLERANCE:.0%} of the most "
          f"monosemantic L1 cell's, and a loss at most {LOSS_TOLERANCE:.0%} above it.",
          "mono_l1", ("l1",), _l1_comparable),
    Claim("reproject_about_one", f"{PAPER}, Sec. 4.2, Fig. 21 (RP1)",
          "On the re-projector task the negative offset gives roughly one monosemantic neuron per feature.",
          "The offset+decay re-projector has #mono/#features between 0.5 and 2 ('roughly one') and above the plain "
          "re-projector's.",
          "mono_reproject", ("reproject",), _reproject_about_one),
    Claim("abs_needs_decay", f"{PAPER}, Sec. 4.3, Figs. 22-23 (LR5, D1)",
          "On the absolute-value task the offset alone is insufficient; with bias decay the models are more "
          "monosemantic, and more monosemantic models reach lower loss.",
          "The most monosemantic decayed cell has a higher #mono/#features and a lower loss than the offset-only cell.",
          "mono_abs", ("absolute",), _abs_needs_decay),
    Claim("fixed_mask_costs_loss", f"{PAPER}, Sec. 4.1.4 (sparse layers)",
          "Even modest sparsity of a fixed sparse first layer gives significantly greater loss than a dense layer.",
          "The fixed-mask cell's loss is at least 10% above the dense cell's ('significantly greater').",
          "mono_sparse", ("sparse",), _fixed_mask_costs_loss),
    Claim("prune_grow_beats_fixed", DISCUSSION,
          "A prune-and-grow first layer (fixed sparsity, smallest weights pruned, others enabled) does much better "
          "than a fixed sparse mask.",
          "The prune-and-grow cell's loss is below the fixed-mask cell's at the same density.",
          "mono_sparse", ("sparse",), _prune_grow_beats_fixed),
)
