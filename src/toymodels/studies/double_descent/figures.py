"""The double-descent figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from toymodels.plotting import (
    DATAPOINT_COLOR,
    FEATURE_COLOR,
    PALETTE,
    TEXT_WIDTH_IN,
    heatmap_panel,
    legend_below,
    log_scale,
    new_figure,
    new_panels,
    sweep_lines,
    value_colors,
    vector_fan,
)
from toymodels.studies.double_descent.repetition import best_rows, repeated_share, repetition_summary
from toymodels.studies.double_descent.scale import generalising_onset, onset_spread, post_onset_curves
from toymodels.studies.double_descent.variants import variant_label

Tables = Mapping[str, Mapping[str, pd.DataFrame]]



def _where(table: pd.DataFrame, conditions: Mapping[str, Any]) -> pd.DataFrame:
    for key, value in conditions.items():
        table = table[table[key].isin(value if isinstance(value, list) else [value])]
    return table


def _vector_grid(tables: Tables, options: Mapping[str, Any], consistent: bool):
    """Rows: feature vectors W_i (blue), training hidden vectors h_t (vermillion); one column per chosen T."""
    sweep = tables["sweep"]
    where = {"m": options.get("m", 2), **({"data_seed": options["data_seed"]} if "data_seed" in options else {})}
    instances = _where(sweep["instances"], where)
    chosen = [t for t in options["T"] if t in set(instances["T"])]
    best = instances[instances["selected"]]
    features = _where(sweep["features"], where).merge(
        best[["T", "seed"] + (["data_seed"] if "data_seed" in sweep["features"] else [])].drop_duplicates(), how="inner")
    points = _where(sweep["datapoints"], where).merge(
        best[["T", "seed"] + (["data_seed"] if "data_seed" in sweep["datapoints"] else [])].drop_duplicates(), how="inner")
    if "data_seed" in features and "data_seed" not in options:
        first = sorted(features["data_seed"].unique())[0]
        features, points = features[features["data_seed"] == first], points[points["data_seed"] == first]
    rows = 3 if consistent else 2
    fig, axes = new_figure(rows, len(chosen), size=(2.3, 2.3))
    limits = (None, None)
    if consistent:
        limits = (1.1 * float(np.hypot(features["x"], features["y"]).max()), 1.1 * float(np.hypot(points["x"], points["y"]).max()))
    for column, t in enumerate(chosen):
        f, p = features[features["T"] == t], points[points["T"] == t]
        vector_fan(axes[0, column], f["x"], f["y"], FEATURE_COLOR, limits[0])
        vector_fan(axes[1, column], p["x"], p["y"], DATAPOINT_COLOR, limits[1], alpha=0.8 if t <= 100 else 0.3)
        axes[0, column].set_title(f"T = {t}")
    axes[0, 0].set_ylabel("features $W_i$")
    axes[1, 0].set_ylabel("training points $h_t$")
    if consistent:
        gs = axes[2, 0].get_gridspec()
        for ax in axes[2]:
            ax.remove()
        norms = fig.add_subplot(gs[2, :])
        sweep_lines(norms, instances, "T", "W_frobenius", label="$||W||_F$", color=FEATURE_COLOR, show_points=True)
        sweep_lines(norms, instances, "T", "b_norm", label="$||b||_2$", color=DATAPOINT_COLOR, show_points=True)
        log_scale(norms)
        norms.set_xlabel("dataset size T")
        norms.set_ylabel("norm")
        norms.legend()
        for t in chosen:
            norms.axvline(t, color="0.6", lw=0.6, ls=":")
    scale = "one scale per row" if consistent else "each panel scaled to its own vectors"
    fig.suptitle(f"ReLU-output model, m = {where['m']}: features vs data points as T grows ({scale})")
    return fig


def dimensionality(tables: Tables, options: Mapping[str, Any]):
    sweep = tables["sweep"]
    where = {"m": options.get("m", 2)}
    instances = _where(sweep["instances"], where)
    best_only = bool(options.get("best_of_seeds", True))
    fig, axes = new_figure(2, 1, size=(6.5, 2.6), sharex=True)
    loss_ax, dim_ax = axes[0, 0], axes[1, 0]
    chosen = instances[instances["selected"]] if best_only else instances
    sweep_lines(loss_ax, chosen, "T", "test_loss", color="k", label="test loss")
    loss_ax.axhline(1.0, color=PALETTE["green"], lw=0.8, ls=":", label="predict x' = 0")
    loss_ax.set_ylabel("test loss (linear)")
    train_ax = loss_ax.twinx()
    sweep_lines(train_ax, chosen, "T", "train_loss", color="0.55", label="train loss (right, log)", linestyle="--")
    train_ax.set_yscale("log")
    train_ax.set_ylabel("train loss (log)")
    handles = loss_ax.get_legend_handles_labels()[0] + train_ax.get_legend_handles_labels()[0]
    loss_ax.legend(handles=handles, loc="center right")
    rng = np.random.default_rng(0)
    for name, color, label in (("features", FEATURE_COLOR, "features $D_i$"), ("datapoints", DATAPOINT_COLOR, "training points $D_t$")):
        table = _where(sweep[name], where)
        if best_only:
            table = table.merge(chosen[["T", "seed"]].drop_duplicates(), how="inner")
        jitter = np.exp(rng.uniform(-0.12, 0.12, len(table)))
        dim_ax.scatter(table["T"] * jitter, table["dimensionality"], s=3, color=color, alpha=0.25, linewidths=0, label=label)
    t_values = np.array(sorted(instances["T"].unique()), float)
    dim_ax.plot(t_values, where["m"] / t_values, color="k", lw=0.8, ls="--", label="m / T")
    log_scale(dim_ax)
    dim_ax.set_yscale("symlog", linthresh=1e-2)
    dim_ax.set_ylim(0, 1.05)
    dim_ax.set_xlabel("dataset size T")
    dim_ax.set_ylabel("dimensionality")
    dim_ax.legend(loc="upper left", markerscale=3)
    fig.suptitle(f"Memorising -> generalising, m = {where['m']}" + (" (best of seeds by train loss)" if best_only else ""))
    return fig


def heatmap(tables: Tables, options: Mapping[str, Any]):
    instances = tables["sweep"]["instances"]
    if options.get("best_of_seeds", True):
        instances = instances[instances["selected"]]
    pivot = instances.pivot_table(index="m", columns="T", values="test_loss", aggfunc="mean")
    fig, axes = new_figure(1, 1, size=(7.5, 3.2), max_width=TEXT_WIDTH_IN)
    heatmap_panel(axes[0, 0], pivot, "test loss (log colour)", log=True)
    axes[0, 0].set_title("Test loss over dataset size T and hidden width m (double descent along both axes)")
    return fig


def regularisation(tables: Tables, options: Mapping[str, Any]):
    fig, axes = new_figure(1, 2, size=(4.2, 3.0), sharey=True)
    for ax, role, hue in ((axes[0, 0], "weight_decay", "weight_decay"), (axes[0, 1], "training_length", "steps")):
        instances = tables[role]["instances"]
        if options.get("best_of_seeds", True):
            instances = instances[instances["selected"]]
        sweep_lines(ax, instances, "T", "test_loss", hue, log_hue=True, label_format="{:g}")
        ax.axhline(1.0, color=PALETTE["green"], lw=0.8, ls=":")
        log_scale(ax)
        ax.set_yscale("log")
        ax.set_xlabel("dataset size T")
        ax.set_title(f"m = {instances['m'].iloc[0]}: test loss by {hue.replace('_', ' ')}")
        ax.legend()
    axes[0, 0].set_ylabel("test loss")
    return fig


def generalising_scale(tables: Tables, options: Mapping[str, Any]):
    fig, axes = new_figure(1, 2, size=(4.2, 3.0), sharey=True)
    decay = tables["weight_decay"]["instances"]
    sweep_lines(axes[0, 0], decay, "T", "max_feature_dimensionality", "weight_decay", log_hue=True, label_format="{:g}")
    axes[0, 0].set_xlabel("dataset size T")
    sparsity = tables["sparsity"]["instances"].assign(density=lambda d: (1 - d["sparsity"]).round(6))
    sparsity["T_density"] = sparsity["T"] * sparsity["density"]
    sweep_lines(axes[0, 1], sparsity, "T_density", "max_feature_dimensionality", "density", log_hue=True, label_format="{:g}")
    axes[0, 1].set_xlabel("T (1 - S): expected non-zeros per feature")
    for ax in axes[0]:
        log_scale(ax)
        ax.legend()
    axes[0, 0].set_ylabel("max feature dimensionality")
    fig.suptitle("Where generalisation starts: max feature dimensionality against T and T(1-S)")
    return fig


def generalising_scale_by_m(tables: Tables, options: Mapping[str, Any]):
    """The generalising-scale curves with one panel per m: against T by weight decay, against T(1-S) by sparsity."""
    decay, sparsity = tables["weight_decay"]["instances"], tables["sparsity"]["instances"]
    decay_m, sparsity_m = sorted(decay["m"].unique()), sorted(sparsity["m"].unique())
    spreads = onset_spread(sparsity)
    fig, axes = new_panels(len(decay_m) + len(sparsity_m), size=(2.8, 2.4), max_columns=3, sharey=True)
    for ax, m in zip(axes, decay_m):
        sweep_lines(ax, decay[decay["m"] == m], "T", "max_feature_dimensionality", "weight_decay", log_hue=True,
                    label_format="{:g}")
        ax.set_xlabel("dataset size T")
        ax.set_title(f"m = {m}, by weight decay")
    for ax, m in zip(axes[len(decay_m):], sparsity_m):
        part = sparsity[sparsity["m"] == m].assign(density=lambda d: (1 - d["sparsity"]).round(6))
        part["T_density"] = part["T"] * part["density"]
        sweep_lines(ax, part, "T_density", "max_feature_dimensionality", "density", log_hue=True, label_format="{:g}")
        for s, t in generalising_onset(part, "sparsity").items():
            if t is not None:
                ax.axvline(t * (1 - s), color="0.6", lw=0.6, ls=":")
        spread = spreads.get(m)
        ax.set_xlabel("T (1 - S)")
        ax.set_title(f"m = {m}: onsets spread " + ("-" if spread is None else f"{spread:.2f} dex"))
    for ax in axes:
        log_scale(ax)
        ax.legend()
    axes[0].set_ylabel("max feature dimensionality")
    fig.suptitle("Generalising scale per hidden width m (mean over seeds; dotted: each sparsity's onset, half its jump)")
    return fig


def post_generalisation(tables: Tables, options: Mapping[str, Any]):
    """Max feature dimensionality against T per m, the part from the generalising onset on drawn bold."""
    instances = tables["sweep"]["instances"]
    fig, axes = new_figure(1, 1, size=(5.0, 3.0))
    ax = axes[0, 0]
    sweep_lines(ax, instances, "T", "max_feature_dimensionality", "m", label_format="{}", lw=0.7, alpha=0.6)
    colors = value_colors(sorted(instances["m"].unique()))
    for m, curve in post_onset_curves(instances, "m").items():
        if len(curve):
            ax.plot(curve.index, curve.values, color=colors[m], lw=2.2, marker="s", markersize=4)
    log_scale(ax)
    ax.set_xlabel("dataset size T")
    ax.set_ylabel("max feature dimensionality")
    ax.legend()
    ax.set_title("After generalisation (bold: from the onset on, mean over seeds)")
    return fig


def _repeat_fans(axes, points: pd.DataFrame, features: pd.DataFrame, seeds: Mapping[int, int]) -> None:
    """Per repeat count R (one axis each): the final feature vectors (blue) and training points (vermillion, the
    repeated one circled) of instance ``seeds[R]``, at one scale per panel."""
    for ax, (r, seed) in zip(axes, seeds.items()):
        p = points[(points["repeat_count"] == r) & (points["seed"] == seed)]
        f = features[(features["repeat_count"] == r) & (features["seed"] == seed)]
        limit = 1.1 * float(max(np.hypot(p["x"], p["y"]).max(), np.hypot(f["x"], f["y"]).max()))
        vector_fan(ax, f["x"], f["y"], FEATURE_COLOR, limit, alpha=0.3)
        vector_fan(ax, p["x"], p["y"], DATAPOINT_COLOR, limit, alpha=0.5, highlight=p["repeated"].to_numpy(bool))
        ax.set_title(f"final model, R = {r}")


def repeated(tables: Tables, options: Mapping[str, Any]):
    repeated = tables["repeated"]
    trajectory, points, features = repeated["trajectory"], repeated["datapoints"], repeated["features"]
    counts = sorted(trajectory["repeat_count"].unique())
    fig, axes = new_panels(1 + len(counts), size=(3.0, 2.6), max_columns=2)
    colors = value_colors(counts, log=True)
    ax = axes[0]
    for r in counts:
        part = trajectory[trajectory["repeat_count"] == r]
        if r > 1:
            sweep_lines(ax, part, "step", "repeated_dimensionality", color=colors[r], label=f"repeated sample, R = {r}", marker="")
        sweep_lines(ax, part, "step", "mean_datapoint_dimensionality", color=colors[r], linestyle=":", marker="",
                    label=f"mean over samples, R = {r}", show_points=False)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("training step")
    ax.set_ylabel("data-point dimensionality")
    legend_below(fig, ax)
    ax.set_title("data-point dimensionality over training")
    _repeat_fans(axes[1:], points, features, {r: 0 for r in counts})
    fig.suptitle(f"One training sample repeated R times (T = {trajectory['T'].iloc[0]}, m = {trajectory['m'].iloc[0]});\n"
                 "other panels: seed 0's features (blue) and training points (vermillion), the repeated one circled")
    return fig


def repeated_generalising(tables: Tables, options: Mapping[str, Any]):
    """One point repeated R times where the model generalises: histories, final feature dimensionalities, embeddings."""
    grid = tables["repeated"]
    instances, trajectory = grid["instances"], grid["trajectory"]
    summary = repetition_summary(instances, grid["features"], grid["datapoints"])
    counts = list(summary["repeat_count"])
    seeds = instances[instances["selected"]].set_index("repeat_count")["seed"].to_dict()
    fig, axes = new_panels(2 + len(counts), size=(3.0, 2.6), max_columns=2)
    colors = value_colors(counts, log=True)
    history = best_rows(trajectory, instances, ("repeat_count",))
    history = history.assign(share=repeated_share(history["repeated_dimensionality"], history["repeat_count"]))
    ax = axes[0]
    for r in counts:
        part = history[history["repeat_count"] == r]
        ax.plot(part["step"], part["max_feature_dimensionality"], color=colors[r], label=f"max feature $D_i$, R = {r}")
        if r > 1:
            ax.plot(part["step"], part["share"], color=colors[r], ls="--", label=f"repeated point $R D_t$, R = {r}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("training step")
    ax.set_ylabel("dimensionality")
    ax.set_title("over training (best seed)")
    legend_below(fig, ax)
    ax = axes[1]
    features = best_rows(grid["features"], instances, ("repeat_count",))
    top = int(summary["large_features"].max()) + 3
    for row in summary.itertuples():
        dims = np.sort(features.loc[features["repeat_count"] == row.repeat_count, "dimensionality"].to_numpy())[::-1][:top]
        ax.plot(np.arange(1, len(dims) + 1), dims, marker="o", markersize=3, color=colors[row.repeat_count])
        if row.repeat_count > 1:
            ax.scatter([0], [row.repeated_share], marker="*", s=40, color=colors[row.repeat_count], zorder=3)
    ax.axhline(summary["threshold"].iloc[0], color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("feature rank (star at 0: repeated point $R D_t$)")
    ax.set_ylabel("final dimensionality")
    ax.set_title("large features: " + ", ".join(f"{n} (R = {r})" for r, n in zip(counts, summary["large_features"])))
    _repeat_fans(axes[2:], grid["datapoints"], grid["features"], {r: int(seeds[r]) for r in counts})
    fig.suptitle(f"One training point repeated R times in the generalising regime (T = {instances['T'].iloc[0]}, "
                 f"m = {instances['m'].iloc[0]});\ndotted: half the R = 1 model's max $D_i$; lower panels: the best "
                 "seed's features (blue) and training points (vermillion), the repeated one circled")
    return fig


def vectors(tables: Tables, options: Mapping[str, Any]):
    """Feature and data-point directions in the hidden plane, each panel its own seed's model."""
    return _vector_grid(tables, options, consistent=False)


