"""The monosemanticity figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from toymodels.plotting import PALETTE, legend_below, new_figure, sweep_lines, swept_log_axis, value_colors
from toymodels.studies.monosemanticity import POSITIVE_BIAS

Tables = Mapping[str, Mapping[str, pd.DataFrame]]

NAMES = {"lr": "learning rate", "bias_offset": "bias offset", "bias_decay": "bias decay", "eps": "feature frequency eps",
         "k": "neurons k", "l1": "L1 penalty", "nonlinearity": "nonlinearity", "frequencies": "frequencies",
         "task": "task", "bias_init": "bias init", "mask": "first-layer mask", "pruning": "pruning"}
STATUS_COLORS = {"monosemantic": PALETTE["green"], "shared": PALETTE["orange"], "dropped": "0.6"}


def where(table: pd.DataFrame, conditions: Mapping[str, Any] | None) -> pd.DataFrame:
    """Rows whose columns take the given value (or any value of a given list)."""
    for key, value in (conditions or {}).items():
        table = table[table[key].isin(value if isinstance(value, list) else [value])]
    return table


def label_column(table: pd.DataFrame, columns: str | Sequence[str]) -> tuple[pd.DataFrame, str]:
    """A single hue column: the column itself, or 'a=x, b=y' strings when several columns are given."""
    if isinstance(columns, str):
        return table, columns
    text = table[list(columns)].astype(str).apply(lambda r: ", ".join(f"{NAMES.get(c, c)} = {v}" for c, v in r.items()), axis=1)
    return table.assign(setting=text), "setting"


def hue_label(hue: str) -> str:
    """How a hue column is named in legends: its readable name, nothing for a combined ``setting`` column."""
    return "" if hue == "setting" else NAMES.get(hue, hue)


def _panels(table: pd.DataFrame, panel: str | None) -> list[tuple[str, pd.DataFrame]]:
    if panel is None:
        return [("", table)]
    return [(f"{NAMES.get(panel, panel)} = {value}", part) for value, part in sorted(table.groupby(panel), key=lambda g: str(g[0]))]


def _is_log(table: pd.DataFrame, hue: str) -> bool:
    values = table[hue]
    return bool(pd.api.types.is_numeric_dtype(values) and (values > 0).all() and values.max() / values.min() >= 10)


def steps_to_reach(history: pd.DataFrame, column: str, target: float) -> float:
    """First logged step at which ``column`` reaches ``target`` (NaN if never)."""
    reached = history[history[column] >= target]
    return float(reached["step"].min()) if len(reached) else float("nan")


def training_curves(tables: Tables, options: Mapping[str, Any]):
    history = where(tables["sweep"]["history"], options.get("where"))
    history, hue = label_column(history, options["hue"])
    history = history.assign(log2_step=np.log2(1 + history["step"]))
    panels = _panels(history, options.get("panel"))
    fig, axes = new_figure(3, len(panels), size=(4.2, 2.3), sharex=True, sharey="row")
    rows = (("eval_loss", "eval loss"), ("mono_fraction_features", "#mono / #features"), ("mean_bias", "mean bias"))
    for column, (title, part) in enumerate(panels):
        for row, (y, label) in enumerate(rows):
            ax = axes[row, column]
            sweep_lines(ax, part, "log2_step", y, hue, log_hue=_is_log(part, hue), hue_label=hue_label(hue), marker="",
                        show_points=False)
            axes[row, 0].set_ylabel(label)
        axes[0, column].set_yscale("log")
        axes[1, column].axhline(1, color="k", lw=0.6, ls=":")
        axes[0, column].set_title(title)
        axes[2, column].set_xlabel("log2(1 + training step)")
    axes[0, -1].legend(fontsize=6, loc="upper right")
    fig.suptitle(f"Training curves (mean over seeds), coloured by {NAMES.get(hue, hue)}")
    return fig


def final_mono(tables: Tables, options: Mapping[str, Any]):
    instances = where(tables["sweep"]["instances"], options.get("where"))
    x = options["x"]
    hue = None
    if "hue" in options:
        instances, hue = label_column(instances, options["hue"])
    panels = _panels(instances, options.get("panel"))
    fig, axes = new_figure(3, len(panels), size=(4.0, 2.2), sharex=True, sharey="row")
    rows = (("loss", "final eval loss"), ("mono_fraction_neurons", "#mono / #neurons"), ("mono_fraction_features", "#mono / #features"))
    for column, (title, part) in enumerate(panels):
        for row, (y, label) in enumerate(rows):
            ax = axes[row, column]
            sweep_lines(ax, part, x, y, hue, log_hue=hue is not None and _is_log(part, hue),
                        hue_label=hue_label(hue) if hue else None)
            axes[row, 0].set_ylabel(label)
            if x == "k" or _is_log(part, x):
                swept_log_axis(ax, part[x], base=2 if x == "k" else 10)
        for row in (1, 2):
            axes[row, column].axhline(1, color="k", lw=0.6, ls=":")
        if x == "k":
            for ax in axes[:, column]:
                ax.axvline(float(part["n_features"].iloc[0]), color=PALETTE["vermillion"], lw=0.8, ls=":", label="k = N")
        axes[0, column].set_title(title)
        axes[2, column].set_xlabel(NAMES.get(x, x))
    if hue is not None or x == "k":
        legend_below(fig, axes[0, -1])
    fig.suptitle(f"Final loss and monosemanticity\nagainst {NAMES.get(x, x)} (line: seed mean, dots: seeds)")
    return fig


def bias(tables: Tables, options: Mapping[str, Any]):
    neurons = where(tables["sweep"]["neurons"], options.get("where"))
    neurons = neurons[neurons["seed"] == options.get("seed", 0)]
    neurons, hue = label_column(neurons, options["hue"])
    panels = _panels(neurons, options.get("panel"))
    fig, axes = new_figure(1, len(panels), size=(4.5, 3.2), sharey=True)
    for column, (title, part) in enumerate(panels):
        ax = axes[0, column]
        colors = value_colors(part[hue].tolist(), log=_is_log(part, hue))
        for value, group in sorted(part.groupby(hue), key=lambda g: g[0]):
            ordered = group.sort_values(["frac_mono", "bias"], ascending=[False, False])
            positive = int((group["bias"] > POSITIVE_BIAS).sum())
            name = f"{NAMES.get(hue, hue)} = {value}" if hue in NAMES else str(value)
            ax.plot(np.arange(len(ordered)), ordered["bias"].to_numpy(), color=colors[value], lw=1.0,
                    label=f"{name}: {positive} with b1 > {POSITIVE_BIAS:g}")
            n_mono = int(group["is_monosemantic"].sum())
            ax.axvline(n_mono, color=colors[value], lw=0.6, ls="--")
        ax.axhline(0, color="k", lw=0.6, ls=":")
        ax.set_xlabel("neuron, most monosemantic first (dashed: #mono)")
        ax.set_title(title)
    axes[0, 0].set_ylabel(f"final first-layer bias b1 (d = {int(neurons['d'].iloc[0])})")
    axes[0, -1].legend(fontsize=6)
    fig.suptitle("Final bias per neuron, neurons sorted by frac_mono (seed 0)")
    return fig


def sfa_matrix(sfa: pd.DataFrame, neurons: pd.DataFrame, n_features: int) -> np.ndarray:
    """Dense [k, N] single-feature activations, neurons most-monosemantic first, features by their strongest neuron."""
    k = len(neurons)
    matrix = np.zeros((k, n_features))
    matrix[sfa["neuron"].to_numpy(), sfa["feature"].to_numpy()] = sfa["activation"].to_numpy()
    by_index = neurons.sort_values("neuron")
    order = np.lexsort((-by_index["top_activation"].to_numpy(), -by_index["frac_mono"].to_numpy()))
    matrix = matrix[order]
    strongest = np.where(matrix.max(axis=0) > 0, matrix.argmax(axis=0), k)
    return matrix[:, np.argsort(strongest, kind="stable")]


def sfa_heatmap(tables: Tables, options: Mapping[str, Any]):
    sweep = tables["sweep"]
    selections = options["cells"]
    fig, axes = new_figure(1, len(selections), size=(3.4, 4.2))
    image = None
    for ax, selection in zip(axes[0], selections):
        neurons = where(sweep["neurons"], selection)
        neurons = neurons[neurons["seed"] == 0]
        n_features = int(neurons["n_features"].iloc[0])
        matrix = sfa_matrix(where(sweep["sfa"], selection), neurons, n_features)
        image = ax.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=max(1.0, float(matrix.max())))
        ax.grid(False)
        mono = where(sweep["instances"], selection)
        mono = float(mono[mono["seed"] == 0]["mono_fraction_features"].iloc[0])
        ax.set_title("\n".join(f"{NAMES.get(k, k)} = {v}" for k, v in selection.items()) + f"\n#mono/#features = {mono:.2f}", fontsize=7)
        ax.set_xlabel("feature (by strongest neuron)")
    axes[0, 0].set_ylabel("neuron (most monosemantic first)")
    fig.colorbar(image, ax=axes[0].tolist(), label="activation on the feature alone", shrink=0.8)
    fig.suptitle("Single-feature activations (seed 0)")
    return fig


def feature_status(tables: Tables, options: Mapping[str, Any]):
    features = where(tables["sweep"]["features"], options.get("where"))
    n_features = int(features["n_features"].iloc[0])
    panels = _panels(features, "frequencies")
    fig, axes = new_figure(2, len(panels), size=(4.6, 3.0))
    for column, (title, part) in enumerate(panels):
        below = part[(part["k"] < n_features) & (part["seed"] == 0)]
        ks = sorted(below["k"].unique())
        ax = axes[0, column]
        for row, k in enumerate(ks):
            rows = below[below["k"] == k]
            for status, color in STATUS_COLORS.items():
                chosen = rows[rows["status"] == status]
                ax.scatter(chosen["frequency_rank"], np.full(len(chosen), row), s=9, marker="s", color=color, linewidths=0,
                           label=status if row == 0 else None)
        ax.set_yticks(range(len(ks)), [f"k = {k}" for k in ks])
        ax.set_ylim(-0.5, len(ks) + 0.2)
        ax.set_xlabel("feature frequency rank (0 = most frequent)")
        ax.set_title(f"{title}\nper feature, k < N = {n_features} (seed 0)", fontsize=9)
        ax.legend(fontsize=6, loc="upper right", ncol=3)
        counts = part.groupby(["k", "seed"])["status"].value_counts(normalize=True).unstack(fill_value=0).groupby("k").mean()
        ax = axes[1, column]
        for status, color in STATUS_COLORS.items():
            values = counts[status] if status in counts else pd.Series(0.0, index=counts.index)
            ax.plot(counts.index, values, marker="o", markersize=3, color=color, label=status)
        ax.axvline(n_features, color=PALETTE["vermillion"], lw=0.8, ls=":", label="k = N")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("neurons k")
        ax.set_ylabel("fraction of features")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    fig.suptitle("Which features get a monosemantic neuron, share neurons, or are dropped")
    return fig


def bias_init(tables: Tables, options: Mapping[str, Any]):
    history, hue = label_column(tables["bias_init"]["history"], options.get("hue", "bias_init"))
    instances, _ = label_column(tables["bias_init"]["instances"], options.get("hue", "bias_init"))
    baseline = where(instances, options["baseline"])
    target = float(options.get("target_fraction", 0.9)) * float(baseline["mono_fraction_features"].mean())
    fig, axes = new_figure(1, 3, size=(2.4, 2.4))
    colors = value_colors(history[hue].tolist())
    history = history.assign(log2_step=np.log2(1 + history["step"]))
    for ax, y, label in ((axes[0, 0], "mono_fraction_features", "#mono / #features"), (axes[0, 1], "eval_loss", "eval loss")):
        for value, part in history.groupby(hue):
            sweep_lines(ax, part, "log2_step", y, color=colors[value], label=str(value), marker="", show_points=False)
        ax.set_xlabel("log2(1 + training step)")
        ax.set_ylabel(label)
    axes[0, 0].axhline(target, color="k", lw=0.8, ls="--", label=f"target = {target:.3f}")
    axes[0, 0].legend(fontsize=6)
    axes[0, 1].set_yscale("log")
    ax = axes[0, 2]
    values = sorted(history[hue].unique(), key=str)
    for position, value in enumerate(values):
        part = history[history[hue] == value]
        reached = [steps_to_reach(seed_rows, "mono_fraction_features", target) for _, seed_rows in part.groupby("seed")]
        finite = [r for r in reached if np.isfinite(r)]
        ax.bar(position, np.median(finite) if finite else 0, color=colors[value], alpha=0.7)
        ax.scatter(np.full(len(finite), position), finite, color="k", s=8, zorder=3)
        ax.text(position, 0, f"{len(finite)}/{len(reached)} seeds", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("logged step reaching target")
    ax.set_title("median over seeds (dots: seeds)")
    fig.suptitle(f"Bias just below -B vs offset + decay; target = {options.get('target_fraction', 0.9):g} x baseline's final "
                 "#mono/#features")
    return fig


def sparse_training(tables: Tables, options: Mapping[str, Any]):
    history, hue = label_column(tables["sparse"]["history"], options.get("hue", "mask"))
    instances, _ = label_column(tables["sparse"]["instances"], options.get("hue", "mask"))
    history = history.assign(log2_step=np.log2(1 + history["step"]))
    colors = value_colors(history[hue].tolist())
    fig, axes = new_figure(1, 3, size=(2.4, 2.4))
    for ax, y, label in ((axes[0, 0], "eval_loss", "eval loss"), (axes[0, 1], "mono_fraction_features", "#mono / #features")):
        for value, part in history.groupby(hue):
            sweep_lines(ax, part, "log2_step", y, color=colors[value], label=str(value), marker="", show_points=False)
        ax.set_xlabel("log2(1 + training step)")
        ax.set_ylabel(label)
    axes[0, 0].set_yscale("log")
    axes[0, 0].legend(fontsize=6)
    ax = axes[0, 2]
    values = sorted(instances[hue].unique(), key=str)
    ticks = []
    for position, value in enumerate(values):
        part = instances[instances[hue] == value]
        ax.bar(position, part["mono_fraction_neurons"].mean(), color=colors[value], alpha=0.7)
        ax.scatter(np.full(len(part), position), part["mono_fraction_neurons"], color="k", s=8, zorder=3)
        ticks.append(f"{value}\ndensity {part['weight_fraction'].mean():.2f}\nloss {part['loss'].mean():.3f}")
    ax.set_xticks(range(len(values)), ticks, fontsize=6)
    ax.set_ylabel("final #mono / #neurons")
    fig.suptitle("Sparse first layer: prune-and-grow vs fixed random mask vs dense")
    return fig


def round_ends(trajectory: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The last checkpoint of every pruning round (its final weights), per cell and seed."""
    index = trajectory.groupby([*keys, "seed", "round"])["step"].idxmax()
    return trajectory.loc[index.to_numpy()]


