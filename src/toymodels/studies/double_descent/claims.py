"""The findings of Henighan et al. 2023 and of its replicators' comments, as checks over the collected tables.

Light at import (no pandas): the workflow reads ``CLAIMS`` at parse time. The checks read best-of-seeds rows
(``instances.selected``, the paper's practice and the figures' ``best_of_seeds``) where the figure does, and average
over data seeds where a grid has several.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any, Callable

from toymodels.claims import Claim, NotMeasured, Outcome, Tables, judged
from toymodels.studies.double_descent.scale import generalising_onset, onset_spread, post_onset_curves
from toymodels.studies.double_descent.variants import variant_label

if TYPE_CHECKING:
    import pandas as pd

HENIGHAN = "Henighan et al. 2023, Superposition, Memorization, and Double Descent"
JERMYN = "A. Jermyn's comment on Henighan et al. 2023 (what sets the generalizing scale?)"
JERMYN_REPEATS = "A. Jermyn's comment on Henighan et al. 2023 (repeated data points)"


def best_of_seeds(instances: pd.DataFrame) -> pd.DataFrame:
    """The instance with the lowest training loss in each cell."""
    return instances[instances["selected"]]


def best_test_loss(instances: pd.DataFrame) -> pd.DataFrame:
    """Best-of-seeds test loss, m down, T across (mean over data seeds): the values of the heatmap figure."""
    return best_of_seeds(instances).pivot_table(index="m", columns="T", values="test_loss", aggfunc="mean")


def highest_test_loss(instances: pd.DataFrame, by: str) -> pd.Series:
    """Per value of ``by``: the highest best-of-seeds test loss over T (the top of the double-descent peak)."""
    return best_of_seeds(instances).groupby([by, "T"])["test_loss"].mean().groupby(level=0).max()


def _values(values: dict[Any, Any], name: str, format: str = "{}") -> str:
    return ", ".join(f"{'no jump in the grid' if v is None else format.format(v)} ({name} {k:g})" for k, v in values.items())


def _grid_T(instances: pd.DataFrame) -> str:
    return f"grid T = {instances['T'].min()} .. {instances['T'].max()}"


def _datapoint_dimensionality(tables: Tables) -> Outcome:
    best = best_of_seeds(tables["dataset_size"]["instances"])
    if best.empty:
        raise NotMeasured("the dataset_size grid has no instances")
    t = best["T"].min()
    dims = best[best["T"] == t].groupby("m")["mean_datapoint_dimensionality"].mean()
    shares = {m: dim / min(1.0, m / t) for m, dim in dims.items()}
    return judged(all(share > 0.5 for share in shares.values()),
                  f"at T = {t}, mean D_t / min(1, m/T) = " + _values(shares, "m =", "{:.2f}"))


def _regime_switch(tables: Tables) -> Outcome:
    best = best_of_seeds(tables["dataset_size"]["instances"])
    if best["T"].nunique() < 2:
        raise NotMeasured("needs at least 2 values of T in the dataset_size grid")
    by_cell = best.groupby(["T", "m"])[["mean_datapoint_dimensionality", "max_feature_dimensionality"]].mean()
    small, large = by_cell.loc[best["T"].min()], by_cell.loc[best["T"].max()]
    holds = (small["mean_datapoint_dimensionality"] > small["max_feature_dimensionality"]).all() and (
        large["max_feature_dimensionality"] > large["mean_datapoint_dimensionality"]).all()

    def pairs(part: pd.DataFrame) -> str:
        return ", ".join(f"{row.mean_datapoint_dimensionality:.3f} vs {row.max_feature_dimensionality:.3f} (m = {m})"
                         for m, row in part.iterrows())

    return judged(holds, f"mean D_t vs max D_i at T = {best['T'].min()}: {pairs(small)}; "
                         f"at T = {best['T'].max()}: {pairs(large)}")


def _loss_peaks(tables: Tables, instances: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.Series, str]:
    """The best-of-seeds test loss per (m, T) (of the dataset_size grid unless ``instances`` are given), the T of its
    peak per m, and both in words."""
    losses = best_test_loss(tables["dataset_size"]["instances"] if instances is None else instances)
    if losses.shape[1] < 3:
        raise NotMeasured(f"needs at least 3 values of T in the dataset_size grid, has {losses.shape[1]}")
    peaks = losses.idxmax(axis=1)
    text = ("peak test loss at " + ", ".join(f"T = {t} (m = {m}, {losses.loc[m, t]:.2f})" for m, t in peaks.items())
            + f"; grid T = {losses.columns.min()} .. {losses.columns.max()}")
    return losses, peaks, text


def _test_loss_peak(tables: Tables) -> Outcome:
    losses, peaks, text = _loss_peaks(tables)
    return judged(all(losses.columns.min() < t < losses.columns.max() for t in peaks), text)


def _peak_moves_with_m(tables: Tables) -> Outcome:
    _, peaks, text = _loss_peaks(tables)
    if len(peaks) < 2:
        raise NotMeasured("needs at least 2 values of m in the dataset_size grid")
    order = list(peaks)
    return judged(all(a <= b for a, b in pairwise(order)) and order[-1] > order[0], text)


def _peak_regularisation(tables: Tables) -> Outcome:
    decay = highest_test_loss(tables["weight_decay"]["instances"], "weight_decay")
    length = highest_test_loss(tables["training_length"]["instances"], "steps")
    if len(decay) < 2 or len(length) < 2:
        raise NotMeasured("needs at least 2 weight decays and 2 step counts")
    holds = decay.iloc[-1] < decay.iloc[0] and length.iloc[-1] > length.iloc[0]
    return judged(holds, "highest test loss over T: " + _values(decay.to_dict(), "weight decay", "{:.2f}") + "; "
                  + _values(length.to_dict(), "steps", "{:.2f}"))


def _jumps(instances: pd.DataFrame, by: str) -> dict[Any, Any]:
    """:func:`generalising_onset` per value of ``by``, with at least 2 values of each."""
    if instances[by].nunique() < 2 or instances["T"].nunique() < 2:
        raise NotMeasured(f"needs at least 2 values of {by} and 2 of T")
    return generalising_onset(instances, by)


def _scale_vs_weight_decay(tables: Tables) -> Outcome:
    instances = tables["weight_decay"]["instances"]
    onsets = _jumps(instances, "weight_decay")
    inside = None not in onsets.values()
    return judged(inside and len(set(onsets.values())) == 1,
                  "after its dip, max feature dimensionality reaches half its highest value at T = " + _values(onsets, "weight decay")
                  + "; " + _grid_T(instances))


def _scale_vs_sparsity(tables: Tables) -> Outcome:
    instances = tables["sparsity"]["instances"]
    onsets = _jumps(instances, "sparsity")
    measured = ("after its dip, max feature dimensionality reaches half its highest value at T = " + _values(onsets, "S =")
                + "; " + _grid_T(instances))
    if None in onsets.values():
        return judged(False, measured)
    per_feature = {s: t * (1 - s) for s, t in onsets.items()}
    spread_t = max(onsets.values()) / min(onsets.values())
    spread_per_feature = max(per_feature.values()) / min(per_feature.values())
    return judged(spread_per_feature < spread_t,
                  measured.removesuffix("; " + _grid_T(instances))
                  + ", i.e. T(1-S) = " + _values(per_feature, "S =", "{:.3g}")
                  + f": spread x{spread_t:.3g} in T, x{spread_per_feature:.3g} in T(1-S); " + _grid_T(instances))


def _few_repeats_unchanged(tables: Tables) -> Outcome:
    summary = _repetition(tables)
    few = summary[summary["repeat_count"].isin([2, 3])]
    if few.empty:
        raise NotMeasured("needs repeat_count 2 or 3 in the repeated_generalising grid")
    holds = bool((~few["point_large"]).all() and (few["features_lost"] == 0).all())
    return judged(holds, _repetition_text(summary))


def _many_repeats_displace(tables: Tables) -> Outcome:
    summary = _repetition(tables)
    most = summary.iloc[-1]
    if most["repeat_count"] <= 3:
        raise NotMeasured("needs a repeat_count above 3 in the repeated_generalising grid")
    reference = int(summary["large_features"].iloc[0])
    holds = bool(most["point_large"]) and 1 <= most["features_lost"] < reference
    return judged(holds, _repetition_text(summary))


def _repetition(tables: Tables) -> pd.DataFrame:
    from toymodels.studies.double_descent.repetition import repetition_summary

    grid = tables["repeated_generalising"]
    if grid["instances"]["repeat_count"].nunique() < 2:
        raise NotMeasured("needs at least 2 repeat counts (1 and more) in the repeated_generalising grid")
    reference = best_of_seeds(grid["instances"]).query("repeat_count == 1")
    if not (reference["test_loss"] < 1).all():
        raise NotMeasured(f"the R = 1 model does not generalise at T = {reference['T'].iloc[0]} (test loss "
                          f"{reference['test_loss'].iloc[0]:.3f} >= 1, predicting zero)")
    return repetition_summary(grid["instances"], grid["features"], grid["datapoints"])


def _repetition_text(summary: pd.DataFrame) -> str:
    return (f"large features (D_i >= {summary['threshold'].iloc[0]:.3f}, half the R = 1 model's max), repeated point's "
            "R D_t, and D_i of the feature along it: " + "; ".join(
                f"R = {row.repeat_count}: {row.large_features}, {row.repeated_share:.3f}, {row.aligned_dimensionality:.3f}"
                for row in summary.itertuples()))


def _collapse_by_m(tables: Tables) -> Outcome:
    instances = tables["sparsity_by_m"]["instances"]
    spreads = onset_spread(instances)
    measured = {m: v for m, v in spreads.items() if v is not None}
    text = ("spread of the onsets in log10 T(1-S): " + _values(spreads, "m =", "{:.2f}").replace("no jump in the grid", "not all jump")
            + "; " + _grid_T(instances))
    if len(measured) < 2:
        raise NotMeasured("needs 2 values of m at which every sparsity's curve jumps inside the grid; " + text)
    smallest, largest = min(measured), max(measured)
    return judged(measured[largest] > measured[smallest], text)


def _peak_falls_post_generalisation(tables: Tables) -> Outcome:
    curves = post_onset_curves(tables["dataset_size"]["instances"], "m")
    usable = {m: curve for m, curve in curves.items() if len(curve) >= 2}
    if not usable:
        raise NotMeasured("needs 2 values of T from the generalising onset on at some m of the dataset_size grid")
    falls = {m: bool(curve.iloc[-1] < curve.max()) for m, curve in usable.items()}
    text = "; ".join(f"m = {m}: " + ", ".join(f"{v:.3f} (T = {t})" for t, v in curve.items()) for m, curve in usable.items())
    return judged(all(falls.values()), "max feature dimensionality from the onset on: " + text)
PEAK_RISE = 1.1  # a variant's peak must stand 10% above both ends of the T grid: a flat curve's seed scatter is no peak
HOBBHAHN = "M. Hobbhahn's replication comment on Henighan et al. 2023"
ELHAGE = "Elhage et al. 2022, Toy Models of Superposition (the infinite-data setting, as quoted by Henighan et al. 2023)"
FRACTION_VALUES = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)  # Elhage et al.'s sticky dimensionalities
FRACTION_WINDOW = 0.03


def _variant_peak(label: str) -> Callable[[Tables], Outcome]:
    """The check that the variant ``label`` (variants.variant_label) has double descent in T: test_loss_peak's interior
    peak, standing PEAK_RISE above both grid ends."""

    def check(tables: Tables) -> Outcome:
        instances = tables["variants"]["instances"]
        part = instances[[name == label for name in variant_label(instances)]]
        if part.empty:
            raise NotMeasured(f"the variants grid has no cells of the variant {label!r}")
        losses, peaks, text = _loss_peaks(tables, part)
        curve = losses.iloc[0]
        peak = curve.max()
        rise = peak / max(curve.iloc[0], curve.iloc[-1])
        holds = all(losses.columns.min() < t < losses.columns.max() for t in peaks) and rise >= PEAK_RISE
        ends = f"; ends {curve.iloc[0]:.3g} (T = {curve.index[0]}), {curve.iloc[-1]:.3g} (T = {curve.index[-1]})"
        return judged(holds, f"{label}: {text}{ends}, peak / higher end = {rise:.2f}")

    return check


def _infinite_best(tables: Tables, grid: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best-of-seeds instances and their features of an infinite-data grid."""
    instances = tables[grid]["instances"]
    best = best_of_seeds(instances)
    if best.empty:
        raise NotMeasured(f"the {grid} grid has no instances")
    return best, tables[grid]["features"].merge(best[["sparsity", "seed"]], how="inner")