def vectors_consistent(tables: Tables, options: Mapping[str, Any]):
    """The same with every panel rotated into one frame, so panels compare."""
    return _vector_grid(tables, options, consistent=True)


def variants(tables: Tables, options: Mapping[str, Any]):
    """Test loss (and train loss) against T per model variant, beside the default model; below, the dimensionalities."""
    instances = tables["variants"]["instances"].assign(variant=lambda d: variant_label(d))
    if options.get("best_of_seeds", True):
        instances = instances[instances["selected"]]
    names = sorted(instances["variant"].unique(), key=lambda v: (v != "default (mse)", v))
    fig, axes = new_figure(2, len(names), size=(2.6, 2.3), sharex=True)
    for column, name in enumerate(names):
        part = instances[instances["variant"] == name]
        loss_ax, dim_ax = axes[0, column], axes[1, column]
        sweep_lines(loss_ax, part, "T", "test_loss", color="k", label="test loss")
        sweep_lines(loss_ax, part, "T", "train_loss", color="0.55", label="train loss", linestyle="--", show_points=False)
        loss_ax.axhline(float(part["zero_test_loss"].mean()), color=PALETTE["green"], lw=0.8, ls=":", label="predict x' = 0")
        loss_ax.set_title(name)
        sweep_lines(dim_ax, part, "T", "max_feature_dimensionality", color=FEATURE_COLOR, label="max $D_i$")
        sweep_lines(dim_ax, part, "T", "mean_datapoint_dimensionality", color=DATAPOINT_COLOR, label="mean $D_t$")
        log_scale(dim_ax)
        dim_ax.set_xlabel("dataset size T")
        dim_ax.set_ylim(0, 1.05)
    axes[0, 0].set_ylabel("loss (the model's own)")
    axes[1, 0].set_ylabel("dimensionality")
    axes[0, 0].legend(loc="upper left")
    axes[1, 0].legend(loc="upper right")
    fig.suptitle(f"Double descent in other settings, m = {instances['m'].iloc[0]}"
                 + (" (best of seeds by train loss)" if options.get("best_of_seeds", True) else ""))
    return fig


