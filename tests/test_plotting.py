"""Shared plot helpers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from toymodels.plotting import swept_log_axis  # noqa: E402


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