def _pentagon(tables: Tables) -> Outcome:
    best, features = _infinite_best(tables, "infinite_pentagon")
    s = best["sparsity"].max()
    dims = features[features["sparsity"] == s].sort_values("feature")["dimensionality"]
    holds = best["m"].iloc[0] == 2 and len(dims) == 5 and bool(((dims - 0.4).abs() <= 0.04).all())
    return judged(holds, f"at 1 - S = {1 - s:.3g} (m = {best['m'].iloc[0]}, N = {len(dims)}): D_i = "
                         + ", ".join(f"{d:.3f}" for d in dims))


def _dims_per_feature_falls(tables: Tables) -> Outcome:
    instances = tables["infinite_sparsity"]["instances"]
    curve = instances.groupby("sparsity")["dims_per_feature"].mean().sort_index()
    if len(curve) < 3:
        raise NotMeasured("needs at least 3 sparsities in the infinite_sparsity grid")
    rises = [(a, b) for a, b in pairwise(curve.items()) if b[1] > a[1] + 0.02]
    holds = curve.iloc[-1] < curve.iloc[0] and not rises
    return judged(holds, "m / ||W||_F^2 (mean over seeds) = " + ", ".join(
        f"{v:.3f} (1/(1-S) = {1 / (1 - s):.3g})" for s, v in curve.items())
        + (f"; rises by more than 0.02 after 1/(1-S) = {', '.join(f'{1 / (1 - a[0]):.3g}' for a, _ in rises)}" if rises else ""))