FRACTIONS = ((1, 1), (3, 4), (2, 3), (1, 2), (2, 5), (3, 8))  # Elhage et al. 2022's sticky dimensionalities


def infinite_data(tables: Tables, options: Mapping[str, Any]):
    """Infinite data (Elhage et al. 2022): the m = 2 features at a few sparsities (top), and dimensions per feature
    m / ||W||_F^2 and the features' D_i against 1/(1-S) with the fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8 (bottom)."""
    pentagon = tables["pentagon"]
    best = pentagon["instances"][pentagon["instances"]["selected"]]
    chosen = [s for s in options.get("sparsity", sorted(best["sparsity"].unique())) if s in set(best["sparsity"])]
    fig, axes = new_figure(2, max(2, len(chosen)), size=(2.1, 2.1))
    features = pentagon["features"].merge(best[["sparsity", "seed"]], how="inner")
    for column, s in enumerate(chosen):
        f = features[features["sparsity"] == s]
        vector_fan(axes[0, column], f["x"], f["y"], FEATURE_COLOR)
        axes[0, column].set_title(f"1 - S = {1 - s:.3g}")
    for ax in axes[0, len(chosen):]:
        ax.remove()
    axes[0, 0].set_ylabel(f"$W_i$ (N = {best['n_features'].iloc[0]}, m = 2)")
    gs = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    ax = fig.add_subplot(gs[1, :])
    rng = np.random.default_rng(0)
    for role, color in (("sparsity", PALETTE["blue"]), ("pentagon", PALETTE["orange"])):
        instances = tables[role]["instances"].assign(inv_density=lambda d: 1 / (1 - d["sparsity"]))
        m, n = instances["m"].iloc[0], instances["n_features"].iloc[0]
        sweep_lines(ax, instances, "inv_density", "dims_per_feature", color=color, label=f"$m / ||W||_F^2$, m = {m}, N = {n}")
        chosen_rows = instances[instances["selected"]]
        dims = tables[role]["features"].merge(chosen_rows[["sparsity", "seed"]], how="inner")
        dims = dims[dims["norm"] > 0.5 * dims.groupby("sparsity")["norm"].transform("max")]
        jitter = np.exp(rng.uniform(-0.06, 0.06, len(dims)))
        ax.scatter(jitter / (1 - dims["sparsity"]), dims["dimensionality"], s=5, color=color, alpha=0.3, linewidths=0,
                   marker="s" if role == "pentagon" else "o", label=f"$D_i$ (represented features), m = {m}")
    for top, bottom in FRACTIONS:  # right of the axes; of the close pairs (3/4, 2/3), (2/5, 3/8) the second further out
        ax.axhline(top / bottom, color="0.6", lw=0.6, ls=":")
        ax.annotate(f"{top}/{bottom}" if bottom > 1 else "1", (1.0, top / bottom), xycoords=("axes fraction", "data"),
                    xytext=(18 if (top, bottom) in ((2, 3), (3, 8)) else 3, 0), textcoords="offset points", va="center",
                    fontsize=7)
    log_scale(ax)
    ax.set_xlabel("1 / (1 - S)")
    ax.set_ylabel("dimensions per feature")
    ax.set_ylim(0, 1.1)
    legend_below(fig, ax)
    fig.suptitle("Infinite data (fresh batches): the pentagon at m = 2 and dimensions per feature against sparsity")
    return fig
