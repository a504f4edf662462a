"""Shared figure style and plot helpers: sweep lines, vector fans, heatmaps, byte-stable saving."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.25, "svg.hashsalt": "toymodels",
}
FEATURE_COLOR = "tab:blue"
DATAPOINT_COLOR = "tab:red"


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.0, 3.0), **kwargs):
    """A figure with the house style; ``size`` is per panel (width, height) in inches."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kwargs)
    return fig, axes


def save_figure(fig, png_path: str, pdf_path: str) -> None:
    """PNG and PDF, byte-stable for the same input (no creation date in the PDF)."""
    with plt.rc_context(STYLE):
        fig.savefig(png_path, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(pdf_path, bbox_inches="tight", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(fig)


def log_scale(ax, axis: str = "x") -> None:
    """Log scale labelled at powers of ten only (minor labels collide on x axes spanning about a decade)."""
    from matplotlib.ticker import NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"{axis}axis").set_minor_formatter(NullFormatter())


def swept_log_axis(ax, values: Sequence[float], base: int = 10) -> None:
    """Log x axis ticked and labelled at the swept values only (the default minor labels collide within a decade)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    from toymodels.grid import format_value

    ticks = sorted({float(v) for v in values})
    ax.set_xscale("log", base=base)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([format_value(int(t) if t.is_integer() else t) for t in ticks])


def value_colors(values: Sequence, cmap: str = "viridis", log: bool = False) -> dict:
    """One colour per sorted distinct value (a log-spaced palette for log-swept values)."""
    ordered = sorted(set(values))
    if not ordered:
        return {}
    numeric = all(isinstance(v, (int, float, np.number)) for v in ordered) and len(ordered) > 1
    if numeric:
        norm = (LogNorm if log and min(ordered) > 0 else Normalize)(vmin=min(ordered), vmax=max(ordered))
        return {v: plt.get_cmap(cmap)(0.9 * norm(v)) for v in ordered}
    return {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(ordered)}


def sweep_lines(ax, table: pd.DataFrame, x: str, y: str, hue: str | None = None, *, log_hue: bool = False,
                label_format: str = "{}", hue_label: str | None = None, show_points: bool = True, marker: str = "o",
                **line_kwargs) -> None:
    """Mean of ``y`` over seeds against ``x``, one line per ``hue`` value, with every seed as a faint point.

    Legend entries read ``<hue_label> = <value>`` (``hue_label`` defaults to the column name; "" gives the value alone).
    """
    groups = [(None, table)] if hue is None else sorted(table.groupby(hue), key=lambda g: g[0])
    colors = value_colors([g for g, _ in groups], log=log_hue) if hue else {None: line_kwargs.pop("color", "k")}
    fixed_label = line_kwargs.pop("label", None)
    for value, part in groups:
        color = colors[value]
        mean = part.groupby(x)[y].mean()
        name = hue if hue_label is None else hue_label
        label = fixed_label if hue is None else (f"{name} = " if name else "") + label_format.format(value)
        ax.plot(mean.index, mean.values, marker=marker, markersize=3, color=color, label=label, **line_kwargs)
        if show_points:
            ax.scatter(part[x], part[y], s=6, color=color, alpha=0.35, linewidths=0)


def vector_fan(ax, x: np.ndarray, y: np.ndarray, color: str, limit: float | None = None, alpha: float = 0.6,
               highlight: np.ndarray | None = None) -> float:
    """Vectors from the origin to (x, y) as lines with end points; returns the axis limit used."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    radius = float(np.nanmax(np.hypot(x, y))) if len(x) else 1.0
    limit = limit if limit is not None else 1.1 * max(radius, 1e-9)
    segments = np.stack([np.zeros((len(x), 2)), np.stack([x, y], 1)], 1)
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segments, colors=color, linewidths=0.6, alpha=alpha))
    ax.scatter(x, y, s=4, color=color, alpha=alpha, linewidths=0)
    if highlight is not None and highlight.any():
        ax.scatter(x[highlight], y[highlight], s=40, facecolors="none", edgecolors="k", linewidths=1.0, zorder=3)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.axhline(0, color="0.85", lw=0.5, zorder=0)
    ax.axvline(0, color="0.85", lw=0.5, zorder=0)
    return limit


def heatmap_panel(ax, pivot: pd.DataFrame, label: str, log: bool = False, cmap: str = "magma", fmt: str = "{:.2f}"):
    """A labelled heatmap of ``pivot`` (rows on y, columns on x) with a colour bar and annotated cells."""
    values = pivot.to_numpy(float)
    finite = values[np.isfinite(values)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if log and finite.size and finite.min() > 0 else None
    image = ax.imshow(values, aspect="auto", origin="lower", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(pivot.columns)), [str(c) for c in pivot.columns], rotation=45)
    ax.set_yticks(range(len(pivot.index)), [str(i) for i in pivot.index])
    ax.set_xlabel(pivot.columns.name)
    ax.set_ylabel(pivot.index.name)
    ax.grid(False)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                red, green, blue, _ = image.cmap(image.norm(v))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # text colour from the cell's luminance
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6, color="w" if dark else "k")
    ax.figure.colorbar(image, ax=ax, label=label)
    return image
