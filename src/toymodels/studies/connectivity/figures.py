"""The connectivity figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.patches import Patch, Rectangle

from toymodels.plotting import PALETTE, TEXT_WIDTH_IN, legend_below, new_figure, swept_log_axis, value_colors

Tables = Mapping[str, Mapping[str, pd.DataFrame]]

SPLIT_STYLE = {"train": PALETTE["blue"], "test": PALETTE["vermillion"]}


def paths(tables: Tables, options: Mapping[str, Any]):
    paths = tables["models"]["paths"]
    alignment = options.get("alignment", "weight")
    paths = paths[paths["alignment"].isin(["naive", alignment])]
    pairs = tables["models"]["pairs"]
    types = sorted(paths["pair_type"].unique(), key=lambda t: (len(set(t.split("-"))) > 1, t))  # same-class first
    fig, axes = new_figure(2, len(types), size=(3.4, 2.6), max_width=7.0, sharex=True)  # tick labels and titles reach the edges
    for column, pair_type in enumerate(types):
        for row, split in enumerate(("train", "test")):
            ax = axes[row, column]
            part = paths[(paths["pair_type"] == pair_type) & (paths["split"] == split)]
            for method, style in (("naive", "--"), (alignment, "-")):
                lines = part[part["alignment"] == method]
                for _, line in lines.groupby(["model_a", "seed_a", "model_b", "seed_b"]):
                    ax.plot(line["alpha"], line["loss"], style, color=SPLIT_STYLE[split], lw=0.5, alpha=0.35)
                mean = lines.groupby("alpha")["loss"].mean()
                ax.plot(mean.index, mean.to_numpy(), style, color="k", lw=1.6,
                        label=f"{'naive' if method == 'naive' else alignment + ' matched'} (mean)")
            chosen = pairs[(pairs["pair_type"] == pair_type) & (pairs["split"] == split)]
            naive = chosen[chosen["alignment"] == "naive"]["barrier_mean_endpoints"].mean()
            matched = chosen[chosen["alignment"] == alignment]["barrier_mean_endpoints"].mean()
            n_pairs = len(chosen[chosen["alignment"] == "naive"])
            ax.set_title(f"{pair_type}, {split} ({n_pairs} pairs)\nmean barrier naive {naive:.2g}, matched {matched:.2g}",
                         fontsize=7)
            ax.set_ylabel(f"{split} loss")
        axes[1, column].set_xlabel("alpha (0 = A, 1 = B)")
    legend_below(fig, axes[0, 0])
    fig.suptitle(f"Loss along the straight path A -> B, B naive and {alignment}-matched (thin: each pair, thick: mean)")
    return fig


CURVE_STYLE = {"line": ("--", "0.45"), "bezier": ("-", PALETTE["blue"]), "chain": ("-", PALETTE["orange"])}


def curves(tables: Tables, options: Mapping[str, Any]):
    """Loss along the trained curves and the straight line of one pair per pair type, naive (top) and matched (bottom)."""
    alignment, split = options.get("alignment", "weight"), options.get("split", "test")
    points = tables["models"]["curve_paths"]
    points = points[points["split"] == split]
    summary = tables["models"]["curves"]
    summary = summary[summary["split"] == split]
    types = list(dict.fromkeys(points["pair_type"]))
    fig, axes = new_figure(2, len(types), size=(2.4, 2.2), sharex=True)
    for column, pair_type in enumerate(types):
        for row, method in enumerate(("naive", alignment)):
            ax = axes[row, column]
            part = points[(points["pair_type"] == pair_type) & (points["alignment"] == method)]
            barrier = summary[(summary["pair_type"] == pair_type) & (summary["alignment"] == method)].set_index("curve")
            for kind, (style, color) in CURVE_STYLE.items():
                line = part[part["curve"] == kind]
                ax.plot(line["t"], line["loss"], style, color=color, lw=1.4,
                        label=f"{kind}" if kind == "line" else f"{kind} (trained bend)")
            ax.set_title(f"{pair_type}, {'naive' if method == 'naive' else method + ' matched'}\nbarrier line "
                         f"{barrier.loc['line', 'relative_barrier']:.0%}, Bezier {barrier.loc['bezier', 'relative_barrier']:.0%}, "
                         f"chain {barrier.loc['chain', 'relative_barrier']:.0%}", fontsize=7)
        axes[1, column].set_xlabel("t (0 = A, 1 = B)")
    for row in range(2):
        axes[row, 0].set_ylabel(f"{split} loss")
    legend_below(fig, axes[0, 0])
    fig.suptitle("Loss along trained curves between two models (barriers as % of the mean endpoint loss)")
    return fig


def _barrier_values(pairs: pd.DataFrame, alignment: str, split: str, barrier: str) -> tuple[np.ndarray, list[str]]:
    """Symmetric [n, n] matrix of one barrier over the matrix models, ordered by their order value; and tick labels."""
    part = pairs[pairs["in_matrix"] & (pairs["alignment"] == alignment) & (pairs["split"] == split)]
    ends = pd.concat([part[["model_a", "seed_a", "order_a"]].set_axis(["model", "seed", "order"], axis=1),
                      part[["model_b", "seed_b", "order_b"]].set_axis(["model", "seed", "order"], axis=1)])
    ends = ends.drop_duplicates(["model", "seed"]).sort_values(["order", "model", "seed"]).reset_index(drop=True)
    position = {(m, s): i for i, (m, s) in enumerate(zip(ends["model"], ends["seed"]))}
    matrix = np.zeros((len(ends), len(ends)))
    for _, row in part.iterrows():
        i, j = position[(row["model_a"], row["seed_a"])], position[(row["model_b"], row["seed_b"])]
        matrix[i, j] = matrix[j, i] = row[barrier]
    return matrix, [f"{v:.3g}" for v in ends["order"]]


def barrier_matrix(tables: Tables, options: Mapping[str, Any]):
    pairs = tables["models"]["pairs"]
    alignment, split = options.get("alignment", "weight"), options.get("split", "test")
    barrier, order_label = options.get("barrier", "barrier_mean_endpoints"), options.get("order_label", "order")
    panels = [(m, *_barrier_values(pairs, m, split, barrier)) for m in ("naive", alignment)]
    vmax = max(float(p[1].max()) for p in panels) or 1.0
    fig, axes = new_figure(1, 2, size=(4.2, 3.8))
    image = None
    for ax, (method, matrix, ticks) in zip(axes[0], panels):
        image = ax.imshow(matrix, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.grid(False)
        ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=6)
        ax.set_title(f"{'naive' if method == 'naive' else method + ' matched'}: mean {matrix[np.triu_indices(len(ticks), 1)].mean():.3g}")
        ax.set_xlabel(f"model B, by {order_label}")
    axes[0, 0].set_ylabel(f"model A, by {order_label}")
    fig.colorbar(image, ax=axes[0].tolist(), label=f"{barrier} ({split} loss)", shrink=0.8)
    fig.suptitle(f"Barrier between every pair of models, ordered by {order_label}")
    return fig


def basins(tables: Tables, options: Mapping[str, Any]):
    """The matched barrier matrix ordered by basin (boxes: basins), and the number of basins against the threshold."""
    members, counts = tables["models"]["basins"], tables["models"]["basin_counts"]
    pairs = tables["models"]["pairs"]
    alignment, order_label = str(members["alignment"].iloc[0]), options.get("order_label", "order")
    members = members.sort_values(["basin", "order", "model", "seed"]).reset_index(drop=True)
    position = {(m, s): i for i, (m, s) in enumerate(zip(members["model"], members["seed"]))}
    part = pairs[pairs["in_matrix"] & (pairs["alignment"] == alignment) & (pairs["split"] == "test")]
    matrix = np.zeros((len(members), len(members)))
    for row in part.itertuples():
        i, j = position[(row.model_a, row.seed_a)], position[(row.model_b, row.seed_b)]
        matrix[i, j] = matrix[j, i] = row.barrier_mean_endpoints
    fig, axes = new_figure(1, 2, size=(3.5, 3.3), max_width=TEXT_WIDTH_IN)
    ax = axes[0, 0]
    image = ax.imshow(matrix, cmap="magma", vmin=0, interpolation="nearest")
    ax.grid(False)
    ticks = [f"{v:.2g} s{s}" for v, s in zip(members["order"], members["seed"])]
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
    ax.set_yticks(range(len(ticks)), ticks, fontsize=6)
    for _, basin in members.groupby("basin"):
        start, size = basin.index.min() - 0.5, len(basin)
        ax.add_patch(Rectangle((start, start), size, size, fill=False, edgecolor=PALETTE["sky"], lw=1.5))
    threshold, reference = float(members["threshold"].iloc[0]), float(members["within_seed_barrier"].iloc[0])
    ax.set_title(f"{int(members['n_basins'].iloc[0])} basins at threshold {threshold:.3g}\n"
                 f"({threshold / reference if reference > 0 else float('nan'):.3g} x the largest seed-pair barrier)", fontsize=8)
    ax.set_xlabel(f"model ({order_label}, seed)")
    fig.colorbar(image, ax=ax, label=f"{alignment}-matched test barrier", shrink=0.8)
    ax = axes[0, 1]
    finite = counts[np.isfinite(counts["threshold_ratio"]) & (counts["threshold_ratio"] > 0)]
    ax.step(finite["threshold_ratio"], finite["n_basins"], where="post", color=PALETTE["blue"])
    ax.set_xscale("log")
    ax.axvline(threshold / reference if reference > 0 else 1.0, color=PALETTE["vermillion"], ls="--", lw=1,
               label="threshold used")
    ax.axhline(members["cell"].nunique(), color="0.5", ls=":", lw=1, label="recipes (source cells)")
    ax.set_xlabel("threshold / largest seed-pair barrier")
    ax.set_ylabel("number of basins")
    ax.set_title("basins against the threshold\n(complete linkage)", fontsize=8)
    legend_below(fig, ax)
    fig.suptitle("How many basins: models clustered by their matched loss barriers")
    return fig


def seed_pairs(tables: Tables, options: Mapping[str, Any]):
    """Barrier between two seeds of a cell against the swept hyperparameter: trained (absolute and relative to the
    endpoint loss) and untrained, naive (dashed) and matched (solid), one colour per group."""
    table = tables["models"]["seed_pairs"]
    alignment, split = options.get("alignment", "weight"), options.get("split", "test")
    table = table[(table["split"] == split) & table["alignment"].isin(["naive", alignment])]
    colors = value_colors(list(table["group"].unique()))
    fig, axes = new_figure(1, 3, size=(2.4, 2.5), max_width=TEXT_WIDTH_IN)
    panels = (("trained", "barrier_mean_endpoints", "barrier (test loss)"),
              ("trained", "relative_barrier", "barrier / endpoint loss"),
              ("init", "barrier_mean_endpoints", "barrier (test loss)"))
    for ax, (state, column, label) in zip(axes[0], panels):
        part = table[table["state"] == state]
        for (group, method), line in part.groupby(["group", "alignment"]):
            mean = line.groupby("sweep_value")[column].mean()
            ax.plot(mean.index, mean.to_numpy(), "-o" if method != "naive" else "--o", ms=3, color=colors[group])
        ax.axhline(0, color="k", lw=0.5)
        if options.get("log_x"):
            swept_log_axis(ax, table["sweep_value"], base=2)
        else:
            ax.set_xticks(sorted(table["sweep_value"].unique()))
        if max(len(label.get_text()) for label in ax.get_xticklabels()) > 4:  # e.g. eps = 0.0078125
            ax.tick_params(axis="x", labelrotation=40)
        ax.set_xlabel(options.get("x_label", options.get("x", "swept value")))
        ax.set_ylabel(label)
        ax.set_title(f"{'trained' if state == 'trained' else 'untrained (step 0)'}", fontsize=8)
    for group, color in colors.items():  # legend entries: one per colour, then one per line style
        axes[0, 0].plot([], [], "-", color=color, label=group)
    axes[0, 0].plot([], [], "--", color="k", label="naive")
    axes[0, 0].plot([], [], "-", color="k", label=f"{alignment} matched")
    legend_below(fig, axes[0, 0])
    n_pairs = len(table[["model", "seed_a", "seed_b"]].drop_duplicates())
    fig.suptitle(f"Loss barrier between two seeds of one recipe ({n_pairs} seed pairs)")
    return fig


def mli(tables: Tables, options: Mapping[str, Any]):
    fig, axes = new_figure(1, 3, size=(3.6, 3.0))
    colors = {"monosemanticity": PALETTE["purple"], "double_descent": PALETTE["green"]}
    split = options.get("split", "test")
    for column, role in enumerate(("monosemanticity", "double_descent")):
        ax = axes[0, column]
        curves = tables[role]["mli_paths"]
        curves = curves[curves["split"] == split]
        for _, line in curves.groupby(["model", "seed"]):
            ax.plot(line["alpha"], line["loss"] / line["loss"].iloc[0], color=colors[role], lw=0.7, alpha=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("alpha (0 = init, 1 = final)")
        ax.set_title(f"{role}\n{split} loss / loss at init", fontsize=8)
        mli = tables[role]["mli"]
        mli = mli[mli["split"] == split]
        axes[0, 2].scatter(mli["distance"], mli["relative_bump"], color=colors[role], s=14, alpha=0.8,
                           label=f"{role} ({int(mli['monotonic'].sum())}/{len(mli)} monotonic)")
    axes[0, 0].set_ylabel("L(alpha) / L(0)")
    axes[0, 2].set_xlabel("||theta_T - theta_0|| / ||theta_T||")
    axes[0, 2].set_ylabel("largest bump / L(0)")
    axes[0, 2].set_title("largest bump\nagainst distance moved", fontsize=8)
    legend_below(fig, axes[0, 2])
    fig.suptitle("Monotonic linear interpolation from init to final")
    return fig


def noise(tables: Tables, options: Mapping[str, Any]):
    """Barrier between two runs against what differs between them (initialisation, data order, batch size), naive and
    matched; one dot per pair."""
    split, alignment = options.get("split", "test"), options.get("alignment", "weight")
    pairs = tables["models"]["pairs"]
    pairs = pairs[(pairs["split"] == split) & pairs["alignment"].isin(["naive", alignment])]
    kinds = sorted(pairs["differs"].unique(), key=lambda k: (k.count("+"), k))
    fig, axes = new_figure(1, 1, size=(6.4, 3.0), max_width=TEXT_WIDTH_IN)
    ax = axes[0, 0]
    for offset, method, color in ((-0.2, "naive", "0.6"), (0.2, alignment, PALETTE["blue"])):
        part = pairs[pairs["alignment"] == method]
        means = part.groupby("differs")["relative_barrier"].mean().reindex(kinds)
        ax.bar(np.arange(len(kinds)) + offset, means, width=0.4, color=color,
               label="naive" if method == "naive" else f"{alignment} matched")
        for i, kind in enumerate(kinds):
            values = part[part["differs"] == kind]["relative_barrier"]
            ax.scatter(np.full(len(values), i + offset), values, s=8, color="k", zorder=3, linewidths=0)
    counts = pairs[pairs["alignment"] == "naive"].groupby("differs").size().reindex(kinds)
    ax.set_xticks(range(len(kinds)), [f"{kind.replace(' + ', chr(10) + '+ ')}\n({n} pairs)" for kind, n in counts.items()],
                  fontsize=6)
    ax.set_ylabel("barrier / mean endpoint loss")
    ax.set_xlabel("what differs between the two runs")
    legend_below(fig, ax)
    fig.suptitle("Barriers against each source of noise between two runs of one recipe")
    return fig


def optimizers(tables: Tables, options: Mapping[str, Any]):
    """Per optimiser of the source grid: init -> final loss curves, the share of them that fall monotonically, and the
    barrier between two seeds, naive and matched."""
    split, alignment = options.get("split", "test"), options.get("alignment", "weight")
    mli, paths = tables["models"]["mli"], tables["models"]["mli_paths"]
    mli, paths = mli[mli["split"] == split], paths[paths["split"] == split]
    pairs = tables["models"]["seed_pairs"]
    pairs = pairs[(pairs["split"] == split) & (pairs["state"] == "trained")]
    names = {row.model: f"{row.optimizer}, lr {row.lr:g}" for row in mli.itertuples()}
    order = list(dict.fromkeys(names[m] for m in mli.sort_values(["optimizer", "lr"])["model"]))
    colors = dict(zip(order, (PALETTE["blue"], PALETTE["orange"], PALETTE["green"], PALETTE["vermillion"],
                              PALETTE["purple"], PALETTE["sky"], PALETTE["black"], PALETTE["yellow"])))
    fig, axes = new_figure(1, 3, size=(2.4, 2.6), max_width=TEXT_WIDTH_IN)
    ax = axes[0, 0]
    for (model, _), line in paths.groupby(["model", "seed"]):
        ax.plot(line["alpha"], line["loss"] / line["loss"].iloc[0], color=colors[names[model]], lw=0.8, alpha=0.8)
    for name in order:
        ax.plot([], [], color=colors[name], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("alpha (0 = init, 1 = final)")
    ax.set_ylabel("L(alpha) / L(0)")
    ax.set_title(f"init -> final ({split})", fontsize=8)
    ax = axes[0, 1]
    share = mli.assign(name=mli["model"].map(names)).groupby("name")["monotonic"].agg(["mean", "sum", "count"]).reindex(order)
    ax.bar(range(len(order)), share["mean"], color=[colors[n] for n in order])
    for i, row in enumerate(share.itertuples()):
        ax.text(i, row.mean + 0.02, f"{int(row.sum)}/{int(row.count)}", ha="center", fontsize=7)
    ax.set_xticks(range(len(order)), [n.split(",")[0] for n in order], rotation=30, fontsize=7)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share monotonic")
    ax.set_title("MLI holds (no rise)", fontsize=8)
    ax = axes[0, 2]
    barrier = pairs.assign(name=pairs["model"].map(names)).groupby(["name", "alignment"])["relative_barrier"].mean()
    for offset, method, hatch in ((-0.2, "naive", "//"), (0.2, alignment, "")):
        values = [barrier.get((n, method), np.nan) for n in order]
        ax.bar(np.arange(len(order)) + offset, values, width=0.4, color=[colors[n] for n in order], hatch=hatch,
               edgecolor="k", lw=0.4)
    ax.set_xticks(range(len(order)), [n.split(",")[0] for n in order], rotation=30, fontsize=7)
    ax.set_ylabel("barrier / endpoint loss")
    ax.set_title("two seeds, trained", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [Patch(facecolor="w", edgecolor="k", hatch="//"), Patch(facecolor="w", edgecolor="k")]
    labels += ["naive (hatched)", f"{alignment} matched"]
    fig.legend(handles, labels, loc="outside lower center", ncols=3)
    fig.suptitle("Optimiser dependence: monotonic linear interpolation and seed-pair barriers")
    return fig


def stitching(tables: Tables, options: Mapping[str, Any]):
    stitching = tables["models"]["stitching"]
    fig, axes = new_figure(1, 1, size=(6.0, 3.2), max_width=TEXT_WIDTH_IN)
    ax = axes[0, 0]
    labels = list(dict.fromkeys(f"{r.stitch}\n({r.class_a} -> {r.class_b})" for r in stitching.itertuples()))
    for offset, split in ((-0.2, "train"), (0.2, "test")):
        part = stitching[stitching["split"] == split]
        ax.bar(np.arange(len(part)) + offset, part["penalty"], width=0.4, color=SPLIT_STYLE[split], label=split)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("stitching penalty\nloss(stitched) - loss(B)")
    ax.legend(fontsize=7)
    fig.suptitle("Stitching A's hidden layer into B's output layer through a trained affine map")
    return fig


def stitch_training(tables: Tables, options: Mapping[str, Any]):
    """Relative stitching penalty against the checkpoint step: A's checkpoint into A's final model (within one run) and
    into another seed's checkpoint of the same step (across runs), per class; and the receiving model's loss."""
    table = tables["models"]["stitch_training"]
    table = table[table["split"] == options.get("split", "test")]
    fig, axes = new_figure(1, 2, size=(3.4, 2.6), max_width=TEXT_WIDTH_IN)
    final = table[table["step"] == table["final_step"]].assign(minus_loss=lambda t: -t["loss_a"])
    ranked = final.groupby("class_a")[["order_a", "minus_loss"]].mean().sort_values(["order_a", "minus_loss"]).index
    # the bundle's ranking: by order, ties to the lower loss; lower class first
    colors = dict(zip(ranked, (PALETTE["orange"], PALETTE["blue"])))
    styles = {"within": "-o", "across": "--s"}
    for (class_a, kind), part in table.groupby(["class_a", "kind"]):
        part = part.sort_values("step")
        target = "its own final model" if kind == "within" else "the other seed, same step"
        axes[0, 0].plot(part["step"], part["relative_penalty"], styles[kind], ms=3, color=colors[class_a],
                        label=f"{class_a}: A at step -> {target}")
        axes[0, 1].plot(part["step"], part["loss_b"], styles[kind], ms=3, color=colors[class_a])
    for ax in axes[0]:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("training step of A's checkpoint")
    axes[0, 0].axhline(0, color="k", lw=0.5)
    axes[0, 0].set_ylabel("penalty / receiving model's loss")
    axes[0, 0].set_title("stitching penalty, relative", fontsize=8)
    axes[0, 1].set_yscale("log")
    axes[0, 1].set_ylabel("receiving model's test loss")
    axes[0, 1].set_title("the model stitched into", fontsize=8)
    legend_below(fig, axes[0, 0])
    fig.suptitle("Stitching along training: one run's checkpoints into its final model and across runs")
    return fig


def finetune(tables: Tables, options: Mapping[str, Any]):
    """Over fine-tuning from the polysemantic start, per beta: #mono/#features, test loss and the barrier back to the
    start (naive solid, matched dashed)."""
    table = tables["models"]["finetune"]
    betas = sorted(table["beta"].unique())
    colors = dict(zip(betas, (PALETTE["black"], PALETTE["blue"], PALETTE["vermillion"], PALETTE["green"], PALETTE["orange"],
                              PALETTE["purple"], PALETTE["sky"])))
    fig, axes = new_figure(1, 3, size=(2.4, 2.5), max_width=TEXT_WIDTH_IN)
    for beta in betas:
        part = table[table["beta"] == beta].sort_values("step")
        label = "plain (beta = 0)" if beta == 0 else f"beta = {beta:g}"
        axes[0, 0].plot(part["step"], part["mono"], "-o", ms=3, color=colors[beta], label=label)
        axes[0, 1].plot(part["step"], part["loss"], "-o", ms=3, color=colors[beta])
        axes[0, 2].plot(part["step"], part["barrier_naive"], "-o", ms=3, color=colors[beta])
        axes[0, 2].plot(part["step"], part["barrier_matched"], "--s", ms=3, color=colors[beta])
    axes[0, 2].plot([], [], "-", color="0.4", label="naive")
    axes[0, 2].plot([], [], "--", color="0.4", label="weight matched")
    for ax, label in zip(axes[0], ("#mono / #features", "test loss", "barrier to the start (test loss)")):
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel(label)
    axes[0, 0].axhline(float(table["mono_start"].iloc[0]), color="0.5", lw=0.7, ls=":")
    axes[0, 0].set_title("monosemanticity\n(dotted: the start)", fontsize=8)
    axes[0, 1].set_title("task loss", fontsize=8)
    axes[0, 2].set_title("barrier back to the start", fontsize=8)
    handles, labels = [], []
    for ax in (axes[0, 0], axes[0, 2]):
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
    fig.suptitle("Connectivity-based fine-tuning from a polysemantic model: reward for a barrier back to the start")
    return fig


def _symlog(ax, lams: pd.Series) -> None:
    """A symmetric-log lambda axis, linear below the smallest positive lambda so that lambda = 0 is shown."""
    positive = lams[lams > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
    ax.set_xlim(float(lams.min()), float(lams.max()) * 1.5)


def hopping(tables: Tables, options: Mapping[str, Any]):
    hopping = tables["models"]["hopping"]
    show_mono = bool(hopping["mono_final"].notna().any())
    fig, axes = new_figure(1, 3 if show_mono else 2, size=(2.4, 2.4))
    colors = dict(zip(sorted(hopping["direction"].unique()), (PALETTE["orange"], PALETTE["blue"])))
    panels = list(axes[0])
    for direction, part in hopping.groupby("direction"):
        part = part.sort_values("lam")
        color = colors[direction]
        landed = part[part["in_b_basin"]]
        jump = f"lambda* = {landed['lam'].min():.3g}" if len(landed) else "no hop"
        panels[0].plot(part["lam"], part["barrier_to_a"], "--o", ms=3, color=color, label=f"{direction}: to A")
        panels[0].plot(part["lam"], part["barrier_to_b"], "-o", ms=3, color=color, label=f"{direction}: to B ({jump})")
        panels[1].plot(part["lam"], part["distance_to_b"], "-o", ms=3, color=color, label=direction)
        if show_mono:
            panels[2].plot(part["lam"], part["mono_final"], "-o", ms=3, color=color, label=direction)
            panels[2].axhline(float(part["mono_a"].iloc[0]), color=color, lw=0.7, ls="--")
            panels[2].axhline(float(part["mono_b"].iloc[0]), color=color, lw=0.7, ls=":")
    for ax in panels:
        _symlog(ax, hopping["lam"])
        ax.set_xlabel("pull strength lambda")
    panels[0].set_ylabel("barrier (test loss)")
    panels[0].set_title("barrier to A (dashed)\nand to B (solid)", fontsize=8)
    panels[1].set_ylabel("relative distance")
    panels[1].set_title("distance to matched B\nafter settling", fontsize=8)
    legend_below(fig, panels[0])  # the curves cross mid-panel
    if show_mono:
        panels[2].set_ylabel("#mono / #features")
        panels[2].set_title("monosemanticity\n(dashed: A, dotted: B)", fontsize=8)
    fig.suptitle("Basin hopping: A pulled towards matched B with strength lambda, then released")
    return fig


def universality(tables: Tables, options: Mapping[str, Any]):
    table = tables["models"]["universality"].dropna(subset=["correlation"])
    fig, axes = new_figure(1, 1, size=(5.0, 3.2))
    ax = axes[0, 0]
    bins = np.linspace(-1, 1, 41)
    for method, color in (("naive", "0.6"), ("activation", PALETTE["purple"])):
        values = table[table["matching"] == method]["correlation"]
        ax.hist(values, bins=bins, color=color, alpha=0.7,
                label=f"{'by index' if method == 'naive' else 'activation matched'} (median {values.median():.2f})")
    n_pairs = len(table[["model", "seed_a", "seed_b"]].drop_duplicates())
    ax.set_xlabel("correlation of a neuron with its partner in another seed (test inputs)")
    ax.set_ylabel("neurons")
    ax.legend(fontsize=7)
    ax.set_title(f"Cross-seed universality ({n_pairs} seed pairs; dead neurons left out)")
    return fig