def lottery(tables: Tables, options: Mapping[str, Any]):
    models = list(options.get("model", ["bias_offset", "bias_decay"]))
    ends = round_ends(tables["lottery"]["trajectory"], ["pruning", *models])
    ends, model = label_column(ends, models)
    fig, axes = new_figure(1, 3, size=(2.4, 2.4), sharex=True)
    colors = value_colors(ends[model].tolist())
    styles = {"imp": "-", "random": "--"}
    for (method, value), part in ends.groupby(["pruning", model]):
        for ax, y in zip(axes[0], ("loss", "mono_fraction_features", "mono_fraction_neurons")):
            sweep_lines(ax, part, "weight_fraction", y, color=colors[value], linestyle=styles.get(method, ":"),
                        label=f"{method}: {value}")
    fractions = ends.groupby("round")["weight_fraction"].mean().round(3)
    for ax, label in zip(axes[0], ("eval loss", "#mono / #features", "#mono / #neurons")):
        swept_log_axis(ax, fractions)
        ax.set_xlabel("weight fraction left")
        ax.set_ylabel(label)
    axes[0, 0].invert_xaxis()  # shared x: once inverts every panel
    axes[0, 0].set_yscale("log")
    legend_below(fig, axes[0, 0])
    fig.suptitle("Lottery tickets: global pruning rounds with rewinding (solid: magnitude, dashed: random)")
    return fig
