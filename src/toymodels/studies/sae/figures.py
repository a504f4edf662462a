"""The SAE figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from toymodels.plotting import PALETTE, TEXT_WIDTH_IN, heatmap_panel, legend_below, new_figure
from toymodels.studies.sae import LOF_NEIGHBORS, THRESHOLDS, activation_title, threshold_column
from toymodels.studies.sae.counting import consecutive_mmcs, estimate_feature_count
from toymodels.studies.sae.instances import INITS, RARE_METHODS, rare_count
from toymodels.studies.sae.metrics import steps_to_threshold
from toymodels.studies.sae.scaling import reached_everywhere, scaling_fit, scaling_points

Tables = Mapping[str, Mapping[str, pd.DataFrame]]


INIT_LABELS = {"xavier": "Xavier", "orthogonal": "orthogonal", "data": "raw data", "svd": "SVD of data",
               "rare_mean": "rare: minus mean", "rare_centroid": "rare: minus centroid", "rare_outlier": "rare: LOF outliers",
               "rare_ward": "rare: minus Ward centroid", "rare_isolation": "rare: isolation forest"}
INIT_COLORS = {"xavier": "0.55", "orthogonal": "k", "data": PALETTE["blue"], "svd": PALETTE["purple"],
               "rare_mean": PALETTE["orange"], "rare_centroid": PALETTE["green"], "rare_outlier": PALETTE["vermillion"],
               "rare_ward": PALETTE["sky"], "rare_isolation": PALETTE["yellow"]}
THRESHOLD_COLORS = {0.95: "#f2c14e", 0.98: "#f78154", 0.99: "#b33f62"}


def _scenarios(table: pd.DataFrame) -> list[str]:
    """Scenario labels ("d/N") ordered by N then d."""
    first = table.drop_duplicates("scenario").sort_values(["n_features", "d"])
    return first["scenario"].tolist()


def _one_alpha(table: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of the alpha chosen in ``options`` (default: the smallest present)."""
    return table[np.isclose(table["alpha"], float(options.get("alpha", table["alpha"].min())))]


