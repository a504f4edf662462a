"""The monosemanticity metric (Jermyn et al. 2022) and each feature's status."""

from __future__ import annotations

import torch

from toymodels.studies.monosemanticity.model import activation

MONO_THRESHOLD = 0.999
STATUSES = ("monosemantic", "shared", "dropped")


def single_feature_activations(W1: torch.Tensor, b1: torch.Tensor, P: torch.Tensor, nonlinearity: str = "relu") -> torch.Tensor:
    """sfa[i, n, f] = max(0, act(W1 P e_f + b1)[n]): neuron n's response to feature f alone at value 1, [I, k, N].

    For ReLU this is ReLU(W1 P e_f + b1); GeLU and SoLU responses are clipped at 0 so the ratios stay shares.
    """
    pre = torch.baddbmm(b1[..., None], W1, P.expand(W1.shape[0], *P.shape))
    return activation(nonlinearity)(pre).clamp_min(0)


def frac_mono(sfa: torch.Tensor) -> torch.Tensor:
    """max_f sfa / (1e-10 + sum_f sfa) per neuron, [I, k]: 1 for a neuron that one feature alone drives, 0 if dead."""
    return sfa.amax(dim=-1) / (1e-10 + sfa.sum(dim=-1))


def is_dead(sfa: torch.Tensor) -> torch.Tensor:
    """A neuron that no single feature activates, [I, k]."""
    return sfa.amax(dim=-1) <= 0


def monosemantic(sfa: torch.Tensor) -> torch.Tensor:
    """frac_mono > 0.999 and not dead, [I, k]."""
    return (frac_mono(sfa) > MONO_THRESHOLD) & ~is_dead(sfa)


def mono_fractions(sfa: torch.Tensor) -> dict[str, torch.Tensor]:
    """#mono / #features and #mono / #neurons per instance."""
    count = monosemantic(sfa).sum(dim=-1).float()
    return {"mono_fraction_features": count / sfa.shape[-1], "mono_fraction_neurons": count / sfa.shape[-2]}


def feature_status(sfa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per feature, [I, N]: status index into STATUSES, #monosemantic neurons it drives, #neurons it activates.

    monosemantic: some monosemantic neuron has it as top feature; dropped: it activates no neuron; shared: otherwise.
    """
    mono = monosemantic(sfa)
    top = sfa.argmax(dim=-1)
    mono_neurons = torch.zeros(sfa.shape[0], sfa.shape[-1], dtype=torch.long, device=sfa.device)
    mono_neurons.scatter_add_(1, top, mono.long())
    active_neurons = (sfa > 0).sum(dim=-2)
    status = torch.where(mono_neurons > 0, 0, torch.where(active_neurons > 0, 1, 2))
    return status, mono_neurons, active_neurons
