"""Shared figure style and plot helpers: the house style and palette, sweep lines, vector fans, heatmaps, a layout
check for print, byte-stable saving."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.text import Text  # noqa: E402

# Okabe & Ito's colour-blind-safe palette (distinct under protanopia, deuteranopia and tritanopia).
PALETTE = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00", "sky": "#56B4E9",
    "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000",
}
CATEGORICAL = tuple(PALETTE[name] for name in ("blue", "orange", "green", "vermillion", "sky", "purple", "black",
                                               "yellow"))
TEXT_WIDTH_IN = 7.2  # a two-column paper's full text width
COLUMN_WIDTH_IN = 3.5  # one column of it
MIN_FONT_PT = 6.0  # the smallest text a printed figure may carry at its saved size
STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "figure.titlesize": 9,
    "axes.prop_cycle": matplotlib.cycler(color=CATEGORICAL), "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.25, "svg.hashsalt": "toymodels",
}
FEATURE_COLOR = PALETTE["blue"]
DATAPOINT_COLOR = PALETTE["vermillion"]


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """The house style for everything drawn inside (text made after a figure exists takes its size from here)."""
    with plt.rc_context(STYLE):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (4.0, 3.0), max_width: float | None = None,
               **kwargs):
    """A figure with the house style and constrained layout (titles, labels, colour bars and legends kept apart);
    ``size`` is per panel (width, height) in inches, scaled down (aspect kept) to at most ``max_width``: by default a
    paper's column for one column of panels, its text width for more."""
    width, height = size[0] * ncols, size[1] * nrows
    limit = max_width or (COLUMN_WIDTH_IN if ncols == 1 else TEXT_WIDTH_IN)
    scale = min(1.0, limit / width)
    kwargs.setdefault("layout", "constrained")
    with house_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * scale, height * scale), squeeze=False, **kwargs)
    return fig, axes


def new_panels(count: int, size: tuple[float, float] = (4.0, 3.0), max_columns: int = 3, **kwargs):
    """A figure of ``count`` panels in rows of at most ``max_columns`` (``size`` per panel, as :func:`new_figure`), so
    that many panels keep a readable size at the text width; returns the figure and the ``count`` axes in reading
    order (the unused slots of the last row are removed)."""
    columns = max(1, min(count, max_columns))
    rows = max(1, -(-count // columns))
    fig, axes = new_figure(rows, columns, size=size, **kwargs)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.remove()
    return fig, flat[:max(count, 1)]


def legend_below(fig, ax) -> None:
    """The legend of ``ax`` as one figure legend below the panels (kept clear of the data by the layout), in as many
    columns as its longest entry allows across the figure's width."""
    handles, labels = ax.get_legend_handles_labels()
    if not labels:
        return
    entry_in = 0.4 + 0.55 * STYLE["legend.fontsize"] / 72 * max(len(label) for label in labels)  # handle + text
    columns = int(max(1, min(len(labels), fig.get_figwidth() // entry_in)))
    fig.legend(handles, labels, loc="outside lower center", ncols=columns)


def _outline(text: Text, renderer) -> np.ndarray:
    """The four corners (display units) of a text as drawn: its unrotated box turned by its rotation about the centre
    of its window extent (which is also the centre of the turned box)."""
    extent = text.get_window_extent(renderer)
    angle = np.deg2rad(text.get_rotation())
    if not angle:
        return np.array([[extent.x0, extent.y0], [extent.x1, extent.y0], [extent.x1, extent.y1], [extent.x0, extent.y1]])
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [flat.width / 2, flat.height / 2]
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return half @ turn.T + [(extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2]


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two convex quadrilaterals of positive area overlap (no edge normal of either separates them)."""
    for polygon in (a, b):
        for i in range(4):
            edge = polygon[(i + 1) % 4] - polygon[i]
            normal = np.array([-edge[1], edge[0]])
            pa, pb = a @ normal, b @ normal
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def _text_outlines(fig) -> list[tuple[str, np.ndarray]]:
    """(what, outline) of every visible, non-empty text of the figure; a legend counts as one box."""
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    inside = {id(text) for legend in legends for text in [*legend.get_texts(), legend.get_title()]}
    outlines = []
    for legend in legends:
        if legend.get_visible():
            box = legend.get_window_extent(renderer)
            corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
            outlines.append((f"legend {', '.join(t.get_text() for t in legend.get_texts()[:2])}...", corners))
    for ax in fig.axes:  # tick labels only where a tick is drawn (the axis keeps hidden ones out of view)
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                inside.add(id(tick.label1))
                inside.add(id(tick.label2))
            for label in axis.get_ticklabels(which="both"):
                if label.get_visible() and label.get_text() and _tick_drawn(axis, label):
                    outlines.append((f"tick {label.get_text()!r}", _outline(label, renderer)))
    for text in fig.findobj(Text):
        if id(text) in inside or not text.get_visible() or not text.get_text().strip():
            continue
        outlines.append((repr(text.get_text()[:40]), _outline(text, renderer)))
    return [(what, corners) for what, corners in outlines if np.ptp(corners[:, 0]) > 0 and np.ptp(corners[:, 1]) > 0]


def _tick_drawn(axis, label) -> bool:
    """Whether the axis draws this tick label (its position lies inside the view interval)."""
    low, high = sorted(axis.get_view_interval())
    position = label.get_position()[0 if axis.axis_name == "x" else 1]
    return bool(low - 1e-9 * abs(high - low) <= position <= high + 1e-9 * abs(high - low))


def layout_check(fig) -> dict[str, Any]:
    """What a reader of the printed figure would trip on: its size in inches (the saved, tight bounding box), the
    smallest font in points, and every pair of texts (titles, labels, drawn tick labels, annotations, whole legends)
    that overlap as drawn (rotated text by its turned outline)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)
    sizes = [text.get_fontsize() for text in fig.findobj(Text)
             if text.get_visible() and text.get_text().strip()]
    outlines = _text_outlines(fig)
    overlaps = [[first, second] for (first, a), (second, b) in itertools.combinations(outlines, 2) if _overlap(a, b)]
    return {"width_in": round(float(tight.width), 3), "height_in": round(float(tight.height), 3),
            "smallest_font_pt": float(min(sizes)) if sizes else None, "text_overlaps": overlaps}


def save_figure(fig, png_path: str, pdf_path: str) -> dict[str, Any]:
    """PNG and PDF, byte-stable for the same input (no creation date in the PDF), with the figure's own texts (its
    title) wrapped to its width; returns the figure's :func:`layout_check`."""
    for text in fig.texts:
        text.set_wrap(True)
    with house_style():
        layout = layout_check(fig)
        fig.savefig(png_path, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(pdf_path, bbox_inches="tight", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(fig)
    return layout


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
    return {v: CATEGORICAL[i % len(CATEGORICAL)] for i, v in enumerate(ordered)}


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
    ax.set_xticks(range(len(pivot.columns)), [str(c) for c in pivot.columns], rotation=45, ha="right", rotation_mode="anchor")
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
