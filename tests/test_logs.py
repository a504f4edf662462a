"""Job output: the log file, and the one line per finished cell on the console (none under --quiet)."""

import pandas as pd

from toymodels.logs import QUIET_VARIABLE, announce, cell_summary, log_to


def test_cell_summary_names_the_cell_time_and_final_loss_over_seeds():
    history = pd.DataFrame({"step": [0, 0, 50, 50], "seed": [0, 1, 0, 1], "loss": [1.0, 2.0, 0.25, 0.75]})
    assert cell_summary("double_descent", "T=4__m=3", 12.34, history) == (
        "toymodels: trained double_descent T=4__m=3 in 12.3 s: 50 steps, final loss 0.5 (mean of 2 instances)")
    assert cell_summary("sae", "default", 1, history.iloc[[0, 2]]).endswith("final loss 0.25 (mean of 1 instance)")


def test_announce_reaches_the_console_and_the_log_unless_quiet(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv(QUIET_VARIABLE, raising=False)
    with log_to(tmp_path / "job.log"):
        announce("cell done")
    assert (tmp_path / "job.log").read_text() == "cell done\n"
    assert capfd.readouterr().err == "cell done\n"
    monkeypatch.setenv(QUIET_VARIABLE, "1")
    with log_to(tmp_path / "quiet.log"):
        announce("cell done")
    assert (tmp_path / "quiet.log").read_text() == "cell done\n" and capfd.readouterr().err == ""
