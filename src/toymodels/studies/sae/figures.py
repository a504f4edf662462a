"""The five SAE figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from toymodels.plotting import PALETTE, TEXT_WIDTH_IN, heatmap_panel, legend_below, new_figure
from toymodels.studies.sae import THRESHOLDS, threshold_column
from toymodels.studies.sae.instances import INITS, RARE_METHODS
from toymodels.studies.sae.metrics import steps_to_threshold

Tables = Mapping[str, Mapping[str, pd.DataFrame]]


INIT_LABELS = {"xavier": "Xavier", "orthogonal": "orthogonal", "data": "raw data", "svd": "SVD of data",
               "rare_mean": "rare: minus mean", "rare_centroid": "rare: minus centroid", "rare_outlier": "rare: LOF outliers"}
INIT_COLORS = {"xavier": "0.55", "orthogonal": "k", "data": PALETTE["blue"], "svd": PALETTE["purple"],
               "rare_mean": PALETTE["orange"], "rare_centroid": PALETTE["green"], "rare_outlier": PALETTE["vermillion"]}
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
        ax.set_title(f"source #mono/#features {source.source_mono_fraction:.2f}\n({source.activations})", fontsize=7)
        ax.set_xlabel("training step")
        ax.set_ylim(0, 1.0)
    axes[0, 0].set_ylabel("MMCS to the pushed-through features")
    return fig
