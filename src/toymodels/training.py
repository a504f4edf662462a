"""The one batched-instance training loop shared by every study.

Parameters carry a leading instance axis (one independent model per seed). The study supplies a closure
``loss_fn(step) -> per-instance losses`` (shape ``[n_instances]``); the loop sums them (so instances get
independent gradients), applies the optimiser and schedule, logs history at log-spaced steps, keeps
log-spaced checkpoints, guards against NaN/inf, and can resume from a periodically written state file, which also
holds the state hooks declare (:class:`Stateful`). :class:`Stages` resumes runs made of several ``train`` calls.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import pandas as pd
import torch
from tqdm import tqdm

from toymodels.artifacts import ArtifactError, load_tensors, save_tensors
from toymodels.grid import canonical_json, derive_seed
from toymodels.optimizers import InstanceOptimizer, make_optimizer
from toymodels.schedules import learning_rate, log_spaced_steps

LossFn = Callable[[int], "torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]"]
StepHook = Callable[[int], None]
RecordFn = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class NonFiniteLossError(FloatingPointError):
    """Raised when an instance's loss becomes NaN or inf; names the step and the seeds."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    schedule: str = "warmup_cosine"
    warmup_steps: int = 0
    restart_period: int = 1024
    betas: tuple[float, float] = (0.9, 0.999)
    no_decay: tuple[str, ...] = ()
    history_points: int = 60
    checkpoint_points: int = 20
    progress: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **overrides: Any) -> "TrainConfig":
        """Build from a cell's hyperparameters (keys: steps, lr, weight_decay, optimizer, schedule, warmup_fraction...)."""
        steps = int(params["steps"])
        fields = dict(
            steps=steps,
            lr=float(params["lr"]),
            weight_decay=float(params.get("weight_decay", 0.0)),
            optimizer=params.get("optimizer", "adamw"),
            schedule=params.get("schedule", "warmup_cosine"),
            warmup_steps=int(round(float(params.get("warmup_fraction", 0.0)) * steps)),
            restart_period=int(params.get("restart_period", 1024)),
            history_points=int(params.get("history_points", 60)),
            checkpoint_points=int(params.get("checkpoint_points", 20)),
        )
        fields.update(overrides)
        return cls(**fields)


@dataclass
class TrainResult:
    params: dict[str, torch.Tensor]
    history: pd.DataFrame
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        """Checkpoints flattened for safetensors: ``step=<s>/<name>``."""
        return {f"step={step}/{name}": t for step, tensors in self.checkpoints.items() for name, t in tensors.items()}