def _chosen_variants(table: pd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """One alpha, and for rare-feature methods one rare ratio (``options.rare_ratio``, default the smallest)."""
    table = _one_alpha(table, options)
    rare = table["init"].isin(RARE_METHODS)
    if rare.any():
        ratio = float(options.get("rare_ratio", table.loc[rare, "rare_ratio"].min()))
        table = table[~rare | np.isclose(table["rare_ratio"].astype(float), ratio)]
    return table


def _init_label(init: str, ratio: float | None) -> str:
    return INIT_LABELS[init] + (f" ({100 * ratio:g}%)" if init in RARE_METHODS and pd.notna(ratio) else "")


def mmcs_curves(tables: Tables, options: Mapping[str, Any]):
    """MMCS against step, mean over seeds, one line per initialisation and one panel per scenario; the span of
    steps over which the curves first reached each threshold is shaded."""
    trace = _chosen_variants(tables["inits"]["trace"], options)
    instances = _chosen_variants(tables["inits"]["instances"], options)
    scenarios = _scenarios(trace)
    fig, axes = new_figure(1, len(scenarios), size=(4.4, 3.6), sharey=True)
    for ax, scenario in zip(axes[0], scenarios):
        part = trace[trace["scenario"] == scenario]
        for init in [i for i in INITS if i in set(part["init"])]:
            lines = part[part["init"] == init]
            mean = lines.groupby("step")["mmcs"].mean()
            ax.plot(mean.index, mean.values, color=INIT_COLORS[init], lw=1.4,
                    label=_init_label(init, lines["rare_ratio"].iloc[0]))
        reached = instances[instances["scenario"] == scenario]
        spans, texts = [], []
        for threshold in THRESHOLDS:
            steps = reached[threshold_column(threshold)].dropna()
            ax.axhline(threshold, color=THRESHOLD_COLORS[threshold], lw=0.8, ls=":")
            if len(steps):
                spans.append(ax.axvspan(steps.min(), steps.max(), color=THRESHOLD_COLORS[threshold], alpha=0.18, lw=0))
                texts.append(f"{threshold:g}: steps {steps.min()}-{steps.max()} ({len(steps)}/{len(reached)} runs)")
            else:
                spans.append(ax.plot([], [], color=THRESHOLD_COLORS[threshold], ls=":")[0])
                texts.append(f"{threshold:g}: not reached")
        ax.legend(spans, texts, fontsize=6, loc="lower right", title="first reached", title_fontsize=6)
        ax.set_title(f"d/N = {scenario}, M = {int(reached['dict_size'].iloc[0])}")
        ax.set_xlabel("training step")
        ax.set_ylim(0, 1.0)
    axes[0, 0].set_ylabel("MMCS (mean over seeds)")
    legend_below(fig, axes[0, 0])
    fig.suptitle("Feature recovery by decoder initialisation (shaded: steps at which runs first reached 0.95 / 0.98 / 0.99)")
    return fig


def mmcs_initial(tables: Tables, options: Mapping[str, Any]):
    """MMCS at step 0 per initialisation (bars: mean over seeds, dots: seeds), one bar per scenario."""
    instances = _chosen_variants(tables["inits"]["instances"], options)
    scenarios = _scenarios(instances)
    inits = [i for i in INITS if i in set(instances["init"])]
    fig, axes = new_figure(1, 1, size=(max(5.0, 1.1 * len(inits)), 3.4), max_width=TEXT_WIDTH_IN)
    ax = axes[0, 0]
    width = 0.8 / len(scenarios)
    shades = {s: c for s, c in zip(scenarios, ("#9ecae1", "#4292c6", "#08519c", "#08306b"))}
    for k, scenario in enumerate(scenarios):
        for x, init in enumerate(inits):
            values = instances[(instances["scenario"] == scenario) & (instances["init"] == init)]["mmcs_initial"]
            position = x - 0.4 + width * (k + 0.5)
            ax.bar(position, values.mean(), width * 0.9, color=shades[scenario], label=f"d/N = {scenario}" if x == 0 else None)
            ax.scatter(np.full(len(values), position), values, s=6, color="k", zorder=3, linewidths=0)
    ratio = instances.loc[instances["init"].isin(RARE_METHODS), "rare_ratio"].dropna()
    ax.set_xticks(range(len(inits)), [_init_label(i, ratio.iloc[0] if len(ratio) else None) for i in inits], rotation=30,
                  ha="right", rotation_mode="anchor")
    ax.set_ylabel("MMCS at step 0")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title("Feature recovery before training, by decoder initialisation (dots: seeds)")
    return fig


def scenario_thresholds(options: Mapping[str, Any], scenario: str) -> list[float]:
    """The MMCS levels drawn for one scenario: ``options.thresholds``, a list for every scenario or a mapping
    scenario -> list (scenarios it does not name get the study's 0.95 / 0.98 / 0.99)."""
    chosen = options.get("thresholds", THRESHOLDS)
    if isinstance(chosen, Mapping):
        chosen = chosen.get(scenario, THRESHOLDS)
    return [float(t) for t in chosen]


def first_steps(trace: pd.DataFrame, threshold: float) -> pd.Series:
    """Per instance of a trace table: the first logged step with MMCS >= ``threshold`` (the definition of the
    instances table's ``steps_to_*``), NA when never reached."""
    steps = {instance: steps_to_threshold(run["step"].tolist(), run["mmcs"].to_numpy(), threshold)
             for instance, run in trace.sort_values("step").groupby("instance")}
    return pd.Series(steps, dtype="Int64")


def rare_ratio(tables: Tables, options: Mapping[str, Any]):
    """Steps to each threshold against the rare-feature ratio, one row of panels per scenario, one line per rare
    method (mean over the seeds that reached it); runs that never reached it sit on the "not reached" line; raw-data
    and orthogonal baselines dashed. Steps come from the trace, so a scenario can be drawn at its own thresholds."""
    instances = _one_alpha(tables["rare"]["instances"], options)
    trace = tables["rare"]["trace"]
    scenarios = _scenarios(instances)
    columns = max(len(scenario_thresholds(options, s)) for s in scenarios)
    fig, axes = new_figure(len(scenarios), columns, size=(3.6, 3.0))
    for row, scenario in enumerate(scenarios):
        part = instances[instances["scenario"] == scenario].set_index("instance")
        runs_trace = trace[trace["scenario"] == scenario]
        total = int(runs_trace["step"].max())
        ratios = sorted(part["rare_ratio"].dropna().astype(float).unique())
        thresholds = scenario_thresholds(options, scenario)
        for ax in axes[row, len(thresholds):]:
            ax.set_axis_off()
        for ax, threshold in zip(axes[row], thresholds):
            cells = part.assign(reached=first_steps(runs_trace, threshold))
            ceiling = total * 1.08
            for init in [i for i in RARE_METHODS if i in set(cells["init"])]:
                runs = cells[cells["init"] == init].assign(rare_ratio=lambda t: t["rare_ratio"].astype(float))
                mean = runs.groupby("rare_ratio")["reached"].mean()
                ax.plot(mean.index, mean.values.astype(float), marker="o", ms=3, color=INIT_COLORS[init], label=INIT_LABELS[init])
                hit = runs[runs["reached"].notna()]
                ax.scatter(hit["rare_ratio"], hit["reached"].astype(float), s=8, color=INIT_COLORS[init], alpha=0.4, linewidths=0)
                missed = runs[runs["reached"].isna()]
                ax.scatter(missed["rare_ratio"], np.full(len(missed), ceiling), marker="v", s=14,
                           facecolors="none", edgecolors=INIT_COLORS[init])
            for init in ("data", "orthogonal"):
                base = cells[cells["init"] == init]["reached"]
                if len(base) and base.notna().any():
                    ax.axhline(float(base.mean()), color=INIT_COLORS[init], ls="--", lw=1,
                               label=f"{INIT_LABELS[init]} ({int(base.notna().sum())}/{len(base)} reached)")
                elif len(base):
                    ax.plot([], [], color=INIT_COLORS[init], ls="--", label=f"{INIT_LABELS[init]}: not reached")
            ax.axhline(ceiling, color="0.6", lw=0.6)
            ax.text(ratios[0], ceiling, f" not reached by step {total}", fontsize=6, va="bottom", color="0.4")
            ax.set_xscale("log")
            ax.set_xticks(ratios, [f"{100 * r:g}%" for r in ratios])
            ax.minorticks_off()
            ax.set_ylim(0, ceiling * 1.1)
            ax.set_xlabel("rare-feature ratio (share of atoms)")
            ax.set_ylabel(f"steps to MMCS {threshold:g}")
            ax.set_title(f"d/N = {scenario}: MMCS {threshold:g}")
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle("Rare-feature initialisations: steps to reach MMCS thresholds (dots: seeds; triangles: not reached)")
    return fig


def resampling(tables: Tables, options: Mapping[str, Any]):
    """MMCS, dead fraction and FVE over training (history table), with and without resampling dead latents,
    for one initialisation (``options.init``, default the first present); one row per scenario and alpha."""
    history = tables["resampling"]["history"]
    init = options.get("init", next(i for i in INITS if i in set(history["init"])))
    history = history[history["init"] == init]
    instances = tables["resampling"]["instances"]
    instances = instances[instances["init"] == init]
    rows = [(scenario, alpha) for scenario in _scenarios(history)
            for alpha in sorted(history.loc[history["scenario"] == scenario, "alpha"].unique())]
    panels = (("mmcs", "MMCS"), ("dead_fraction", "dead fraction (eval set)"),
              ("fve", "variance explained (FVE)"))
    fig, axes = new_figure(len(rows), len(panels), size=(2.4, 2.2))
    for row, (scenario, alpha) in enumerate(rows):
        part = history[(history["scenario"] == scenario) & (history["alpha"] == alpha)]
        cell = instances[(instances["scenario"] == scenario) & (instances["alpha"] == alpha)]
        for column, (key, label) in enumerate(panels):
            ax = axes[row, column]
            for resample, color in ((False, "0.35"), (True, PALETTE["vermillion"])):
                runs = part[part["resample"] == resample]
                if not len(runs):
                    continue
                for _, seed_run in runs.groupby("instance"):
                    ax.plot(seed_run["step"], seed_run[key], color=color, lw=0.6, alpha=0.35)
                mean = runs.groupby("step")[key].mean()
                count = cell.loc[cell["resample"] == resample, "resampled"].mean()
                name = f"resampling ({count:.0f} latents re-initialised per run)" if resample else "no resampling"
                ax.plot(mean.index, mean.values, color=color, lw=1.6, label=name)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
        axes[row, 1].set_title(f"d/N = {scenario}, M = {int(cell['dict_size'].iloc[0])}, alpha = {alpha:g}")
        axes[row, 2].set_ylim(max(-1.0, axes[row, 2].get_ylim()[0]), 1.0)
    legend_below(fig, axes[0, 0])
    fig.suptitle(f"Re-initialising dead latents from badly reconstructed inputs vs not ({INIT_LABELS[init]} init; "
                 "thin lines: seeds)")
    return fig


def alpha_dict(tables: Tables, options: Mapping[str, Any]):
    """Final MMCS, dead fraction and L0 over the L1 coefficient alpha and the dictionary ratio M/N."""
    instances = tables["sweep"]["instances"]
    panels = (("mmcs_final", "final MMCS", "{:.2f}"), ("dead_fraction_final", "dead fraction", "{:.2f}"),
              ("l0_final", "L0 (active latents per input)", "{:.1f}"))
    fig, axes = new_figure(1, len(panels), size=(4.2, 3.4))
    for column, (ax, (key, label, fmt)) in enumerate(zip(axes[0], panels)):
        pivot = instances.pivot_table(index="alpha", columns="dict_ratio", values=key, aggfunc="mean")
        pivot.index = [f"{a:g}" for a in pivot.index]
        pivot.index.name, pivot.columns.name = "alpha (L1 coefficient)", "dictionary ratio M/N"
        heatmap_panel(ax, pivot, "", cmap="viridis", fmt=fmt)
        if column:
            ax.set_ylabel("")
        ax.set_title(label)
    inits = ", ".join(INIT_LABELS[i] for i in INITS if i in set(instances["init"]))
    fig.suptitle(f"L1 coefficient x dictionary size, d/N = {', '.join(_scenarios(instances))} "
                 f"({inits} init, mean over seeds)")
    return fig


def _ratio_axis(ax, ratios: list[float]) -> None:
    """Dictionary ratio M/N on a log2 x axis, ticked at the ratios present."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.minorticks_off()
    ax.set_xlabel("dictionary ratio M/N")


def init_dict(tables: Tables, options: Mapping[str, Any]):
    """MMCS at step 0, final MMCS and steps to ``options.threshold`` (default 0.95, from the trace) against the
    dictionary ratio M/N, one line per initialisation (rare methods at one ratio), mean over seeds."""
    instances = _chosen_variants(tables["sweep"]["instances"], options)
    trace = _chosen_variants(tables["sweep"]["trace"], options)
    threshold = float(options.get("threshold", THRESHOLDS[0]))
    reached = pd.concat([first_steps(part, threshold).rename_axis("instance").reset_index(name="reached")
                         .assign(dict_ratio=ratio) for ratio, part in trace.groupby("dict_ratio")])
    instances = instances.merge(reached, on=["dict_ratio", "instance"], how="left")
    ratios = sorted(instances["dict_ratio"].unique())
    ceiling = float(trace["step"].max()) * 1.08
    panels = (("mmcs_initial", "MMCS at step 0"), ("mmcs_final", "final MMCS"), ("reached", f"steps to MMCS {threshold:g}"))
    fig, axes = new_figure(1, len(panels), size=(3.4, 3.0))
    for ax, (key, label) in zip(axes[0], panels):
        for init in [i for i in INITS if i in set(instances["init"])]:
            runs = instances[instances["init"] == init]
            mean = runs.groupby("dict_ratio")[key].mean().astype(float)
            style = {"color": INIT_COLORS[init], "marker": "o", "ms": 3, "lw": 1.2}
            ax.plot(mean.index, mean.values, label=_init_label(init, runs["rare_ratio"].iloc[0]), **style)
            if key == "reached":
                missed = runs[runs["reached"].isna()]
                ax.scatter(missed["dict_ratio"], np.full(len(missed), ceiling), marker="v", s=14,
                           facecolors="none", edgecolors=INIT_COLORS[init])
        _ratio_axis(ax, ratios)
        ax.set_ylabel(label)
        ax.set_title(label)
    for ax in axes[0, :2]:
        ax.set_ylim(0, 1.02)
    axes[0, 2].axhline(ceiling, color="0.6", lw=0.6)
    axes[0, 2].text(ratios[0], ceiling, f" not reached by step {int(trace['step'].max())}", fontsize=6, va="bottom", color="0.4")
    axes[0, 2].set_ylim(0, ceiling * 1.12)
    legend_below(fig, axes[0, 0])
    alpha = float(instances["alpha"].iloc[0])
    fig.suptitle(f"Decoder initialisations at dictionary sizes other than N, d/N = {', '.join(_scenarios(instances))}, "
                 f"alpha = {alpha:g} (triangles: not reached)")
    return fig


RESAMPLE_LABELS = {"loss_squared": "loss^2-weighted draw", "top_k": "worst inputs (top-k)",
                   "cluster": "worst clusters of the worst inputs"}
RESAMPLE_COLORS = {"loss_squared": PALETTE["vermillion"], "top_k": PALETTE["blue"], "cluster": PALETTE["green"]}


def resample_methods(tables: Tables, options: Mapping[str, Any]):
    """MMCS and dead fraction over training (history table) per ``resample_method``, beside the baseline grid's runs
    without resampling, for one initialisation (``options.init``, default the first present); one row per alpha."""
    history = tables["methods"]["history"]
    init = options.get("init", next(i for i in INITS if i in set(history["init"])))
    history = history[history["init"] == init]
    baseline = tables["baseline"]["history"]
    baseline = baseline[(baseline["init"] == init) & ~baseline["resample"].astype(bool)
                        & baseline["scenario"].isin(set(history["scenario"]))]
    instances = tables["methods"]["instances"]
    instances = instances[instances["init"] == init]
    alphas = sorted(history["alpha"].unique())
    panels = (("mmcs", "MMCS"), ("dead_fraction", "dead fraction (eval set)"))
    fig, axes = new_figure(len(alphas), len(panels), size=(3.0, 2.4))
    for row, alpha in enumerate(alphas):
        part = history[np.isclose(history["alpha"], alpha)]
        for column, (key, label) in enumerate(panels):
            ax = axes[row, column]
            none = baseline[np.isclose(baseline["alpha"], alpha)]
            curves = [("none", none, "0.35", "no resampling")]
            for method in [m for m in RESAMPLE_LABELS if m in set(part["resample_method"])]:
                runs = part[part["resample_method"] == method]
                counts = instances[instances["resample_method"] == method].groupby("alpha")["resampled"].mean()
                curves.append((method, runs, RESAMPLE_COLORS[method], f"{RESAMPLE_LABELS[method]} (re-initialised per run at "
                               f"alpha {' / '.join(f'{a:g}' for a in counts.index)}: {' / '.join(f'{c:.0f}' for c in counts)})"))
            for _, runs, color, name in curves:
                if not len(runs):
                    continue
                for _, seed_run in runs.groupby("instance"):
                    ax.plot(seed_run["step"], seed_run[key], color=color, lw=0.5, alpha=0.3)
                mean = runs.groupby("step")[key].mean()
                ax.plot(mean.index, mean.values, color=color, lw=1.5, label=name)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
            ax.set_title(f"alpha = {alpha:g}: {label}")
    legend_below(fig, axes[0, 0])
    scenario = ", ".join(_scenarios(history))
    fig.suptitle(f"Which inputs re-initialise dead latents, d/N = {scenario}, M = {int(instances['dict_size'].iloc[0])} "
                 f"({INIT_LABELS[init]} init; thin lines: seeds)")
    return fig


def feature_count(tables: Tables, options: Mapping[str, Any]):
    """Counting features from dictionaries alone (Sharkey et al. 2022): the MMCS of each dictionary against the next
    larger one at the same alpha (its peak estimates N), and the live atoms of each dictionary, against its size;
    the true N dashed."""
    atoms = tables["sweep"]["atoms"]
    pairs = consecutive_mmcs(atoms)
    estimates = estimate_feature_count(pairs)
    live = pd.concat([pairs[["alpha", "dict_size", "live"]],
                      pairs[["alpha", "next_size", "live_next"]].set_axis(["alpha", "dict_size", "live"], axis=1)])
    live = live.groupby(["alpha", "dict_size"])["live"].mean().reset_index()
    n_true = int(pairs["n_features"].iloc[0])
    sizes = sorted(live["dict_size"].unique())
    colors = dict(zip(sorted(pairs["alpha"].unique()), ("#fdb863", "#e66101", "#5e3c99", "#b2abd2", "#1b9e77", "#666666")))
    fig, axes = new_figure(1, 2, size=(3.6, 3.0))
    for alpha, color in colors.items():
        part = pairs[np.isclose(pairs["alpha"], alpha)].groupby("dict_size")[["mmcs_next", "mmcs_back"]].mean()
        estimate = estimates[np.isclose(estimates["alpha"], alpha)]
        axes[0, 0].plot(part.index, part["mmcs_next"], marker="o", ms=3, color=color,
                        label=f"alpha {alpha:g}: estimate {', '.join(str(e) for e in estimate['estimate'])} "
                              f"(back: {', '.join(str(e) for e in estimate['estimate_back'])})")
        axes[0, 0].plot(part.index, part["mmcs_back"], ls=":", marker="s", ms=2.5, lw=1, color=color)
        axes[0, 0].scatter(estimate["estimate"], estimate["peak_mmcs"], s=40, facecolors="none", edgecolors=color, zorder=3)
        counts = live[np.isclose(live["alpha"], alpha)]
        axes[0, 1].plot(counts["dict_size"], counts["live"], marker="o", ms=3, color=color)
    axes[0, 1].plot(sizes, sizes, color="0.7", lw=0.8, label="every atom live")
    for ax in axes[0]:
        ax.axvline(n_true, color="k", ls="--", lw=0.8, label=f"true N = {n_true}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("dictionary size M")
    axes[0, 0].set_ylabel("MMCS with the next larger dictionary")
    axes[0, 0].set_title("MMCS of each dictionary vs the next larger (circle: peak)\n"
                         "dotted: the larger's live atoms vs the smaller")
    axes[0, 0].set_ylim(0, 1.02)
    legend_below(fig, axes[0, 0])
    axes[0, 1].set_yscale("log", base=2)
    axes[0, 1].set_ylabel("live atoms (fire on the eval set)")
    axes[0, 1].set_title("live atoms per dictionary")
    axes[0, 1].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"Estimating the number of features from dictionaries alone, d/N = {', '.join(_scenarios(atoms))} "
                 f"(mean over seeds)")
    return fig


TUNED = (("centroid_clusters", "rare_centroid", "k-means clusters"), ("lof_neighbors", "rare_outlier", "LOF neighbours"))


def tuning_points(methods: pd.DataFrame, tuning: pd.DataFrame, key: str, init: str) -> pd.DataFrame:
    """The rows of ``init`` with their ``setting`` of ``key``: the tuning grid's values and, marked ``default``, the
    methods grid's run at the default (one k-means cluster per rare atom, ceil(ratio M); 250 LOF neighbours)."""
    swept = tuning[tuning["init"] == init]
    swept = swept.assign(setting=swept[key].astype(float), default=False)
    base = methods[methods["init"] == init]
    if key == "centroid_clusters":
        default = [float(rare_count(int(m), float(r))) for m, r in zip(base["dict_size"], base["rare_ratio"])]
    else:
        default = [float(LOF_NEIGHBORS)] * len(base)
    return pd.concat([swept, base.assign(setting=default, default=True)], ignore_index=True)


def _with_steps(instances: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``instances`` plus ``reached``, its steps to ``threshold`` (one of the study's THRESHOLDS; NA = never)."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold}")
    return instances.assign(reached=instances[threshold_column(threshold)])


def rare_tuning(tables: Tables, options: Mapping[str, Any]):
    """MMCS at step 0, steps to ``options.threshold`` (0.95, 0.98 or 0.99; default 0.95) and final MMCS: against the k-means cluster count
    (minus centroid) and the LOF neighbour count (LOF outliers), default settings starred, raw-data and orthogonal
    runs dashed; and every initialisation of the methods grid side by side (one bar each, mean over seeds)."""
    threshold = float(options.get("threshold", 0.95))
    methods = _with_steps(_one_alpha(tables["methods"]["instances"], options), threshold)
    tuning = _with_steps(_one_alpha(tables["tuning"]["instances"], options), threshold)
    total = int(max(tables["methods"]["trace"]["step"].max(), tables["tuning"]["trace"]["step"].max()))
    ceiling = total * 1.08
    rows = (("mmcs_initial", "MMCS at step 0"), ("reached", f"steps to MMCS {threshold:g}"), ("mmcs_final", "final MMCS"))
    fig, axes = new_figure(len(rows), 3, size=(3.0, 2.4))
    for column, (key, init, name) in enumerate(TUNED):
        points = tuning_points(methods, tuning, key, init)
        for row, (value, label) in enumerate(rows):
            ax = axes[row, column]
            y = points[value].astype(float)
            missed = y.isna()
            mean = points.assign(y=y).groupby("setting")["y"].mean()
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=INIT_COLORS[init], label=INIT_LABELS[init])
            ax.scatter(points.loc[missed, "setting"], np.full(int(missed.sum()), ceiling), marker="v", s=14,
                       facecolors="none", edgecolors=INIT_COLORS[init], label="not reached" if missed.any() else None)
            default = points[points["default"]]
            ax.scatter(default["setting"], default[value].astype(float).fillna(ceiling), marker="*", s=60, zorder=3,
                       color=INIT_COLORS[init], edgecolors="k", linewidths=0.4, label="default setting")
            for base in ("data", "orthogonal"):
                ref = methods.loc[methods["init"] == base, value].astype(float)
                if ref.notna().any():
                    ax.axhline(ref.mean(), color=INIT_COLORS[base], ls="--", lw=1, label=INIT_LABELS[base])
            ax.set_xscale("log")
            settings = sorted(points["setting"].unique())
            ax.set_xticks(settings, [f"{v:g}" for v in settings], rotation=35)
            ax.minorticks_off()
            ax.set_xlabel(f"{name} ({INIT_LABELS[init]})")
            ax.set_ylabel(label)
            if value == "reached":
                ax.axhline(ceiling, color="0.6", lw=0.6)
                ax.set_ylim(0, ceiling * 1.1)
            if row == 0:
                ax.legend(fontsize=6, loc="center right")
    inits = [i for i in INITS if i in set(methods["init"])]
    for row, (value, label) in enumerate(rows):
        ax = axes[row, 2]
        for x, init in enumerate(inits):
            runs = methods.loc[methods["init"] == init, value].astype(float)
            if runs.notna().all():
                ax.bar(x, runs.mean(), 0.7, color=INIT_COLORS[init])
                ax.scatter(np.full(len(runs), x), runs, s=6, color="k", zorder=3, linewidths=0)
            else:
                ax.text(x, 0, "not reached", rotation=90, ha="center", va="bottom", fontsize=6)
        ax.set_xticks(range(len(inits)), [INIT_LABELS[i] for i in inits], rotation=35, ha="right", rotation_mode="anchor")
        ax.set_ylabel(label)
        if value == "reached":
            ax.set_ylim(0, ceiling)
        else:
            low = float(methods[value].min())
            ax.set_ylim(max(0.0, low - 0.05) if value == "mmcs_final" else 0, 1.0)
    ratio = methods.loc[methods["init"].isin(RARE_METHODS), "rare_ratio"].dropna()
    share = f"{100 * float(ratio.iloc[0]):g}% rare atoms, " if len(ratio) else ""
    fig.suptitle(f"Tuning the rare-feature initialisations, d/N = {', '.join(_scenarios(methods))} ({share}"
                 f"{int(methods['seed'].nunique())} seed(s), {total} steps)")
    return fig


def d_scaling(tables: Tables, options: Mapping[str, Any]):
    """Steps to each threshold (``options.thresholds``, default 0.95 and 0.99) against d on log-log axes, one line
    per initialisation (dots: runs, line: mean of log steps where every seed reached), with the fitted power law and
    its exponent."""
    thresholds = [float(t) for t in options.get("thresholds", (0.95, 0.99))]
    fig, axes = new_figure(1, len(thresholds), size=(3.8, 3.4))
    for ax, threshold in zip(axes[0], thresholds):
        points = scaling_points(tables, threshold)
        top = float(tables["scaling"]["trace"]["step"].max()) * 1.3  # above the longest run: "not reached"
        ds = sorted(points["d"].unique())
        for init in [i for i in INITS if i in set(points["init"])]:
            runs = points[points["init"] == init]
            hit = runs[runs["steps"].notna()]
            color = INIT_COLORS[init]
            ax.scatter(hit["d"], hit["steps"].astype(float), s=10, color=color, alpha=0.5, linewidths=0)
            missed = runs[runs["steps"].isna()]
            ax.scatter(missed["d"], np.full(len(missed), top), marker="v", s=16, facecolors="none", edgecolors=color)
            full = hit[hit["d"].isin(reached_everywhere(points, init))]
            means = np.exp(np.log(full["steps"].astype(float)).groupby(full["d"]).mean())
            fit = scaling_fit(points, init)
            text = "no fit (< 3 d with every seed)" if fit is None else (
                f"exponent {fit.exponent:.2f} +- {fit.stderr:.2f} (R^2 {fit.r_squared:.2f})")
            ax.plot(means.index, means.values, marker="o", ms=4, color=color, lw=1, label=f"{INIT_LABELS[init]}: {text}")
            if fit is not None:
                fitted = reached_everywhere(points, init)
                grid = np.geomspace(min(fitted), max(fitted), 20)
                ax.plot(grid, fit.prefactor * grid ** fit.exponent, color=color, ls=":", lw=1.2)
        if points["steps"].notna().any():
            anchor = float(points["steps"].dropna().astype(float).min())
            ax.plot(ds, [anchor * (d / ds[0]) for d in ds], color="0.7", lw=0.8, ls="--", label="slope 1 (linear)")
        ax.axhline(top, color="0.6", lw=0.6)
        ax.text(ds[0], top, " not reached", fontsize=6, va="bottom", color="0.4")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ds, [f"{d:g}" for d in ds])
        low = float(points["steps"].min()) / 1.5 if points["steps"].notna().any() else top / 10
        ax.set_ylim(low, top * 1.25)
        ticks = [t for t in (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000) if low <= t <= top * 1.25]
        ax.set_yticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("d (N = " + ", ".join(sorted({f"{n / d:g}d" for d, n in zip(points['d'], points['n_features'])})) + ")")
        ax.set_ylabel(f"steps to MMCS {threshold:g}")
        ax.set_title(f"MMCS {threshold:g}")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle("Steps to recover the features against the input dimension d (log-log; dotted: least-squares power law)")
    return fig


def activations(tables: Tables, options: Mapping[str, Any]):
    """SAEs on the hidden activations of trained monosemanticity models: MMCS against the source's features pushed
    through its first layer, over training, one line per initialisation and one panel per source model (ordered by
    its #mono/#features), with each run's final FVE, L0 and dead fraction in the legend."""
    trace = _one_alpha(tables["activations"]["trace"], options)
    instances = _one_alpha(tables["activations"]["instances"], options)
    sources = instances.drop_duplicates("activations").sort_values("source_mono_fraction")
    fig, axes = new_figure(1, len(sources), size=(3.6, 3.2), sharey=True)
    for ax, source in zip(axes[0], sources.itertuples()):
        part = trace[trace["activations"] == source.activations]
        finals = instances[instances["activations"] == source.activations].set_index("init")
        for init in [i for i in INITS if i in set(part["init"])]:
            mean = part[part["init"] == init].groupby("step")["mmcs"].mean()
            end = finals.loc[[init]].mean(numeric_only=True)
            ax.plot(mean.index, mean.values, color=INIT_COLORS[init], lw=1.4,
                    label=f"{INIT_LABELS[init]}: FVE {end['fve_final']:.2f}, L0 {end['l0_final']:.1f}, "
                          f"dead {end['dead_fraction_final']:.0%}")
        ax.legend(fontsize=6, loc="lower right")
        ax.set_title(f"source #mono/#features {source.source_mono_fraction:.2f}\n{activation_title(source.activations)}",
                     fontsize=7)
        ax.set_xlabel("training step")
        ax.set_ylim(0, 1.0)
    axes[0, 0].set_ylabel("MMCS to the pushed-through features")
    return fig
