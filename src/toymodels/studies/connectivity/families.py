"""The two model families whose cached checkpoints the study reads, behind one interface.

Every method takes weights with a leading instance axis (one model per instance, e.g. one per alpha) except the
matching ones, which take single models. encode: input -> hidden layer; decode: hidden layer -> output.
"""

from __future__ import annotations

from typing import Mapping

import torch

from toymodels.studies.connectivity.landscape import match_permutation, procrustes
from toymodels.studies.monosemanticity.metrics import mono_fractions, single_feature_activations
from toymodels.studies.monosemanticity.model import activation

Weights = Mapping[str, torch.Tensor]
CHUNK_ELEMENTS = 2**22  # bound on the [I, chunk, out] blocks of evaluation


class Family:
    """What both families share: naive, weight-matched and activation-matched alignment of B onto A."""

    names: tuple[str, ...] = ()
    alignments: tuple[str, ...] = ("naive", "weight", "activation")

    def align(self, method: str, a: Weights, b: Weights, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """B moved onto A by ``method``: naive (as is), weight or activation matching (on inputs x [n, d])."""
        if method == "naive":
            return dict(b)
        if method == "weight":
            return self.permute(b, match_permutation(self.weight_similarity(a, b)))
        if method == "activation":
            za, zb = self.encode(_one(a), x)[0], self.encode(_one(b), x)[0]
            return self.permute(b, match_permutation(za.T @ zb / x.shape[0]))
        raise ValueError(f"alignment must be one of {self.alignments}, got {method!r}")


class OneHiddenLayer(Family):
    """out = W2 act(W1 x + b1) (monosemanticity study): W1 [k, d], b1 [k], W2 [out, k].

    Its symmetry is the permutation of the k hidden units (W1 rows, b1 entries, W2 columns together).
    """

    names = ("W1", "b1", "W2")

    def __init__(self, nonlinearity: str) -> None:
        self.nonlinearity = nonlinearity
        self.act = activation(nonlinearity)

    def encode(self, w: Weights, x: torch.Tensor) -> torch.Tensor:
        return self.act(torch.einsum("ikd,nd->ink", w["W1"], x) + w["b1"][:, None, :])

    def decode(self, w: Weights, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ink,iok->ino", z, w["W2"])

    def permute(self, w: Weights, perm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"W1": w["W1"][perm], "b1": w["b1"][perm], "W2": w["W2"][:, perm]}

    def weight_similarity(self, a: Weights, b: Weights) -> torch.Tensor:
        """C[i, j] = <W1_A[i], W1_B[j]> + b1_A[i] b1_B[j] + <W2_A[:, i], W2_B[:, j]>."""
        return a["W1"] @ b["W1"].T + torch.outer(a["b1"], b["b1"]) + a["W2"].T @ b["W2"]

    def mono(self, w: Weights, P: torch.Tensor) -> torch.Tensor:
        """#monosemantic neurons / #features per instance (the monosemanticity study's metric)."""
        sfa = single_feature_activations(w["W1"], w["b1"], P, self.nonlinearity)
        return mono_fractions(sfa)["mono_fraction_features"]


class TwoHiddenLayers(OneHiddenLayer):
    """out = W2 act(Wh act(W1 x + b1) + bh) (monosemanticity with hidden_layers = 2): W1 [k, d], b1 [k], Wh [k, k],
    bh [k], W2 [out, k]. encode gives the second hidden layer (the output layer's input).

    Its symmetry is a permutation of each hidden layer: P1 moves W1 rows, b1 entries and Wh columns; P2 moves Wh rows,
    bh entries and W2 columns. Weight matching is git re-basin's coordinate descent: each layer's permutation solved
    as an assignment given the other's, until neither changes. Activation matching pairs each layer's units by the
    correlation of their activations (a layer's activations do not depend on the other layer's order).
    """

    names = ("W1", "b1", "Wh", "bh", "W2")
    MAX_SWEEPS = 100

    def encode(self, w: Weights, x: torch.Tensor) -> torch.Tensor:
        return self.act(torch.einsum("ijk,ink->inj", w["Wh"], self.first(w, x)) + w["bh"][:, None, :])

    def first(self, w: Weights, x: torch.Tensor) -> torch.Tensor:
        """The first hidden layer act(W1 x + b1), [I, n, k]."""
        return self.act(torch.einsum("ikd,nd->ink", w["W1"], x) + w["b1"][:, None, :])

    def permute(self, w: Weights, perm: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        p1, p2 = perm
        return {"W1": w["W1"][p1], "b1": w["b1"][p1], "Wh": w["Wh"][p2][:, p1], "bh": w["bh"][p2], "W2": w["W2"][:, p2]}

    def align(self, method: str, a: Weights, b: Weights, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if method == "naive":
            return dict(b)
        if method == "weight":
            return self.permute(b, self.weight_matching(a, b))
        if method == "activation":
            one_a, one_b = _one(a), _one(b)
            p1 = match_permutation(self.first(one_a, x)[0].T @ self.first(one_b, x)[0] / x.shape[0])
            p2 = match_permutation(self.encode(one_a, x)[0].T @ self.encode(one_b, x)[0] / x.shape[0])
            return self.permute(b, (p1, p2))
        raise ValueError(f"alignment must be one of {self.alignments}, got {method!r}")

    def weight_matching(self, a: Weights, b: Weights) -> tuple[torch.Tensor, torch.Tensor]:
        """(P1, P2) maximising the summed inner products of A's and permuted B's weights, layer by layer."""
        k = a["W1"].shape[0]
        p1, p2 = torch.arange(k), torch.arange(k)
        for _ in range(self.MAX_SWEEPS):
            wh_b = b["Wh"][p2]  # B's second layer with its rows in A's order; columns still B's first-layer units
            new1 = match_permutation(a["W1"] @ b["W1"].T + torch.outer(a["b1"], b["b1"]) + a["Wh"].T @ wh_b)
            new2 = match_permutation(a["Wh"] @ b["Wh"][:, new1].T + torch.outer(a["bh"], b["bh"]) + a["W2"].T @ b["W2"])
            if torch.equal(new1, p1) and torch.equal(new2, p2):
                break
            p1, p2 = new1, new2
        return p1, p2


class TiedReLU(Family):
    """x' = ReLU(W^T W x + b) (double-descent study): W [m, N], b [N].

    W^T W is unchanged by W -> O W for every orthogonal O [m, m], so the symmetry group of the hidden space is O(m),
    not only the m! permutations: ``orthogonal`` aligns B by the Procrustes rotation; ``weight`` and ``activation``
    are the permutation-only matchings (git re-basin) for comparison.
    """

    names = ("W", "b")
    alignments = ("naive", "weight", "activation", "orthogonal")

    def encode(self, w: Weights, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imn,tn->itm", w["W"], x)

    def decode(self, w: Weights, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.einsum("itm,imn->itn", z, w["W"]) + w["b"][:, None, :])

    def permute(self, w: Weights, perm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"W": w["W"][perm], "b": w["b"]}

    def weight_similarity(self, a: Weights, b: Weights) -> torch.Tensor:
        """C[i, j] = 2 <W_A[i], W_B[j]>: W and W^T each contribute the same term."""
        return 2 * a["W"] @ b["W"].T

    def align(self, method: str, a: Weights, b: Weights, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """As :meth:`Family.align`, plus ``orthogonal``: B's W rotated by the Procrustes O = argmax <W_A, O W_B>."""
        if method == "orthogonal":
            return {"W": procrustes(a["W"], b["W"]) @ b["W"], "b": b["b"]}
        return super().align(method, a, b, x)

    def mono(self, w: Weights, P: torch.Tensor | None) -> torch.Tensor:
        return torch.full((w["W"].shape[0],), float("nan"))


def _one(w: Weights) -> dict[str, torch.Tensor]:
    return {n: t[None] for n, t in w.items()}


def family_of(source_study: str, params: Mapping) -> OneHiddenLayer | TwoHiddenLayers | TiedReLU:
    if source_study == "monosemanticity":
        return (TwoHiddenLayers if params["hidden_layers"] == 2 else OneHiddenLayer)(params["nonlinearity"])
    if source_study == "double_descent":
        return TiedReLU()
    raise ValueError(f"source_study must be monosemanticity or double_descent, got {source_study!r}")


def evaluate(family, w: Weights, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per instance: loss = mean_samples sum_outputs (out - y)^2 and error = loss / mean_samples sum_outputs y^2."""
    n_inst, total = next(iter(w.values())).shape[0], torch.zeros(next(iter(w.values())).shape[0])
    chunk = max(1, CHUNK_ELEMENTS // (n_inst * y.shape[1]))
    for start in range(0, x.shape[0], chunk):
        out = family.decode(w, family.encode(w, x[start:start + chunk]))
        total = total + (out - y[start:start + chunk]).pow(2).sum(dim=(1, 2))
    loss = total / x.shape[0]
    return loss, loss / y.pow(2).sum(1).mean().clamp_min(1e-30)
