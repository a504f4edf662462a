"""The modular-addition figures, drawn from collected Parquet tables only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from toymodels.plotting import CATEGORICAL, PALETTE, legend_below, new_figure, new_panels, sweep_lines, value_colors

Tables = Mapping[str, Mapping[str, pd.DataFrame]]

DEAD_COLOR = "0.75"
METHOD_STYLE = {"lasso": "--", "least_squares": ":"}


def _pick(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    for key, value in where.items():
        table = table[table[key] == value]
    return table


def _survivor_colors(ks) -> dict[int, Any]:
    return {int(k): CATEGORICAL[i % len(CATEGORICAL)] for i, k in enumerate(sorted(ks))}


def _chosen_d(table: pd.DataFrame, options: Mapping[str, Any]) -> list[int]:
    values = sorted(table["d"].unique())
    wanted = options.get("d", values)
    return [d for d in (wanted if isinstance(wanted, list) else [wanted]) if d in values]


def signal_evolution(tables: Tables, options: Mapping[str, Any]):
    sweep, seed = tables["sweep"], int(options.get("seed", 0))
    ds = _chosen_d(sweep["instances"], options)
    fig, axes = new_panels(len(ds), size=(3.4, 2.6), max_columns=2)
    for ax, d in zip(axes, ds):
        signals = _pick(sweep["signals"], d=d, seed=seed)
        signals = signals[signals["step"] > 0]
        instance = _pick(sweep["instances"], d=d, seed=seed).iloc[0]
        alive = _pick(sweep["frequencies"], d=d, seed=seed).query("survived")["k"].tolist()
        colors = _survivor_colors(alive)
        for k, part in signals.groupby("k"):
            survivor = k in colors
            ax.plot(part["step"], part["signal"], color=colors.get(k, DEAD_COLOR), lw=1.4 if survivor else 0.7,
                    zorder=3 if survivor else 1, label=f"k = {k}" if survivor else None)
        ax.axvline(max(1, instance["survivors_fixed_step"]), color="k", lw=0.7, ls=":", label="survivor set fixed")
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"d = {d}: {len(alive)} survivors, test acc {instance['test_accuracy']:.2f}")
        ax.legend(fontsize=6, loc="upper left")
        ax.set_ylabel("signal $S_k(t)$")
    fig.suptitle(f"Fourier signal of the embedding per frequency (seed {seed}; grey: dead frequencies)")
    return fig


def fourier_planes(tables: Tables, options: Mapping[str, Any]):
    sweep, seed = tables["sweep"], int(options.get("seed", 0))
    d = _chosen_d(sweep["instances"], options)[0]
    planes = _pick(sweep["planes"], d=d, seed=seed)
    frequencies = _pick(sweep["frequencies"], d=d, seed=seed).set_index("k")
    ks = sorted(planes["k"].unique())
    fig, axes = new_panels(len(ks), size=(2.6, 2.8))
    p = int(sweep["instances"]["p"].iloc[0])
    for ax, k in zip(axes, ks):
        part = planes[planes["k"] == k].sort_values("token")
        order = np.argsort((part["token"].to_numpy() * k) % p)
        x, y = part["x"].to_numpy()[order], part["y"].to_numpy()[order]
        ax.plot(np.append(x, x[0]), np.append(y, y[0]), color="0.6", lw=0.6, zorder=1)
        points = ax.scatter(part["x"], part["y"], c=part["token"], cmap="twilight", s=14, zorder=2, vmin=0, vmax=p)
        for token in (0, 1, 2):
            row = part[part["token"] == token].iloc[0]
            ax.annotate(str(token), (row["x"], row["y"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_aspect("equal")
        ax.set_title(f"k = {k}, $S_k$ = {frequencies.loc[k, 'final_signal']:.1f}")
        ax.set_xlabel("Re-direction of $c_k$")
        ax.set_ylabel("Im-direction of $c_k$")
    if ks:
        fig.colorbar(points, ax=axes, label="token a", shrink=0.8)
    else:
        axes[0].text(0.5, 0.5, "no surviving frequency", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"Final embedding on the Fourier plane of each surviving frequency (d = {d}, seed {seed});\n"
                 "the line joins tokens in order of a k mod p)")
    return fig


def survivors(tables: Tables, options: Mapping[str, Any]):
    instances, x = tables["sweep"]["instances"], options.get("x", "d")
    fig, axes = new_figure(1, 2, size=(3.6, 3.0))
    sweep_lines(axes[0, 0], instances, x, "n_survivors", color=PALETTE["blue"], label="mean over seeds")
    axes[0, 0].set_ylabel("surviving frequencies (survivor rule)")
    sweep_lines(axes[0, 1], instances, x, "test_accuracy", color=PALETTE["green"], label="test accuracy")
    sweep_lines(axes[0, 1], instances, x, "train_accuracy", color="0.4", label="train accuracy", linestyle="--")
    axes[0, 1].set_ylabel("accuracy")
    axes[0, 1].set_ylim(0, 1.05)
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x.replace("_", " "))
        ax.legend()
    fig.suptitle(f"Surviving circles against {x} ({instances['seed'].nunique()} seeds per value)")
    return fig


def fitness_summary(frequencies: pd.DataFrame) -> dict[str, float]:
    """How well each frequency's initial signal and early gradient predict its survival: ROC AUC over all
    (instance, k) rows, and Spearman rank correlation of the survival rate across seeds that share an initial
    embedding with the frequency's (mean) initial signal / early gradient."""
    rates, both_classes = survival_rates(frequencies), frequencies["survived"].nunique() == 2
    summary = {}
    for name in ("initial_signal", "early_gradient"):
        summary[f"auc_{name}"] = float(roc_auc_score(frequencies["survived"], frequencies[name])) if both_classes else float("nan")
        varies = rates["survival_rate"].nunique() > 1
        summary[f"spearman_{name}"] = float(spearmanr(rates[name], rates["survival_rate"]).statistic) if varies else float("nan")
    return summary