def _sticky_fractions(tables: Tables) -> Outcome:
    _, features = _infinite_best(tables, "infinite_sparsity")
    low, high = FRACTION_VALUES[-1] - FRACTION_WINDOW, FRACTION_VALUES[0] + FRACTION_WINDOW
    dims = features[(features["dimensionality"] >= low) & (features["dimensionality"] <= high)]["dimensionality"]
    if dims.empty:
        raise NotMeasured(f"no feature has a dimensionality in [{low:.3f}, {high:.3f}]")
    import numpy as np

    near = dims.apply(lambda d: min(abs(d - f) for f in FRACTION_VALUES) <= FRACTION_WINDOW)
    grid = np.linspace(low, high, 10001)
    covered = float(np.mean([min(abs(d - f) for f in FRACTION_VALUES) <= FRACTION_WINDOW for d in grid]))
    return judged(near.mean() > covered,
                  f"{near.mean():.0%} of {len(dims)} feature dimensionalities in [{low:.3f}, {high:.3f}] lie within "
                  f"{FRACTION_WINDOW} of 1, 3/4, 2/3, 1/2, 2/5, 3/8; the windows cover {covered:.0%} of that range")


CLAIMS = (
    Claim(
        id="datapoint_dimensionality",
        source=f"{HENIGHAN}, 'How do models change with dataset size?' (dimensionality scatter, small-data regime)",
        statement="At small T the model stores the training points in superposition: their dimensionalities D_t "
                  "follow m/T.",
        criterion="At the grid's smallest T, for every m (best seed): mean D_t > min(1, m/T) / 2. min(1, m/T) is "
                  "the most T points can share of m dimensions (D_t is at most the point's leverage; leverages sum "
                  "to the rank), reached by a regular polytope; above half, the points hold most of it.",
        figure="double_descent_dimensionality",
        grids=("dataset_size",),
        check=_datapoint_dimensionality,
    ),
    Claim(
        id="regime_switch",
        source=f"{HENIGHAN}, 'How do models change with dataset size?' (small- and large-data regimes)",
        statement="Small datasets are memorised with the data points as features (the features' dimensionalities "
                  "small); large datasets are learned as real features (the data points' dimensionalities small).",
        criterion="For every m (best seed): mean D_t > max D_i at the grid's smallest T, and max D_i > mean D_t at "
                  "its largest T (the order the paper states for each regime).",
        figure="double_descent_dimensionality",
        grids=("dataset_size",),
        check=_regime_switch,
    ),
    Claim(
        id="test_loss_peak",
        source=f"{HENIGHAN}, 'Double descent' (test loss against T)",
        statement="The test loss peaks between memorising and generalising: double descent in the dataset size.",
        criterion="For every m (best seed, mean over data seeds): the T of the highest test loss lies strictly "
                  "between the grid's smallest and largest T (at least 3 values of T).",
        figure="double_descent_dimensionality",
        grids=("dataset_size",),
        check=_test_loss_peak,
    ),
    Claim(
        id="peak_moves_with_m",
        source=f"{HENIGHAN}, 'Double descent' (test loss over T and m: double descent along both axes)",
        statement="The test-loss peak moves to larger T as m grows.",
        criterion="The T of the highest test loss (best seed) never decreases from one m to the next, and is larger "
                  "at the largest m than at the smallest.",
        figure="double_descent_heatmap",
        grids=("dataset_size",),
        check=_peak_moves_with_m,
    ),
    Claim(
        id="peak_regularisation",
        source=f"{HENIGHAN}, 'Double descent' and appendix: sensitive to weight decay and training length, "
               "consistent with prior double-descent work (Nakkiran et al. 2019, 2020)",
        statement="The double-descent peak depends on regularisation as in prior work: more weight decay lowers it, "
                  "longer training raises it.",
        criterion="The highest test loss over T (best seed) is lower at the largest weight decay than at the "
                  "smallest, and higher at the most steps than at the fewest.",
        figure="double_descent_regularisation",
        grids=("weight_decay", "training_length"),
        check=_peak_regularisation,
    ),
    Claim(
        id="scale_vs_weight_decay",
        source=f"{JERMYN}, weight-decay figure",
        statement="The generalising scale, a jump in the feature dimensionalities, does not change with weight decay.",
        criterion="For every weight decay the max feature dimensionality (mean over seeds), from its lowest point "
                  "on (past the small-T memorisation bump), first reaches half its highest value (the half-maximum "
                  "point of the jump) at a T after that lowest point, so the jump lies inside the grid, and at the same "
                  "T for all weight decays.",
        figure="double_descent_generalising_scale",
        grids=("weight_decay",),
        check=_scale_vs_weight_decay,
    ),
    Claim(
        id="scale_vs_sparsity",
        source=f"{JERMYN}, feature-frequency figure",
        statement="Models of different sparsities generalise once the dataset holds each feature roughly 10 times: "
                  "the generalising scale is set by T(1-S), not by T.",
        criterion="For every sparsity the max feature dimensionality, from its lowest point on, first reaches half "
                  "its highest value at a T after that lowest point (the jump lies inside the grid), and these onsets "
                  "spread less in T(1-S) than in T (max / min ratio): the curves line up against T(1-S).",
        figure="double_descent_generalising_scale",
        grids=("sparsity",),
        check=_scale_vs_sparsity,
    ),
    Claim(
        id="few_repeats_unchanged",
        source=f"{JERMYN_REPEATS}: 'when a datapoint appears a small number of times (2-3)'",
        statement="A training point repeated 2-3 times in a generalising dataset changes nothing: it is not memorised "
                  "and the generalising features stay.",
        criterion="At a T where the R = 1 model generalises (test loss below 1), best seed, for every R in {2, 3} "
                  "of the grid: the repeated point's dimensionality over its copies (R D_t) stays below the "
                  "large-feature bar (half the R = 1 model's max D_i) and the number of features above that bar "
                  "equals the R = 1 model's.",
        figure="double_descent_repeated_generalising",
        grids=("repeated_generalising",),
        check=_few_repeats_unchanged,
    ),
    Claim(
        id="many_repeats_displace",
        source=f"{JERMYN_REPEATS}: T = 30,000 with one point repeated 5 times",
        statement="With more repeats the model learns a combination: the repeated point is embedded alongside the "
                  "generalising features and replaces one of them.",
        criterion="At the grid's largest R (> 3), best seed: the repeated point's R D_t clears the large-feature bar "
                  "(embedded like a feature), and the count of features above the bar is smaller than at R = 1 by at "
                  "least one (a feature displaced) yet some remain (a combination, not memorisation).",
        figure="double_descent_repeated_generalising",
        grids=("repeated_generalising",),
        check=_many_repeats_displace,
    ),
    Claim(
        id="collapse_by_m",
        source=f"{JERMYN}: 'for models with more hidden dimensions the dimensionality curves don't lie as cleanly on "
               "top of each other'",
        statement="The T(1-S) collapse of the generalising scale is less clean at larger m.",
        criterion="Per m, the generalising onsets of the sparsities (as in scale_vs_sparsity) spread over a wider "
                  "range of T(1-S) (log10 max / min) at the largest m than at the smallest, among the m at which every "
                  "sparsity's curve jumps inside the grid.",
        figure="double_descent_generalising_scale_by_m",
        grids=("sparsity_by_m",),
        check=_collapse_by_m,
    ),
    Claim(
        id="peak_falls_post_generalisation",
        source=f"{JERMYN}: 'the peak feature dimensions decrease as the datasets grow post-generalization'",
        statement="Past the generalising scale, the largest feature dimensionality falls as T grows.",
        criterion="For every m of dataset_size with at least 2 values of T from its generalising onset on: the max "
                  "feature dimensionality (mean over seeds) at the largest T is below its highest value from the onset "
                  "on (it has fallen).",
        figure="double_descent_post_generalisation",
        grids=("dataset_size",),
        check=_peak_falls_post_generalisation,
    ),
    *(Claim(
        id=f"peak_{name}",
        source=f"{HOBBHAHN}: 'I also found double descent in multiple other settings, e.g. with different loss "
               "functions or when adding a ReLU activation between the layers'",
        statement=f"Double descent in T also appears {setting}.",
        criterion="As test_loss_peak, on the variant's cells of the variants grid (m = 2, best seed): the T of the "
                  "highest test loss (the variant's own loss) lies strictly inside the grid's T range; and the peak "
                  "stands at least 10% above the test loss at both grid ends, so a flat curve's seed-to-seed scatter "
                  "does not count as a peak.",
        figure="double_descent_variants",
        grids=("variants",),
        check=_variant_peak(label),
    ) for name, label, setting in (
        ("l1_loss", "loss l1", "with the absolute error (L1) as the reconstruction loss (the comment names no loss; "
                               "L1 is our choice)"),
        ("hidden_relu", "hidden ReLU", "with a ReLU between the layers, h = ReLU(W x)"),
    )),
    Claim(
        id="infinite_pentagon",
        source=f"{ELHAGE}: 'if the model has a two dimensional hidden space, sparse features will be organized as a "
               "pentagon'; the expected dimensionality of a pentagon's features is 2/5",
        statement="With infinite data at m = 2, N = 5 and high sparsity the five features form a pentagon, each with "
                  "dimensionality 2/5.",
        criterion="At the grid's highest sparsity (best seed): all 5 features have D_i within 0.04 (10%) of 2/5 "
                  "(a regular pentagon gives exactly 2/5; a missing feature 0, a square's features 1/2).",
        figure="double_descent_infinite_data",
        grids=("infinite_pentagon",),
        check=_pentagon,
    ),
    Claim(
        id="dims_per_feature_falls",
        source=f"{ELHAGE}, dimensions per feature against 1/(1-S)",
        statement="The dimensions per feature m / ||W||_F^2 fall as features get sparser.",
        criterion="m / ||W||_F^2 (mean over seeds) is lower at the grid's highest sparsity than at its lowest, and "
                  "never rises by more than 0.02 from one sparsity to the next (seed scatter, not a trend).",
        figure="double_descent_infinite_data",
        grids=("infinite_sparsity",),
        check=_dims_per_feature_falls,
    ),
    Claim(
        id="sticky_fractions",
        source=f"{ELHAGE}, dimensions per feature: the features' dimensionalities stick at 1, 3/4, 2/3, 1/2, 2/5, 3/8",
        statement="Feature dimensionalities cluster at the fractions of regular configurations (digons 1/2, "
                  "pentagons 2/5, tetrahedra 3/4, ...).",
        criterion="Of the best seeds' feature dimensionalities D_i in [3/8 - 0.03, 1 + 0.03] (all sparsities pooled), "
                  "a larger share lies within 0.03 of one of the fractions than the share of that range the windows "
                  "cover (what values spread evenly over it would give).",
        figure="double_descent_infinite_data",
        grids=("infinite_sparsity",),
        check=_sticky_fractions,
    ),
)
