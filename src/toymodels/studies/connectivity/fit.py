"""The study's own (short) training: affine stitches between endpoints and along training, basin-hopping runs and
the bends of curves.

All train on fixed splits of the bundle with AdamW (no weight decay); the instance axis holds the stitched pairs, the
(direction, lambda) hopping runs and the (pair, alignment, curve) bends. Stitches and hops are full-batch at a constant
learning rate (the stitches along training take minibatches); a bend takes a minibatch and a point t ~ U[0, 1] of its
curve per update, on a cosine decay.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from toymodels.artifacts import tensors_checksum
from toymodels.grid import derive_seed
from toymodels.studies.connectivity.bundle import Bundle, Endpoint
from toymodels.studies.connectivity.families import evaluate, family_of
from toymodels.studies.connectivity.landscape import combine, curve_coefficients
from toymodels.training import Stages, TrainConfig, TrainResult, step_generator, train

# (A, B) by representative: same class twice, across classes both ways, and A stitched to itself (control).
STITCH_PAIRS = (("high1", "high2"), ("low1", "low2"), ("low1", "high1"), ("high1", "low1"), ("high1", "high1"))
# Basin hopping: A trained towards pi(B), from the low class to the high class and back.
HOP_PAIRS = (("low1", "high1"), ("high1", "low1"))
# Curves: one pair of each pair type (high-high, low-low, low-high), each with a Bezier curve and a polygonal chain.
CURVE_PAIRS = (("high1", "high2"), ("low1", "low2"), ("low1", "high1"))
TRAINED_CURVES = ("bezier", "chain")
# Stitching along training: A's checkpoints into A's final model, and into B's checkpoint of the same step.
ALONG_PAIRS = (("high1", "high2"), ("low1", "low2"))


def stitch_init(za: torch.Tensor, zb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares affine map zb ~ M za + c over the samples (za [n, kA], zb [n, kB]): M [kB, kA], c [kB]."""
    design = torch.cat([za, torch.ones(za.shape[0], 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, zb.double(), driver="gelsd").solution.float()
    return solution[:-1].T.contiguous(), solution[-1].contiguous()


def stitched_output(family, b: Mapping[str, torch.Tensor], M: torch.Tensor, c: torch.Tensor, za: torch.Tensor) -> torch.Tensor:
    """B's output layer on the mapped hidden layer of A: decode_B(M z_A + c), for one pair; za [n, kA] -> [n, out]."""
    return family.decode({n: t[None] for n, t in b.items()}, (za @ M.T + c)[None])[0]


def _config(params: Mapping[str, Any], steps: int, lr: float) -> TrainConfig:
    return TrainConfig(steps=steps, lr=lr, optimizer="adamw", schedule="constant",
                       history_points=int(params["history_points"]), checkpoint_points=2, progress=False)


def _seeds(seed: int, run: str, n: int) -> list[int]:
    return [derive_seed(seed, run, i) for i in range(n)]


def pair_split(bundle: Bundle, a: Endpoint, b: Endpoint, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return bundle.split([a.dataset, b.dataset], name)


def stitch_setup(bundle: Bundle) -> list[tuple[Endpoint, str, Endpoint, str]]:
    """(A, A's weights, B, B's weights) per STITCH_PAIRS stitch, final weights on both sides."""
    reps = bundle.representatives()
    return [(reps[a], "model", reps[b], "model") for a, b in STITCH_PAIRS]


def along_setup(bundle: Bundle) -> list[tuple[str, int, Endpoint, str, Endpoint, str]]:
    """(kind, step, A, A's weights, B, B's weights) per stitch along training: ALONG_PAIRS-major, then checkpoint
    step, then ``within`` (A's checkpoint at the step into A's final model) and ``across`` (A's checkpoint into B's
    checkpoint at the same step)."""
    if not bundle.checkpoint_steps():
        raise ValueError("stitch_training: the bundle carries no checkpoints; set bundle_checkpoints: true")
    reps = bundle.representatives()
    return [stitch for a_name, b_name in ALONG_PAIRS for step in bundle.checkpoint_steps()
            for stitch in (("within", step, reps[a_name], f"step={step}", reps[a_name], "model"),
                           ("across", step, reps[a_name], f"step={step}", reps[b_name], f"step={step}"))]


def fit_stitches(params: Mapping[str, Any], bundle: Bundle, stitches: list[tuple[Endpoint, str, Endpoint, str]],
                 run: str, steps: int, batch: int | None, seed: int, stages: Stages) -> TrainResult:
    """Train only M, c of every stitch (A's weights -> B's weights) on the pair's stitch split, from the
    least-squares map of z_A to z_B: full-batch (``batch`` None) or on ``batch`` samples per update, drawn from (seed,
    step) and shared by the stitches, at the constant ``stitch_lr``. Stitches with as many samples are one batched
    product (indexing one stitch's M out of the stacked parameter cost a full-size gradient per stitch and step).

    The stitch split is larger than the train split (``stitch_samples``): a k x k map fitted on 512 samples overfitted,
    so that the control A -> A lost 0.1 of test loss against its own model.
    """
    family = family_of(bundle.source, bundle.endpoints[0].params)
    starts, groups = [], {}  # groups: stitches of one sample count, trained as one batched product each
    for i, (a, which_a, b, which_b) in enumerate(stitches):
        x, y = pair_split(bundle, a, b, "stitch")
        wb = bundle.weights(b, which_b)
        za = family.encode({n: t[None] for n, t in bundle.weights(a, which_a).items()}, x)[0]
        zb = family.encode({n: t[None] for n, t in wb.items()}, x)[0]
        starts.append(stitch_init(za, zb))
        groups.setdefault(x.shape[0], []).append((i, za, y, wb))
    stacked = [(torch.tensor([g[0] for g in group]), torch.stack([g[1] for g in group]), torch.stack([g[2] for g in group]),
                {n: torch.stack([g[3][n] for g in group]) for n in family.names}) for group in groups.values()]
    del groups
    model = {"M": torch.stack([m for m, _ in starts]), "c": torch.stack([c for _, c in starts])}

    def loss_fn(step: int) -> torch.Tensor:
        generator = step_generator(seed, step) if batch is not None else None
        out = torch.zeros(len(stitches))
        for index, za, y, wb in stacked:
            if generator is not None:
                picked = torch.randperm(za.shape[1], generator=generator)[:batch]
                za, y = za[:, picked], y[:, picked]
            z = torch.baddbmm(model["c"][index][:, None, :], za, model["M"][index].transpose(1, 2))
            out = out.index_put((index,), (family.decode(wb, z) - y).pow(2).sum(2).mean(1))
        return out

    return stages.run(run, partial(train, model, loss_fn, _config(params, steps, float(params["stitch_lr"])),
                                   _seeds(seed, run, len(stitches)), fingerprint=stages.fingerprint,
                                   description=f"connectivity {run}"))


def aligned_pairs(bundle: Bundle, pairs: tuple[tuple[str, str], ...], methods: list[str]
                  ) -> list[tuple[Endpoint, Endpoint, str, dict]]:
    """(A, B, method, B aligned to A by method) for every pair of representatives and method, pair-major; matchings
    use the pair's train split."""
    family = family_of(bundle.source, bundle.endpoints[0].params)
    reps = bundle.representatives()
    out = []
    for a_name, b_name in pairs:
        a, b = reps[a_name], reps[b_name]
        x, _ = pair_split(bundle, a, b, "train")
        out.extend((a, b, method, family.align(method, bundle.weights(a), bundle.weights(b), x)) for method in methods)
    return out


def hop_setup(params: Mapping[str, Any], bundle: Bundle) -> list[tuple[Endpoint, Endpoint, dict, float]]:
    """(A, B, pi(theta_B) aligned to A, lambda) per hopping instance: direction-major, lambda-minor."""
    return [(a, b, target, float(lam)) for a, b, _, target in aligned_pairs(bundle, HOP_PAIRS, [params["hop_alignment"]])
            for lam in params["hop_lambdas"]]


def train_hops(params: Mapping[str, Any], bundle: Bundle, seed: int, stages: Stages) -> tuple[TrainResult, TrainResult]:
    """From A's final weights: hop_steps AdamW updates of A's task loss on its train split, each followed by the exact
    proximal step of lambda ||theta - pi(theta_B)||^2, then settle_steps without the pull, so each run settles into
    whichever basin it was pushed into.

    The pull is a proximal step, theta <- (theta + 2 lr lambda pi(theta_B)) / (1 + 2 lr lambda), not a loss term:
    AdamW normalises every gradient, so a pull inside the loss moved each weight by at most ~lr per step whatever
    lambda was, and lambda stopped mattering. The proximal step closes the fraction 2 lr lambda / (1 + 2 lr lambda)
    of the gap per update.
    """
    family = family_of(bundle.source, bundle.endpoints[0].params)
    runs = hop_setup(params, bundle)
    names = family.names
    model = {n: torch.stack([bundle.weights(a)[n] for a, _, _, _ in runs]) for n in names}
    target = {n: torch.stack([t[n] for _, _, t, _ in runs]) for n in names}
    lam = torch.tensor([r[3] for r in runs])
    data = [bundle.split([a.dataset], "train") for a, _, _, _ in runs]
    groups = {}
    for i, (a, _, _, _) in enumerate(runs):
        groups.setdefault(a.dataset, []).append(i)

    def task_loss(step: int) -> torch.Tensor:
        out = torch.zeros(len(runs))
        for dataset, rows in groups.items():
            x, y = data[rows[0]]
            loss, _ = evaluate(family, {n: model[n][rows] for n in names}, x, y)
            out = out.index_put((torch.tensor(rows),), loss)
        return out

    steps, lr = int(params["hop_steps"]), float(params["hop_lr"])
    closing = 2 * lr * lam

    def pull(step: int) -> None:
        with torch.no_grad():
            for n in names:
                c = closing.view(-1, *[1] * (model[n].ndim - 1))
                model[n].add_(c * target[n]).div_(1 + c)

    hop = stages.run("hop", partial(train, model, task_loss, _config(params, steps, lr), _seeds(seed, "hop", len(runs)),
                                    after_step=pull, fingerprint=stages.fingerprint, description="connectivity hop"))
    model = {n: t.clone() for n, t in hop.params.items()}
    settle = stages.run("settle", partial(train, model, task_loss, _config(params, int(params["settle_steps"]), lr),
                                          _seeds(seed, "settle", len(runs)), fingerprint=stages.fingerprint,
                                          description="connectivity settle"))
    return hop, settle


def curve_setup(params: Mapping[str, Any], bundle: Bundle) -> list[tuple[Endpoint, Endpoint, str, dict, str]]:
    """(A, B, alignment, B aligned to A, curve) per bend instance: pair-major, then naive and ``curve_alignment``,
    then TRAINED_CURVES."""
    return [(a, b, method, aligned, curve)
            for a, b, method, aligned in aligned_pairs(bundle, CURVE_PAIRS, ["naive", params["curve_alignment"]])
            for curve in TRAINED_CURVES]


def train_curves(params: Mapping[str, Any], bundle: Bundle, seed: int, stages: Stages) -> TrainResult:
    """Train the bend of every curve_setup curve from A to aligned B on the expected loss over t ~ U[0, 1] (Garipov et
    al. 2018): each update draws one t per curve and, per pair's data, a minibatch of ``curve_batch`` samples of its
    stitch split (the train split stays unseen, like the test split). The bend starts at the midpoint of A and B, where
    both curves are the straight line; the learning rate decays from ``curve_lr`` to 0 on a cosine, so the bends end
    where the minibatch noise has died down."""
    family = family_of(bundle.source, bundle.endpoints[0].params)
    runs = curve_setup(params, bundle)
    names = family.names
    ends_a = {n: torch.stack([bundle.weights(a)[n] for a, _, _, _, _ in runs]) for n in names}
    ends_b = {n: torch.stack([aligned[n] for _, _, _, aligned, _ in runs]) for n in names}
    model = {n: (ends_a[n] + ends_b[n]) / 2 for n in names}
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (a, b, _, _, _) in enumerate(runs):
        groups.setdefault(tuple(sorted({a.dataset, b.dataset})), []).append(i)
    data = {key: pair_split(bundle, runs[rows[0]][0], runs[rows[0]][1], "stitch") for key, rows in groups.items()}
    kinds, batch = [curve for *_, curve in runs], int(params["curve_batch"])

    def loss_fn(step: int) -> torch.Tensor:
        generator = step_generator(seed, step)
        t = torch.rand(len(runs), generator=generator)
        coefficients = torch.stack([torch.cat(curve_coefficients(kind, t[i:i + 1])) for i, kind in enumerate(kinds)])
        out = torch.zeros(len(runs))
        for key, rows in groups.items():
            x, y = data[key]
            picked = torch.randperm(x.shape[0], generator=generator)[:batch]
            index = torch.tensor(rows)
            point = combine(coefficients[index], *({n: w[n][index] for n in names} for w in (ends_a, model, ends_b)))
            out = out.index_put((index,), evaluate(family, point, x[picked], y[picked])[0])
        return out

    config = TrainConfig(steps=int(params["curve_steps"]), lr=float(params["curve_lr"]), optimizer="adamw",
                         schedule="warmup_cosine", history_points=int(params["history_points"]), checkpoint_points=2,
                         progress=False)
    return stages.run("curve", partial(train, model, loss_fn, config, _seeds(seed, "curve", len(runs)),
                                       fingerprint=stages.fingerprint, description="connectivity curves"))


FINETUNE_START = "low1"  # connectivity-based fine-tuning starts from the lowest-ranked (most polysemantic) model


def train_finetune(params: Mapping[str, Any], bundle: Bundle, seed: int, stages: Stages) -> TrainResult:
    """From the lowest-ranked model theta_0 (FINETUNE_START), ``finetune_steps`` AdamW updates per beta of
    ``finetune_betas`` of the objective L(theta) - beta min(L((theta + theta_0) / 2), 2 L(theta_0)): the task loss
    minus a reward for a high loss at the midpoint of the straight path back to the start, all on one minibatch of
    ``finetune_batch`` samples of the stitch split per update, at the constant ``finetune_lr``.

    This is the connectivity-based fine-tuning of Lubana et al. 2023 (their barrier term is minus the loss at the
    midpoint) in the form seed 000 proposes: optimise for a parametrisation linearly disconnected from the previous one
    at low task loss; beta = 0 is plain fine-tuning, the control. Near a minimum with Hessian H, L(theta_0 + delta)
    grows as delta' H delta / 2 and the midpoint loss as delta' H delta / 8, so the start stops being a minimum of the
    objective only for beta > 4. The reward is capped at twice the start's loss (a midpoint barrier of about the start's
    loss), so the objective stays bounded below. Checkpoints at ``history_points`` log-spaced steps follow the runs.
    """
    family = family_of(bundle.source, bundle.endpoints[0].params)
    start = bundle.representatives()[FINETUNE_START]
    w0 = {n: t[None] for n, t in bundle.weights(start).items()}
    betas = torch.tensor([float(b) for b in params["finetune_betas"]])
    model = {n: w0[n].expand(len(betas), *w0[n].shape[1:]).clone() for n in family.names}
    x, y = bundle.split([start.dataset], "stitch")
    batch = int(params["finetune_batch"])

    def loss_fn(step: int) -> torch.Tensor:
        picked = torch.randperm(x.shape[0], generator=step_generator(seed, step))[:batch]
        xb, yb = x[picked], y[picked]
        loss, _ = evaluate(family, model, xb, yb)
        with torch.no_grad():
            base = evaluate(family, w0, xb, yb)[0]
        middle, _ = evaluate(family, {n: (model[n] + w0[n]) / 2 for n in family.names}, xb, yb)
        return loss - betas * torch.minimum(middle, 2 * base)

    config = TrainConfig(steps=int(params["finetune_steps"]), lr=float(params["finetune_lr"]), optimizer="adamw",
                         schedule="constant", history_points=int(params["history_points"]),
                         checkpoint_points=int(params["history_points"]), progress=False)
    return stages.run("finetune", partial(train, model, loss_fn, config, _seeds(seed, "finetune", len(betas)),
                                          fingerprint=stages.fingerprint, description="connectivity fine-tuning"))


def train_model(params: Mapping[str, Any], data: Mapping[str, torch.Tensor], seeds: list[int],
                device: torch.device | str = "cpu", resume_path: str | Path | None = None) -> TrainResult:
    """The stitches, hops, curve bends and fine-tuning runs of the cell's ``analyses`` as one result: weights
    ``stitch/M``, ``stitch/c``, ``along/M``, ``along/c`` (in along_setup order), ``hop/<name>`` (after settling),
    ``curve/<name>`` (the bends, in curve_setup order), ``finetune/<name>`` (per beta); history rows carry ``run`` =
    stitch | along | hop | settle | curve | finetune (settle steps continue the hop's count); checkpoints
    ``<prefix>/<name>`` by step. An analysis not asked for trains nothing (a cell of measured-only analyses has empty
    weights and history). Short, CPU-sized runs, each a stage of one resumable run
    (:class:`~toymodels.training.Stages`) whose fingerprint holds the bundle's checksum too, as the bundle is not
    fixed by the cell's parameters."""
    bundle = Bundle(data, params)
    stages = Stages(resume_path, {"params": params, "seeds": seeds, "bundle": tensors_checksum(data)}, device)
    wanted, hop_steps = set(params["analyses"]), int(params["hop_steps"])
    runs: list[tuple[str, str, TrainResult, int]] = []  # (weights prefix, history run, result, step offset)
    if "stitching" in wanted:
        runs.append(("stitch", "stitch", fit_stitches(params, bundle, stitch_setup(bundle), "stitch",
                                                      int(params["stitch_steps"]), None, seeds[0], stages), 0))
    if "stitch_training" in wanted:
        stitches = [(a, wa, b, wb) for _, _, a, wa, b, wb in along_setup(bundle)]
        runs.append(("along", "along", fit_stitches(params, bundle, stitches, "along", int(params["along_steps"]),
                                                    int(params["along_batch"]), seeds[0], stages), 0))
    if "hopping" in wanted:
        hop, settle = train_hops(params, bundle, seeds[0], stages)
        runs += [("hop", "hop", hop, 0), ("hop", "settle", settle, hop_steps)]
    if "curves" in wanted:
        runs.append(("curve", "curve", train_curves(params, bundle, seeds[0], stages), 0))
    if "finetune" in wanted:
        runs.append(("finetune", "finetune", train_finetune(params, bundle, seeds[0], stages), 0))
    stages.clear()
    histories = [result.history.assign(run=run, step=result.history["step"] + offset) for _, run, result, offset in runs]
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    weights: dict[str, torch.Tensor] = {}
    for prefix, run, result, offset in runs:
        for step, tensors in result.checkpoints.items():
            checkpoints.setdefault(step + offset, {}).update({f"{prefix}/{n}": t for n, t in tensors.items()})
        if run != "hop":  # the hop's final weights are the settle run's start; the settled ones are kept
            weights.update({f"{prefix}/{n}": t for n, t in result.params.items()})
    return TrainResult(weights, history, checkpoints)
