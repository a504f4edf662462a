"""The findings of Peigne (2023) on informed dictionary initialisation, and of Sharkey et al. (2022) on recovering
features with sparse autoencoders, as checks over the collected tables.

Light at import (no pandas): the workflow reads ``CLAIMS`` at parse time. Every check reads the instances table.
An initialisation's steps to a threshold in a scenario is the mean over its seeds when every seed reached the
threshold, and "not reached" otherwise; one initialisation is *sooner* than another when it reached and the other
did not, or both reached and its mean is lower; when neither reached, the pair cannot be compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toymodels.claims import Claim, NotMeasured, Outcome, Tables, judged
from toymodels.studies.sae import threshold_column
from toymodels.studies.sae.instances import RARE_METHODS

if TYPE_CHECKING:
    import pandas as pd

PEIGNE = "Peigne 2023, Taking features out of superposition with sparse autoencoders more quickly with informed initialization"
SHARKEY = "Sharkey, Braun, Millidge 2022, [Interim research report] Taking features out of superposition with sparse autoencoders"
DATA_BASED = ("data", "svd", *RARE_METHODS)
NAMES = {"xavier": "Xavier", "orthogonal": "orthogonal", "data": "raw data", "svd": "SVD",
         "rare_mean": "minus mean", "rare_centroid": "minus centroid", "rare_outlier": "LOF outliers",
         "rare_ward": "minus Ward centroid", "rare_isolation": "isolation forest"}
RECOVERED = 0.95  # the lowest of the seed's MMCS thresholds: a feature set counts as recovered from here on

Variant = tuple[str, float | None]  # (init, rare ratio or None)


def one_alpha(instances: pd.DataFrame) -> pd.DataFrame:
    """The rows of the smallest alpha (the figures' default) of a grid that trains several."""
    return instances[instances["alpha"] == instances["alpha"].min()]


def scenario_rows(instances: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """The rows of one scenario ("d/N"); :class:`NotMeasured` when the grid has none."""
    rows = instances[instances["scenario"] == scenario]
    if rows.empty:
        raise NotMeasured(f"the grid has no {scenario} scenario")
    return rows


def steps_to(rows: pd.DataFrame, threshold: float) -> dict[Variant, float | None]:
    """Per (init, rare ratio) in ``rows``: the mean steps to ``threshold`` over its seeds, None unless every seed
    reached it."""
    out: dict[Variant, float | None] = {}
    for (init, ratio), runs in rows.groupby(["init", rows["rare_ratio"].astype(float).fillna(-1.0)]):
        steps = runs[threshold_column(threshold)]
        out[(init, None if ratio < 0 else float(ratio))] = float(steps.mean()) if steps.notna().all() else None
    return out


def sooner(a: float | None, b: float | None) -> bool | None:
    """Whether steps ``a`` come before steps ``b`` (None = not reached); None when neither reached."""
    if a is None and b is None:
        return None
    return b is None or (a is not None and a < b)


def label(variant: Variant) -> str:
    init, ratio = variant
    return NAMES[init] + (f" {100 * ratio:g}%" if ratio is not None else "")


def steps_text(steps: float | None) -> str:
    return "not reached" if steps is None else f"{steps:,.0f}"


def baseline(steps: dict[Variant, float | None], init: str, scenario: str) -> float | None:
    """The steps of a non-rare init; :class:`NotMeasured` when the scenario lacks it."""
    if (init, None) not in steps:
        raise NotMeasured(f"{scenario} has no {NAMES[init]} initialisation")
    return steps[(init, None)]


def _data_and_orthogonal(rows: pd.DataFrame, scenario: str, threshold: float) -> tuple[float | None, float | None, str]:
    """Steps to ``threshold`` of raw data and of orthogonal, and both in words."""
    steps = steps_to(rows, threshold)
    data, orthogonal = baseline(steps, "data", scenario), baseline(steps, "orthogonal", scenario)
    return data, orthogonal, f"raw data {steps_text(data)} vs orthogonal {steps_text(orthogonal)}"


def _mean_initial(rows: pd.DataFrame) -> dict[str, float]:
    return rows.groupby("init")["mmcs_initial"].mean().to_dict()


def _start_higher(tables: Tables) -> Outcome:
    instances = one_alpha(tables["inits"]["instances"])
    if instances.empty:
        raise NotMeasured("the inits grid has no instances")
    holds, parts = True, []
    for scenario, rows in instances.groupby("scenario", sort=False):
        means = _mean_initial(rows)
        data = {i: v for i, v in means.items() if i in DATA_BASED}
        base = {i: v for i, v in means.items() if i in ("xavier", "orthogonal")}
        if not data or "orthogonal" not in base:
            raise NotMeasured(f"{scenario} needs orthogonal and at least one data-based initialisation")
        holds &= min(data.values()) > max(base.values())
        parts.append(f"{scenario}: " + ", ".join(f"{NAMES[i]} {v:.2f}" for i, v in {**base, **data}.items()))
    return judged(holds, "mean MMCS at step 0: " + "; ".join(parts))


def _start_levels(tables: Tables) -> Outcome:
    instances = one_alpha(tables["inits"]["instances"])
    holds, parts = True, []
    for scenario, rows in instances.groupby("scenario", sort=False):
        means = _mean_initial(rows)
        if "data" not in means or "orthogonal" not in means:
            raise NotMeasured(f"{scenario} needs raw-data and orthogonal initialisations")
        holds &= means["data"] > 0.60 and means["orthogonal"] < 0.30
        parts.append(f"{scenario}: raw data {means['data']:.3f}, orthogonal {means['orthogonal']:.3f}")
    if not parts:
        raise NotMeasured("the inits grid has no instances")
    return judged(holds, "mean MMCS at step 0: " + "; ".join(parts))


def _data_first_to_095(tables: Tables) -> Outcome:
    instances = one_alpha(tables["inits"]["instances"])
    expected = {"128/256": True, "128/512": False, "128/1024": True}  # raw data sooner than orthogonal?
    verdicts, parts = [], []
    for scenario, data_sooner in expected.items():
        rows = instances[instances["scenario"] == scenario]
        if rows.empty:
            continue
        data, orthogonal, text = _data_and_orthogonal(rows, scenario, 0.95)
        parts.append(f"{scenario}: {text}")
        first = sooner(data, orthogonal) if data_sooner else sooner(orthogonal, data)
        if first is not None:
            verdicts.append(first)
    if not verdicts:
        raise NotMeasured("no scenario of 128/256, 128/512, 128/1024 where raw data or orthogonal reached 0.95"
                          + (f" ({'; '.join(parts)})" if parts else ""))
    return judged(all(verdicts), "steps to MMCS 0.95 (mean of seeds): " + "; ".join(parts))


def _orthogonal_after_095(tables: Tables) -> Outcome:
    instances = one_alpha(tables["inits"]["instances"])
    verdicts, parts = [], []
    for scenario, rows in instances.groupby("scenario", sort=False):
        for threshold in (0.98, 0.99):
            data, orthogonal, text = _data_and_orthogonal(rows, scenario, threshold)
            parts.append(f"{scenario} to {threshold:g}: {text}")
            first = sooner(orthogonal, data)
            if first is not None:
                verdicts.append(first)
    if not verdicts:
        raise NotMeasured("neither orthogonal nor raw data reached MMCS 0.98 or 0.99 in any scenario"
                          + (f" ({'; '.join(parts)})" if parts else ""))
    return judged(all(verdicts), "steps (mean of seeds): " + "; ".join(parts))


def _rare_steps(tables: Tables, scenario: str) -> dict[Variant, float | None]:
    steps = steps_to(scenario_rows(one_alpha(tables["rare_ratio"]["instances"]), scenario), 0.99)
    if not any(init in RARE_METHODS for init, _ in steps):
        raise NotMeasured(f"the rare_ratio grid has no rare-feature initialisation at {scenario}")
    return steps


def _fastest_rare(steps: dict[Variant, float | None]) -> tuple[Variant, float] | None:
    reached = {v: s for v, s in steps.items() if v[0] in RARE_METHODS and s is not None}
    return min(reached.items(), key=lambda item: item[1]) if reached else None


def _rare_sooner_than_orthogonal(tables: Tables) -> Outcome:
    scenario = "128/512"
    steps = _rare_steps(tables, scenario)
    orthogonal = baseline(steps, "orthogonal", scenario)
    best = _fastest_rare(steps)
    if best is None and orthogonal is None:
        raise NotMeasured(f"at {scenario} neither orthogonal nor any rare-feature initialisation reached 0.99")
    if best is None:
        return judged(False, f"at {scenario} no rare-feature initialisation reached 0.99 on every seed; "
                             f"orthogonal {steps_text(orthogonal)}")
    variant, fastest = best
    gain = "" if orthogonal is None else f" ({100 * (1 - fastest / orthogonal):+.1f}% fewer steps)"
    return judged(sooner(fastest, orthogonal),
                  f"at {scenario}, steps to MMCS 0.99 (mean of seeds): fastest rare-feature init {label(variant)} "
                  f"{steps_text(fastest)} vs orthogonal {steps_text(orthogonal)}{gain}")


def _methods_beat_data(tables: Tables, scenario: str, methods: tuple[str, ...], low: float, high: float) -> Outcome:
    """Every ratio in [low, high] of every method in ``methods`` reaches 0.99 sooner than raw data at ``scenario``."""
    steps = _rare_steps(tables, scenario)
    data = baseline(steps, "data", scenario)
    compared = {v: s for v, s in steps.items() if v[0] in methods and low <= v[1] <= high}
    if not compared:
        raise NotMeasured(f"{scenario} has no {' or '.join(NAMES[m] for m in methods)} ratio in "
                          f"{100 * low:g}% .. {100 * high:g}%")
    results = [sooner(s, data) for s in compared.values()]
    if all(r is None for r in results):
        raise NotMeasured(f"at {scenario} neither raw data nor the compared rare-feature inits reached 0.99")
    text = ", ".join(f"{label(v)} {steps_text(s)}" for v, s in sorted(compared.items()))
    return judged(all(r is True for r in results),
                  f"at {scenario}, steps to MMCS 0.99 (mean of seeds): raw data {steps_text(data)}; {text}")


def _centroid_outlier_beat_data_512(tables: Tables) -> Outcome:
    return _methods_beat_data(tables, "128/512", ("rare_centroid", "rare_outlier"), 0.0, 1.0)


def _outlier_beats_data_256(tables: Tables) -> Outcome:
    return _methods_beat_data(tables, "128/256", ("rare_outlier",), 0.01, 0.15)


def _best_mmcs(instances: pd.DataFrame) -> pd.Series:
    """Per dictionary ratio M/N: the best final MMCS over alpha (mean over seeds)."""
    return instances.groupby(["dict_ratio", "alpha"])["mmcs_final"].mean().groupby(level=0).max()


def _recovery_needs_m_ge_n(tables: Tables) -> Outcome:
    best = _best_mmcs(tables["alpha_dict"]["instances"])
    small, large = best[best.index < 1], best[best.index >= 1]
    if small.empty or large.empty:
        raise NotMeasured("needs dictionary ratios below 1 and at least 1 in the alpha_dict grid")
    return judged(bool((large >= RECOVERED).all() and (small < RECOVERED).all()),
                  "best final MMCS over alpha: " + ", ".join(f"{v:.3f} (M/N = {r:g})" for r, v in best.items()))


def _dead_beyond_n(tables: Tables) -> Outcome:
    instances = tables["alpha_dict"]["instances"]
    dead = instances.groupby(["alpha", "dict_ratio"])["dead_fraction_final"].mean().unstack()
    if 1.0 not in dead.columns or dead.columns.max() <= 1.0:
        raise NotMeasured("needs M/N = 1 and a larger dictionary ratio in the alpha_dict grid")
    largest = dead.columns.max()
    holds = bool((dead[largest] > dead[1.0]).all())
    return judged(holds, f"dead fraction at M/N = 1 -> {largest:g}: "
                         + ", ".join(f"{row[1.0]:.3f} -> {row[largest]:.3f} (alpha {a:g})" for a, row in dead.iterrows()))


def _feature_count_estimate(tables: Tables) -> Outcome:
    from toymodels.studies.sae.counting import consecutive_mmcs, estimate_feature_count

    pairs = consecutive_mmcs(tables["alpha_dict"]["atoms"])
    if pairs.empty or pairs.groupby("alpha").size().min() < 2:
        raise NotMeasured("needs at least three dictionary ratios in the alpha_dict grid (a peak needs two pairs of consecutive sizes)")
    estimates = estimate_feature_count(pairs)
    peaks = estimates.groupby("alpha")["peak_mmcs"].mean()
    alpha = float(peaks.idxmax())
    chosen = estimates[estimates["alpha"] == alpha]
    n_true = int(chosen["n_features"].iloc[0])
    holds = bool(((chosen["estimate"] > n_true / 2) & (chosen["estimate"] < 2 * n_true)).all())
    per_alpha = ", ".join(f"{a:g}: {'/'.join(str(e) for e in part['estimate'])} (peak {part['peak_mmcs'].mean():.3f}; "
                          f"back {'/'.join(str(e) for e in part['estimate_back'])})" for a, part in estimates.groupby("alpha"))
    return judged(holds, f"estimate {'/'.join(str(e) for e in chosen['estimate'])} vs N = {n_true} at alpha {alpha:g} "
                         f"(highest peak); per alpha {per_alpha}")
def _steps_superlinear_in_d(tables: Tables) -> Outcome:
    from toymodels.studies.sae.scaling import reached_everywhere, scaling_fit, scaling_points

    verdicts, parts = [], []
    for threshold in (0.95, 0.99):
        points = scaling_points({"scaling": tables["d_scaling"]}, threshold)
        for init in [i for i in ("orthogonal", "data") if i in set(points["init"])]:
            fit = scaling_fit(points, init)
            ds = reached_everywhere(points, init)
            if fit is None:
                where = f"only at d = {', '.join(map(str, ds))}" if ds else "at no d"
                parts.append(f"{NAMES[init]} to {threshold:g}: every seed reached it {where} (no fit)")
                continue
            verdicts.append(fit.exponent > 1)
            parts.append(f"{NAMES[init]} to {threshold:g}: exponent {fit.exponent:.2f} +- {fit.stderr:.2f} "
                         f"(d = {', '.join(map(str, ds))})")
    if not verdicts:
        raise NotMeasured("no initialisation reached a threshold on every seed at three or more d"
                          + (f" ({'; '.join(parts)})" if parts else ""))
    return judged(all(verdicts), "steps ~ d^b, least squares on log-log: " + "; ".join(parts))


CLAIMS = (
    Claim(
        id="data_inits_start_higher",
        source=f"{PEIGNE}, TL;DR and section I (MMCS by step, 128/256, 128/512, 128/1024)",
        statement="Initialising the dictionary from the data gives a much better start than orthogonal (or Xavier) "
                  "initialisation.",
        criterion="In every scenario of the inits grid, the mean MMCS at step 0 of every data-based initialisation "
                  "(raw data, SVD, the rare-feature methods) exceeds that of orthogonal and Xavier.",
        figure="sae_mmcs_initial",
        grids=("inits",),
        check=_start_higher,
    ),
    Claim(
        id="start_levels",
        source=f"{PEIGNE}, TL;DR ('Immediate MMCS ~ 0.65, MMCS < 30% at start with the original orthogonal "
               "initialization') and section I ('the MMCS is immediately above 0.60')",
        statement="Raw-data initialisation starts above MMCS 0.60, orthogonal below 0.30.",
        criterion="In every scenario of the inits grid: mean MMCS at step 0 of raw data > 0.60 and of orthogonal "
                  "< 0.30.",
        figure="sae_mmcs_initial",
        grids=("inits",),
        check=_start_levels,
    ),
    Claim(
        id="data_first_to_095",
        source=f"{PEIGNE}, section I, observation 2",
        statement="Raw data reaches MMCS 0.95 more quickly than orthogonal initialisation on average in 128/256 and "
                  "128/1024, but not in 128/512.",
        criterion="Steps to 0.95 (mean of seeds, all seeds reaching): raw data sooner than orthogonal at 128/256 and "
                  "128/1024, orthogonal sooner at 128/512; judged on the scenarios present where at least one of the "
                  "two reached 0.95.",
        figure="sae_mmcs_curves",
        grids=("inits",),
        check=_data_first_to_095,
    ),
    Claim(
        id="orthogonal_overtakes_after_095",
        source=f"{PEIGNE}, section I, observation 2 ('once the 0.95 threshold passed, orthogonal initialization "
               "always beat raw data in terms of speed')",
        statement="Past MMCS 0.95, orthogonal initialisation reaches the higher thresholds sooner than raw data.",
        criterion="In every scenario of the inits grid, orthogonal reaches MMCS 0.98 and 0.99 sooner than raw data "
                  "(mean of seeds; not reaching counts as later); pairs where neither reached are not judged.",
        figure="sae_mmcs_curves",
        grids=("inits",),
        check=_orthogonal_after_095,
    ),
    Claim(
        id="rare_inits_reach_099_sooner",
        source=f"{PEIGNE}, TL;DR ('Up to ~10% speedup to reach 0.99 MMCS') and section II (128/512: 'centroid based "
               "approach is quicker [than orthogonal] for a range of parameters between 1% and 15%, reaching a ~10% "
               "speedup at 5% of rare features')",
        statement="Some rare-feature initialisations reach MMCS 0.99 sooner than orthogonal initialisation, by up to "
                  "~10%.",
        criterion="At 128/512, the fastest rare-feature initialisation of the rare_ratio grid (any method and ratio; "
                  "mean of seeds, all seeds reaching) reaches MMCS 0.99 in fewer steps than orthogonal; the measured "
                  "speed-up is reported against the ~10% of the source.",
        figure="sae_rare_ratio",
        grids=("rare_ratio",),
        check=_rare_sooner_than_orthogonal,
    ),
    Claim(
        id="centroid_outlier_beat_data_512",
        source=f"{PEIGNE}, section II ('On average centroid based and outlier detection always outperform raw data "
               "initialization for the scenario 128/512')",
        statement="At 128/512, centroid-based and outlier-based rare-feature initialisations reach MMCS 0.99 sooner "
                  "than raw data, at every rare-feature ratio.",
        criterion="At 128/512, for every ratio of the rare_ratio grid, minus-centroid and LOF-outlier inits reach "
                  "0.99 sooner than raw data (mean of seeds; not reaching counts as later).",
        figure="sae_rare_ratio",
        grids=("rare_ratio",),
        check=_centroid_outlier_beat_data_512,
    ),
    Claim(
        id="outlier_beats_data_256",
        source=f"{PEIGNE}, section II ('On average outliers detection with a rare features ratio between 1 and 15% "
               "is faster than raw data initialization', 128/256)",
        statement="At 128/256, LOF-outlier initialisation with 1% to 15% rare atoms reaches MMCS 0.99 sooner than raw "
                  "data.",
        criterion="At 128/256, for every ratio of the rare_ratio grid in 1% .. 15%, LOF-outlier init reaches 0.99 "
                  "sooner than raw data (mean of seeds; not reaching counts as later).",
        figure="sae_rare_ratio",
        grids=("rare_ratio",),
        check=_outlier_beats_data_256,
    ),
    Claim(
        id="recovery_needs_m_ge_n",
        source=f"{SHARKEY}, toy-data results (MMCS over the L1 coefficient and the dictionary ratio)",
        statement="A sparse autoencoder recovers the ground-truth features when its dictionary is at least as large "
                  "as the number of features, at a suitable L1 coefficient; a smaller dictionary cannot.",
        criterion=f"In the alpha_dict grid, the best final MMCS over alpha (mean of seeds) is >= {RECOVERED} (the "
                  "seed's lowest recovery threshold) at every M/N >= 1 and below it at every M/N < 1.",
        figure="sae_alpha_dict",
        grids=("alpha_dict",),
        check=_recovery_needs_m_ge_n,
    ),
    Claim(
        id="dead_latents_beyond_n",
        source=f"{SHARKEY}, toy-data results (dead neurons over the L1 coefficient and the dictionary ratio: a sign "
               "that the dictionary is larger than the number of features)",
        statement="Latents beyond the number of ground-truth features die.",
        criterion="In the alpha_dict grid, at every alpha, the dead fraction (mean of seeds) at the largest M/N "
                  "exceeds that at M/N = 1.",
        figure="sae_alpha_dict",
        grids=("alpha_dict",),
        check=_dead_beyond_n,
    ),
    Claim(
        id="feature_count_from_dictionaries",
        source=f"{SHARKEY}, toy-data results (MMCS between learned dictionaries of different sizes at the same L1 "
               "coefficient, as a way to tell the number of features without the ground truth)",
        statement="The number of ground-truth features can be read from learned dictionaries alone: a dictionary "
                  "at least as large as the number of features shares its atoms with larger dictionaries, a smaller "
                  "one does not, and beyond it the extra atoms die or duplicate, so the MMCS between consecutive "
                  "dictionary sizes peaks at the number of features.",
        criterion="In the alpha_dict grid, at the alpha whose MMCS between consecutive dictionaries peaks highest "
                  "(chosen without the ground truth), every seed's estimate (the smaller size of its peak pair) is "
                  "within a factor 2 of the true N, strictly (N/2 < estimate < 2N): with sizes a factor 2 apart, as "
                  "in the source's sweep, that is the size grid's resolution.",
        figure="sae_feature_count",
        grids=("alpha_dict",),
        check=_feature_count_estimate,
    ),
    Claim(
        id="steps_superlinear_in_d",
        source=f"{PEIGNE}, discussion (comment: 'I predict the scaling of the data needed and of the amount of "
               "features is super linear in d_model')",
        statement="The data (training steps at a fixed batch) an SAE needs to recover the features grows "
                  "super-linearly with the input dimension d.",
        criterion="In the d_scaling grid (N = 2d, sparsity per dimension held), for orthogonal and raw-data "
                  "initialisations and MMCS 0.95 and 0.99, the least-squares exponent b of steps ~ d^b (log steps on "
                  "log d, every run of the d at which all seeds reached the threshold; at least three such d) "
                  "exceeds 1, super-linear being the source's word; judged on every (init, threshold) with a fit.",
        figure="sae_d_scaling",
        grids=("d_scaling",),
        check=_steps_superlinear_in_d,
    ),
)
