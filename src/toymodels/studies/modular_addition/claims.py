"""The findings of Ding, Guo, Michaud, Liu, Tegmark 2024 (circle survival), as checks over the collected tables.

Light at import (no pandas): the workflow reads ``CLAIMS`` at parse time. The fitness checks use the fitness
figure's own summary (``figures.fitness_summary``), imported when they run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from toymodels.claims import Claim, NotMeasured, Outcome, Tables, judged

if TYPE_CHECKING:
    import pandas as pd

DING = "Ding et al. 2024, Survival of the Fittest Representation (arXiv 2405.17420)"


def mean_by_d(table: pd.DataFrame, column: str) -> pd.Series:
    """``column`` averaged over the instances of each embedding dimension d (the survivors and ODE figures' lines)."""
    return table.groupby("d")[column].mean()


def _by_d(values: pd.Series, format: str) -> str:
    return ", ".join(f"{format.format(v)} (d = {d})" for d, v in values.items())


def _few_survive(tables: Tables) -> Outcome:
    instances, frequencies = tables["dimension"]["instances"], tables["dimension"]["frequencies"]
    if instances.empty:
        raise NotMeasured("the dimension grid has no instances")
    n_frequencies, counts = (instances["p"] - 1) // 2, instances["n_survivors"]
    dead = frequencies[~frequencies["survived"]].groupby(["d", "seed"])[["initial_signal", "final_signal"]].mean()
    decayed = (dead["final_signal"] < dead["initial_signal"]).mean() if len(dead) else float("nan")
    holds = ((counts >= 1) & (counts <= n_frequencies / 4)).all() and decayed == 1.0
    k_values = ", ".join(str(k) for k in sorted(n_frequencies.unique()))
    return judged(bool(holds), f"{counts.min()} to {counts.max()} survivors of K = {k_values} per instance "
                         f"({len(instances)} instances); the dead frequencies end weaker than they started in "
                         f"{decayed:.0%} of instances")


def _fitness(tables: Tables, predictor: str) -> Outcome:
    from toymodels.studies.modular_addition.figures import fitness_summary

    frequencies = tables["fitness"]["frequencies"]
    summary = fitness_summary(frequencies)
    auc, spearman = summary[f"auc_{predictor}"], summary[f"spearman_{predictor}"]
    if math.isnan(auc) or math.isnan(spearman):  # every frequency survived or none did, or the rates never vary
        raise NotMeasured("survival does not vary over the fitness grid's frequencies")
    return judged(auc > 0.5 and spearman > 0, f"ROC AUC {auc:.2f}, Spearman {spearman:.2f} over "
                                              f"{len(frequencies)} (instance, k) rows")


def _initial_signal_fitness(tables: Tables) -> Outcome:
    return _fitness(tables, "initial_signal")


def _early_gradient_fitness(tables: Tables) -> Outcome:
    return _fitness(tables, "early_gradient")


def _more_survive_with_d(tables: Tables) -> Outcome:
    survivors = mean_by_d(tables["dimension"]["instances"], "n_survivors")
    if len(survivors) < 2:
        raise NotMeasured("needs at least 2 values of d in the dimension grid")
    instances = tables["dimension"]["instances"]
    rank = float(instances["d"].corr(instances["n_survivors"], method="spearman"))
    holds = survivors.iloc[-1] > survivors.iloc[0] and rank > 0
    return judged(holds, "mean survivors " + _by_d(survivors, "{:.2f}") + f"; Spearman of d and survivors over "
                         f"{len(instances)} instances {rank:+.2f}")


def _linear_ode(tables: Tables) -> Outcome:
    ode = tables["dimension"]["ode"]
    lasso = mean_by_d(ode[ode["method"] == "lasso"], "r2_derivative")
    if lasso.empty:
        raise NotMeasured("the dimension grid has no Lasso fit")
    return judged(bool((lasso > 0.5).all()), "Lasso R^2 of the one-step change " + _by_d(lasso, "{:.2f}"))


def _circles_cooperate(tables: Tables) -> Outcome:
    ablation = tables["dimension"]["ablation"]
    losses = ablation[ablation["n_kept"].isin([1, 2, 3])].pivot_table(index="d", columns="n_kept", values="test_loss",
                                                                       aggfunc="mean")
    if list(losses.columns) != [1, 2, 3]:
        raise NotMeasured("needs the ablation with 1, 2 and 3 kept frequencies")
    holds = ((losses[1] > losses[2]) & (losses[2] > losses[3])).all()
    return judged(bool(holds), "mean test loss with 1 / 2 / 3 frequencies kept: " + ", ".join(
        f"{row[1]:.2f} / {row[2]:.2f} / {row[3]:.2f} (d = {d})" for d, row in losses.iterrows()))


CLAIMS = (
    Claim(
        id="few_survive",
        source=f"{DING}, abstract and Section 2 (signal evolution)",
        statement="The circles at the (p - 1)/2 Fourier frequencies compete: only a few survive, the others die out.",
        criterion="In every instance of the dimension grid: at least 1 and at most K/4 survivors of the K = (p - 1)/2 "
                  "frequencies ('only a few': 7 of 29 at p = 59; the factor-2 survivor rule alone caps them at K/2), "
                  "and the frequencies that do not survive end, on average, below their initial signal.",
        figure="modular_addition_signals",
        grids=("dimension",),
        check=_few_survive,
    ),
    Claim(
        id="initial_signal_fitness",
        source=f"{DING}, Section 3.2.1 (initial signal), seeds sharing the initial embedding",
        statement="Frequencies with a high initial signal S_k(0) are more likely to survive.",
        criterion="Over the fitness grid (seeds share each initial embedding): ROC AUC of S_k(0) for survival above "
                  "0.5 (chance), and a positive Spearman correlation of the survival rate across seeds with S_k(0).",
        figure="modular_addition_fitness",
        grids=("fitness",),
        check=_initial_signal_fitness,
    ),
    Claim(
        id="early_gradient_fitness",
        source=f"{DING}, Section 3.2.2 (initial gradient), seeds sharing the initial embedding",
        statement="Frequencies with a high early gradient g_k are more likely to survive.",
        criterion="Over the fitness grid: ROC AUC of g_k for survival above 0.5 (chance), and a positive Spearman "
                  "correlation of the survival rate across seeds with the mean g_k.",
        figure="modular_addition_fitness",
        grids=("fitness",),
        check=_early_gradient_fitness,
    ),
    Claim(
        id="more_survive_with_d",
        source=f"{DING}, abstract and Section 3.1 (varying dimensionality)",
        statement="More frequencies survive with a larger embedding dimension d.",
        criterion="The mean number of survivors is larger at the largest d than at the smallest, and the rank "
                  "correlation of d with the survivor count over all instances is positive (a trend, as the paper's "
                  "survivors-against-d figure with its spread over seeds).",
        figure="modular_addition_survivors",
        grids=("dimension",),
        check=_more_survive_with_d,
    ),
    Claim(
        id="linear_ode",
        source=f"{DING}, abstract and Section 4.3 (ODE analysis: Lasso, alpha 0.01, R^2 against d)",
        statement="The circles' signals follow a set of linear differential equations dX/dt = AX + b over early "
                  "training.",
        criterion="At every d, the paper's fit (Lasso of the one-step change of X = [S_1 .. S_K] on X) explains most "
                  "of that change's variance: mean R^2 over instances above 0.5.",
        figure="modular_addition_ode",
        grids=("dimension",),
        check=_linear_ode,
    ),
    Claim(
        id="circles_cooperate",
        source=f"{DING}, Section 4.1 (circle collaborations: test loss with one, two, three circles)",
        statement="Circles cooperate: the embedding rebuilt from more of its strongest circles gives a lower test "
                  "loss.",
        criterion="At every d, the mean test loss with the embedding rebuilt from the 1, 2 and 3 strongest final "
                  "frequencies falls strictly: loss(1) > loss(2) > loss(3).",
        figure="modular_addition_ablation",
        grids=("dimension",),
        check=_circles_cooperate,
    ),
)