def unflatten_checkpoints(tensors: Mapping[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    """Inverse of :meth:`TrainResult.checkpoint_tensors`, sorted by step."""
    out: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        step, name = key.split("/", 1)
        out.setdefault(int(step.removeprefix("step=")), {})[name] = tensor
    return dict(sorted(out.items()))


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for the batch of one step: batches depend only on (seed, step), so resumed runs match."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, step))
    return generator


def instance_norms(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """L2 norm of every parameter, per instance."""
    return {f"{name}_norm": p.detach().flatten(1).norm(dim=1) for name, p in params.items()}


def _check_finite(losses: torch.Tensor, step: int, seeds: list[int]) -> None:
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        which = [(i, seeds[i]) for i in torch.nonzero(bad).flatten().tolist()]
        raise NonFiniteLossError(
            f"non-finite loss at step {step} for instance(s) {[i for i, _ in which]} "
            f"(seed {[s for _, s in which]}); lower the learning rate or check the data"
        )


class Stateful(Protocol):
    """State a hook keeps across steps, exposed the torch way so that the loop's snapshot holds it: ``state_dict()``
    returns tensors and JSON values by name, ``load_state_dict(state)`` restores them (tensors arrive on the CPU)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class TensorState:
    """The :class:`Stateful` of named tensors a hook updates in place (a trace, masks, counters): saving reads the
    mapping's current tensors, loading copies the saved values into them."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def state_dict(self) -> dict[str, Any]:
        return dict(self.tensors)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for name, tensor in self.tensors.items():
                tensor.copy_(state[name])


def _encode(params: Mapping[str, torch.Tensor], history: pd.DataFrame, checkpoints: Mapping[int, Mapping[str, torch.Tensor]],
            state: Mapping[str, Stateful]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a snapshot or a finished stage: ``param/``, ``ckpt/``, ``history/`` and ``state/<hook>/``."""
    tensors = {f"param/{n}": p for n, p in params.items()}
    tensors.update({f"ckpt/step={s}/{n}": t for s, ts in checkpoints.items() for n, t in ts.items()})
    tensors.update({f"history/{c}": torch.as_tensor(history[c].to_numpy(copy=True)) for c in history.columns})
    values: dict[str, dict[str, Any]] = {}
    for hook, stateful in state.items():
        for key, value in stateful.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{hook}/{key}"] = value
            else:
                values.setdefault(hook, {})[key] = value
    return tensors, {"history_columns": list(history.columns), "state": values}


def _decode(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], state: Mapping[str, Stateful],
            device: torch.device | str) -> TrainResult:
    """Inverse of :func:`_encode`: restores every hook's state and returns parameters, history and checkpoints on ``device``."""
    for hook, stateful in state.items():
        prefix = f"state/{hook}/"
        stateful.load_state_dict({**meta["state"].get(hook, {}),
                                  **{k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}})
    history = pd.DataFrame({c: tensors[f"history/{c}"].numpy() for c in meta["history_columns"]}, columns=meta["history_columns"])
    checkpoints = unflatten_checkpoints({k.removeprefix("ckpt/"): v.to(device) for k, v in tensors.items() if k.startswith("ckpt/")})
    params = {k.removeprefix("param/"): v.to(device) for k, v in tensors.items() if k.startswith("param/")}
    return TrainResult(params, history, checkpoints)


def _read(path: Path | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """A snapshot's tensors and metadata, or None when there is none or it is unreadable (then it is ignored)."""
    if path is None or not path.exists():
        return None
    try:
        return load_tensors(path)
    except ArtifactError as error:
        print(f"toymodels: ignoring unreadable resume state: {error}", file=sys.stderr)
        return None


class _ResumeState:
    """Periodic snapshots of a run (parameters, optimiser moments, history, checkpoints, hook state) in safetensors."""

    def __init__(self, path: Path | None, fingerprint: str, every_s: float, state: Mapping[str, Stateful]) -> None:
        self.path, self.fingerprint, self.every_s, self.state = path, fingerprint, every_s, state
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self.last >= self.every_s

    def save(self, step: int, params, optimizer, rows: list[dict], checkpoints) -> None:
        tensors, meta = _encode(params, pd.DataFrame(rows), checkpoints, self.state)
        names = {id(p): n for n, p in params.items()}
        for p, state in optimizer.state.items():
            for key, value in state.items():
                tensors[f"optim/{names[id(p)]}/{key}"] = torch.as_tensor(value)
        save_tensors(self.path, tensors, {"fingerprint": self.fingerprint, "step": step, **meta})
        self.last = time.monotonic()

    def load(self, params, optimizer) -> tuple[int, list[dict], dict]:
        snapshot = _read(self.path)
        if snapshot is None:
            return 0, [], {}
        tensors, meta = snapshot
        if meta.get("fingerprint") != self.fingerprint:
            print(f"toymodels: {self.path} belongs to other settings; starting afresh", file=sys.stderr)
            return 0, [], {}
        saved = _decode(tensors, meta, self.state, next(iter(params.values())).device)
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved.params[name])
        by_name = {n: p for n, p in params.items()}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, name, slot = key.split("/", 2)
                p = by_name[name]
                optimizer.state[p][slot] = value.to(p.device) if value.ndim else value
        step = int(meta["step"])
        print(f"toymodels: resumed from {self.path} at step {step}", file=sys.stderr)
        return step, saved.history.to_dict("records"), saved.checkpoints

    def clear(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def snapshot_path(directory: str | Path, key: str) -> Path:
    """The resume file of a run in ``directory`` made by code ``key`` (``provenance.source_key``),
    ``resume-<key>.safetensors``. Snapshots that other code left there (and their stage files) are removed: resuming
    them would mix two versions of the code in one run."""
    directory = Path(directory)
    for stale in directory.glob("resume-*.safetensors"):
        if not stale.name.startswith(f"resume-{key}."):
            print(f"toymodels: removing {stale}, a snapshot of other code", file=sys.stderr)
            stale.unlink()
    return directory / f"resume-{key}.safetensors"


class Stages:
    """A run made of several :func:`train` calls (lottery rounds; connectivity's stitch, hop and settle) that resumes
    as one. Stage ``name`` keeps its file beside the resume path, ``<stem>.<name>.safetensors``: the loop's snapshot
    while it trains, its result (and the state given with it) once finished. A rerun reads finished stages back and
    resumes the unfinished one from its snapshot; :meth:`clear` removes the files when the whole run is done.
    ``fingerprint`` is what the run depends on (files of other settings are ignored); the stages' own :func:`train`
    calls should name it too."""

    def __init__(self, resume_path: str | Path | None, fingerprint: Mapping[str, Any], device: torch.device | str = "cpu") -> None:
        self.path = Path(resume_path) if resume_path else None
        self.fingerprint, self.device = dict(fingerprint), device

    def run(self, name: str, stage: Callable[..., TrainResult], state: Mapping[str, Stateful] | None = None) -> TrainResult:
        """``stage(resume_path=...)``'s result, or the one a previous run saved; ``state`` (the stage's hooks) is
        saved with it and restored when it is read back."""
        if self.path is None:
            return stage(resume_path=None)
        path = self.path.with_name(f"{self.path.stem}.{name}{self.path.suffix}")
        fingerprint = canonical_json([self.fingerprint, name])
        finished = _read(path)
        if finished is not None and finished[1].get("fingerprint") == fingerprint:
            print(f"toymodels: stage {name} read back from {path}", file=sys.stderr)
            return _decode(*finished, state or {}, self.device)
        result = stage(resume_path=path)
        tensors, meta = _encode(result.params, result.history, result.checkpoints, state or {})
        save_tensors(path, tensors, {"fingerprint": fingerprint, **meta})
        return result

    def clear(self) -> None:
        if self.path is not None:
            for path in self.path.parent.glob(f"{self.path.stem}.*{self.path.suffix}"):
                path.unlink()


def train(params: dict[str, torch.Tensor], loss_fn: LossFn, config: TrainConfig, seeds: list[int], *,
          after_step: StepHook | None = None, record: RecordFn | None = None,
          optimizer_ready: Callable[[InstanceOptimizer], None] | None = None, state: Mapping[str, Stateful] | None = None,
          resume_path: str | Path | None = None, resume_every_s: float | None = None,
          fingerprint: Mapping[str, Any] | None = None, description: str = "train") -> TrainResult:
    """Train every instance of ``params`` (leaf tensors with a leading instance axis) in place.

    ``loss_fn(step)`` returns per-instance losses for the parameters after ``step`` updates, or
    ``(losses, grads)`` when the study derives its gradients by hand (then no autograd graph is built).
    ``after_step(step)`` runs after each update (bias decay, unit-norm projection, pruning masks...).
    ``record(params)`` adds per-instance quantities to the history at log-spaced steps.
    With ``resume_path``, a snapshot is written every ``resume_every_s`` seconds (default: the environment
    variable ``TOYMODELS_RESUME_EVERY_S``, else 60) and a rerun continues from it with identical results.
    ``optimizer_ready(optimizer)`` is called once, after the optimiser is built (and resumed), so hooks can
    reach its state (e.g. to reset the moments of re-initialised rows).
    ``state`` names the hooks' own state (:class:`Stateful`: a trace, masks, dead-unit counters): it is saved in every
    snapshot under ``state/<name>/`` (JSON values in the metadata) and restored on resume, before the first step.
    History columns: ``step``, ``seed`` (instance index), ``loss``, ``scheduled_lr``, ``<param>_norm`` and recorded values.
    """
    # Flush denormals to zero: the optimiser moments of dead units decay into the denormal range, where every x86 op
    # on them is ~10x slower (the monosemanticity step took 12 ms instead of 6 ms late in training); a 6,000-step cell
    # ends with the same losses.
    torch.set_flush_denormal(True)
    for tensor in params.values():
        tensor.requires_grad_(True)
    optimizer = make_optimizer(config.optimizer, params, config.lr, config.weight_decay, config.no_decay, config.betas)
    history_steps = set(log_spaced_steps(config.steps, config.history_points))
    checkpoint_steps = set(log_spaced_steps(config.steps, config.checkpoint_points))
    state = state or {}
    resume = _ResumeState(Path(resume_path) if resume_path else None,
                          canonical_json({"fingerprint": fingerprint, "seeds": seeds, "config": config.__dict__, "state": sorted(state)}),
                          resume_every_s if resume_every_s is not None else float(os.environ.get("TOYMODELS_RESUME_EVERY_S", 60)),
                          state)
    start, rows, checkpoints = resume.load(params, optimizer)
    if optimizer_ready is not None:
        optimizer_ready(optimizer)
    bar = tqdm(total=config.steps, initial=start, desc=description, file=sys.stderr, mininterval=10.0,
               disable=not config.progress)
    for step in range(start, config.steps + 1):
        final = step == config.steps
        lr = learning_rate(min(step, config.steps - 1), config.steps, config.lr, config.schedule,
                           config.warmup_steps, config.restart_period)
        with torch.set_grad_enabled(not final):
            output = loss_fn(step)
        losses, grads = output if isinstance(output, tuple) else (output, None)
        losses = losses.detach() if grads is not None else losses
        _check_finite(losses.detach(), step, seeds)
        if step in history_steps:
            extra = {**instance_norms(params), **(record(params) if record else {})}
            for index in range(len(seeds)):
                row = {"step": step, "seed": index, "loss": float(losses[index].detach()), "scheduled_lr": lr}
                row.update({key: float(value[index]) for key, value in extra.items()})
                rows.append(row)
        if step in checkpoint_steps:
            checkpoints[step] = {n: p.detach().clone() for n, p in params.items()}
        if final:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr
        if grads is None:
            optimizer.zero_grad()
            losses.sum().backward()
        else:
            for name, p in params.items():
                p.grad = grads[name]
        optimizer.step()
        if after_step is not None:
            with torch.no_grad():
                after_step(step)
        bar.update(1)
        if resume.due():
            resume.save(step + 1, params, optimizer, rows, checkpoints)
    bar.close()
    resume.clear()
    final_params = {n: p.detach() for n, p in params.items()}
    return TrainResult(final_params, pd.DataFrame(rows), checkpoints)