def survival_rates(frequencies: pd.DataFrame) -> pd.DataFrame:
    """Per (initial embedding, k): fraction of seeds in which k survived, mean initial signal and early gradient."""
    groups = [c for c in ("p", "d", "embedding_seed") if c in frequencies] + ["k"]
    return frequencies.groupby(groups, as_index=False).agg(
        survival_rate=("survived", "mean"), initial_signal=("initial_signal", "mean"),
        early_gradient=("early_gradient", "mean"), n_seeds=("seed", "nunique"))


def fitness(tables: Tables, options: Mapping[str, Any]):
    frequencies = tables["fitness"]["frequencies"]
    rates, summary = survival_rates(frequencies), fitness_summary(frequencies)
    embeddings = sorted(rates["embedding_seed"].unique()) if "embedding_seed" in rates else [None]
    colors = value_colors(embeddings)
    fig, axes = new_figure(2, 2, size=(3.4, 2.5))
    for column, (name, label) in enumerate((("initial_signal", "initial signal $S_k(0)$"),
                                            ("early_gradient", "early gradient $g_k$"))):
        ax = axes[0, column]
        for embedding in embeddings:
            part = rates if embedding is None else rates[rates["embedding_seed"] == embedding]
            ax.scatter(part[name], part["survival_rate"], s=12, color=colors[embedding], alpha=0.8,
                       label=None if embedding is None else f"embedding {embedding}")
        ax.set_xlabel(label)
        ax.set_ylabel(f"survival rate over {int(rates['n_seeds'].min())} seeds")
        ax.set_title(f"Spearman {summary['spearman_' + name]:.2f}")
        hist_ax = axes[1, column]
        bins = np.histogram_bin_edges(frequencies[name], bins=20)
        for survived, color, text in ((False, DEAD_COLOR, "died"), (True, PALETTE["vermillion"], "survived")):
            hist_ax.hist(frequencies.loc[frequencies["survived"] == survived, name], bins=bins, color=color,
                         alpha=0.8, density=True, label=text)
        hist_ax.set_xlabel(label)
        hist_ax.set_ylabel("density over (seed, k)")
        hist_ax.set_title(f"ROC AUC {summary['auc_' + name]:.2f}")
        hist_ax.legend()
    if embeddings != [None]:
        axes[0, 0].legend(fontsize=6)
    d = ", ".join(str(v) for v in sorted(frequencies["d"].unique()))
    fig.suptitle(f"Fitness: do frequencies with a high initial signal or early gradient survive? (d = {d};\n"
                 "seeds share the initial embedding, differ in MLP init and split)")
    return fig


