"""Shared plot helpers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from toymodels.plotting import (  # noqa: E402
    CATEGORICAL,
    COLUMN_WIDTH_IN,
    PALETTE,
    STYLE,
    TEXT_WIDTH_IN,
    house_style,
    layout_check,
    legend_below,
    new_figure,
    new_panels,
    save_figure,
    swept_log_axis,
)


def test_swept_log_axis_ticks_and_labels_only_the_swept_values():
    fig, ax = plt.subplots()
    ax.plot([0.003, 0.01, 0.03], [1, 2, 3])
    swept_log_axis(ax, [0.03, 0.003, 0.01, 0.01])
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == [0.003, 0.01, 0.03]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0.003", "0.01", "0.03"]
    assert len(ax.xaxis.get_minorticklocs()) == 0
    swept_log_axis(ax, [32.0, 512.0], base=2)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["32", "512"]
    plt.close(fig)


def test_new_figure_fits_a_column_or_the_text_width_keeping_each_panels_aspect():
    fig, _ = new_figure(1, 4, size=(3.0, 2.0))
    width, height = fig.get_size_inches()
    assert width == pytest.approx(TEXT_WIDTH_IN) and height == pytest.approx(TEXT_WIDTH_IN / 4 / 1.5)
    plt.close(fig)
    fig, _ = new_figure(2, 1, size=(7.0, 2.0))  # one column of panels: a paper's column wide
    assert tuple(fig.get_size_inches()) == pytest.approx((COLUMN_WIDTH_IN, 2.0))
    plt.close(fig)
    fig, _ = new_figure(1, 1, size=(9.0, 3.0), max_width=TEXT_WIDTH_IN)
    assert tuple(fig.get_size_inches()) == pytest.approx((TEXT_WIDTH_IN, 2.4))
    plt.close(fig)


def test_layout_check_finds_overlapping_text_and_legends_and_the_smallest_font():
    with house_style():
        fig, axes = new_figure(1, 2, size=(3.0, 2.5))
        left, right = axes[0]
        left.plot([0, 1], [0, 1], label="a line")
        left.legend(loc="center")
        right.set_title("title")
        clean = layout_check(fig)
        assert clean["text_overlaps"] == [] and clean["smallest_font_pt"] == STYLE["xtick.labelsize"]
        assert clean["width_in"] <= 6.3 and clean["height_in"] > 2.0
        left.text(0.5, 0.5, "over the legend", transform=left.transAxes, ha="center", fontsize=5)
        right.text(0.5, 1.02, "over the title", transform=right.transAxes, ha="center")
        found = layout_check(fig)
    assert found["smallest_font_pt"] == 5
    pairs = {tuple(sorted(pair)) for pair in found["text_overlaps"]}
    assert pairs == {tuple(sorted(("legend a line...", "'over the legend'"))), tuple(sorted(("'title'", "'over the title'")))}
    plt.close(fig)


def test_house_style_uses_the_colour_blind_safe_palette():
    with house_style():
        fig, ax = plt.subplots()
        lines = [ax.plot([0, 1], [i, i])[0] for i in range(3)]
    assert [line.get_color() for line in lines] == list(CATEGORICAL[:3])
    assert CATEGORICAL[:4] == (PALETTE["blue"], PALETTE["orange"], PALETTE["green"], PALETTE["vermillion"])
    plt.close(fig)


def test_layout_check_reads_rotated_labels_by_their_turned_outline():
    """Long labels turned by 45 degrees clear each other although their upright bounding boxes overlap."""
    with house_style():
        fig, axes = new_figure(1, 1, size=(2.0, 2.5))
        ax = axes[0, 0]
        labels = ["a rather long label", "another long label", "a third long label"]
        ax.set_xticks(range(3), labels, rotation=45, ha="right", rotation_mode="anchor")
        assert layout_check(fig)["text_overlaps"] == []
        ax.set_xticks(range(3), labels, rotation=0)
        assert len(layout_check(fig)["text_overlaps"]) == 2
    plt.close(fig)


def test_save_figure_wraps_a_long_title_to_the_figure_width(tmp_path):
    fig, axes = new_figure(1, 1, size=(3.0, 2.5))
    axes[0, 0].set_title("panel title")
    fig.suptitle("a figure title far longer than the figure is wide, which would otherwise run past both edges")
    layout = save_figure(fig, str(tmp_path / "f.png"), str(tmp_path / "f.pdf"))
    assert layout["width_in"] <= 3.0 and layout["text_overlaps"] == []


def test_legend_below_puts_one_legend_under_the_panels_in_the_columns_that_fit():
    fig, axes = new_figure(1, 3, size=(2.4, 2.0))
    for name in ("a", "b", "c"):
        axes[0, 0].plot([0, 1], [0, 1], label=name)
    legend_below(fig, axes[0, 0])
    (legend,) = fig.legends
    assert legend._ncols == 3 and axes[0, 0].get_legend() is None
    assert layout_check(fig)["text_overlaps"] == []
    plt.close(fig)
    fig, axes = new_figure(1, 1, size=(3.5, 2.0))
    for name in ("frequencies = power_law, bias offset = -1.0", "frequencies = uniform, bias offset = 0.0"):
        axes[0, 0].plot([0, 1], [0, 1], label=name)
    legend_below(fig, axes[0, 0])
    assert fig.legends[0]._ncols == 1
    plt.close(fig)


def test_many_panels_wrap_into_rows_and_the_empty_slots_are_removed():
    fig, axes = new_panels(5, size=(2.0, 2.0))
    assert len(axes) == 5 and len(fig.axes) == 5
    assert fig.get_size_inches() == pytest.approx((6.0, 4.0))  # rows of 3 panels at 2 in: no shrinking
    assert [ax.get_subplotspec().rowspan.start for ax in axes] == [0, 0, 0, 1, 1]
    fig, axes = new_panels(2, size=(2.0, 2.0))
    assert len(axes) == 2 and fig.get_size_inches() == pytest.approx((4.0, 2.0))