def ode(tables: Tables, options: Mapping[str, Any]):
    sweep, seed = tables["sweep"], int(options.get("seed", 0))
    d = _chosen_d(sweep["instances"], options)[0]
    method = options.get("method", "lasso")
    fig, axes = new_figure(1, 3, size=(3.8, 4.6))
    signals = _pick(sweep["signals"], d=d, seed=seed).dropna(subset=["ode_lasso"])
    frequencies = _pick(sweep["frequencies"], d=d, seed=seed)
    alive = frequencies.query("survived")["k"].tolist()
    dead = frequencies.query("not survived").nlargest(2, "initial_signal")["k"].tolist()
    colors = {**_survivor_colors(alive), **{k: c for k, c in zip(dead, ("0.35", "0.6"))}}
    ax = axes[0, 0]
    for k in alive + dead:
        part = signals[signals["k"] == k]
        ax.plot(part["step"], part["signal"], color=colors[k], lw=1.4, label=f"k = {k}" + ("" if k in alive else " (dies)"))
        for name, style in METHOD_STYLE.items():
            ax.plot(part["step"], part[f"ode_{name}"], color=colors[k], lw=1.0, ls=style)
    ax.plot([], [], color="k", ls="--", label="Lasso roll-out")
    ax.plot([], [], color="k", ls=":", label="least-squares roll-out")
    ax.set_xlabel("training step")
    ax.set_ylabel("signal $S_k(t)$")
    ax.set_title(f"d = {d}, seed {seed}: true (solid) vs ODE")
    legend_below(fig, ax)
    matrix = _pick(sweep["ode_matrix"], d=d, seed=seed, method=method)
    pivot = matrix[matrix["j"] > 0].pivot(index="k", columns="j", values="A")
    limit = float(np.abs(pivot.to_numpy()).max()) or 1.0
    image = axes[0, 1].imshow(pivot.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, origin="upper")
    ticks = [i for i, k in enumerate(pivot.index) if k == 1 or k % 10 == 0]
    marks = [i for i, k in enumerate(pivot.index) if k in alive]
    for axis in (axes[0, 1].xaxis, axes[0, 1].yaxis):  # labels every 10; survivors as long vermillion minor ticks
        axis.set_ticks(ticks, [str(pivot.index[i]) for i in ticks], fontsize=6)
        axis.set_ticks(marks, minor=True)
    axes[0, 1].tick_params(which="minor", length=5, width=1.2, color=PALETTE["vermillion"])
    axes[0, 1].grid(False)
    axes[0, 1].set_xlabel(f"source frequency j\n(vermillion ticks: survivors {', '.join(map(str, alive))})")
    axes[0, 1].set_ylabel("frequency k")
    axes[0, 1].set_title(f"A ({method.replace('_', ' ')}): dS_k/dt per unit S_j")
    fig.colorbar(image, ax=axes[0, 1], shrink=0.8)
    ode = sweep["ode"]
    for name, style in METHOD_STYLE.items():
        part = ode[ode["method"] == name]
        sweep_lines(axes[0, 2], part, "d", "r2_derivative", color=PALETTE["blue"], linestyle=style,
                    label=f"one-step change, {name.replace('_', ' ')}")
        sweep_lines(axes[0, 2], part.assign(r2_rollout=part["r2_rollout"].clip(lower=-1)), "d", "r2_rollout",
                    color=PALETTE["vermillion"], linestyle=style, label=f"roll-out, {name.replace('_', ' ')}")
    axes[0, 2].set_xscale("log", base=2)
    axes[0, 2].set_ylim(-1.05, 1.05)
    axes[0, 2].set_xlabel("d")
    axes[0, 2].set_ylabel("$R^2$ (roll-out clipped at -1)")
    axes[0, 2].set_title(f"fit quality, first {int(ode['window_steps'].iloc[0])} steps")
    axes[0, 2].legend(fontsize=6, loc="lower right")
    alpha = float(ode.loc[ode["method"] == "lasso", "alpha"].iloc[0])
    fig.suptitle(f"Linear ODE dX/dt = AX + b on X = [S_1..S_K] (Lasso alpha = {alpha:g} vs least squares)")
    return fig


def ablation(tables: Tables, options: Mapping[str, Any]):
    ablation = tables["sweep"]["ablation"]
    n_all = int(ablation["n_kept"].max())
    ablation = ablation.assign(position=ablation["n_kept"].where(ablation["n_kept"] < n_all, 4))
    fig, axes = new_figure(1, 2, size=(3.6, 3.0))
    for ax, column in zip(axes[0], ("test_loss", "test_accuracy")):
        sweep_lines(ax, ablation, "position", column, "d", log_hue=True)
        ax.set_xticks([1, 2, 3, 4], ["1", "2", "3", f"all {n_all}"])
        ax.set_xlabel("frequencies kept (strongest final $S_k$) + mean")
        ax.set_ylabel(column.replace("_", " "))
        ax.legend()
    axes[0, 0].set_yscale("log")
    fig.suptitle("Embedding rebuilt from its strongest frequencies only (MLP unchanged)")
    return fig
