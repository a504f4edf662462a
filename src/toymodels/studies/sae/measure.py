"""Per-cell tables of the SAE study (columns documented in docs/studies/sae.md)."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from toymodels.studies.sae import THRESHOLDS, threshold_column
from toymodels.studies.sae.instances import dict_size, instance_specs
from toymodels.studies.sae.metrics import mmcs, reconstruction_stats, steps_to_threshold
from toymodels.studies.sae.model import LOG_PREFIX, init_seeds, label_instances


def measure_cell(params: Mapping[str, Any], seeds: list[int], data: Mapping[str, torch.Tensor],
            model: Mapping[str, torch.Tensor], checkpoints: Mapping[int, Mapping[str, torch.Tensor]]) -> dict[str, pd.DataFrame]:
    """``instances`` (one row per instance: recovery and final health metrics), ``trace`` (MMCS every
    ``trace_every`` steps, as logged during training) and ``atoms`` (one row per instance and final decoder atom:
    its direction and whether it fired on the evaluation set, for comparing dictionaries across cells)."""
    specs = instance_specs(params)
    steps = model[f"{LOG_PREFIX}trace_steps"].tolist()
    trace = model[f"{LOG_PREFIX}trace_mmcs"]
    with torch.no_grad():
        final = reconstruction_stats(model["W_enc"], model["b_enc"], model["W_dec"], data["eval_x"])
        final_mmcs = mmcs(data["features"], model["W_dec"])
    instances = pd.DataFrame({
        "instance": range(len(specs)),
        "init_seed": init_seeds(params, specs),
        "dict_size": dict_size(params),
        "mmcs_initial": trace[:, 0].numpy(),
        "mmcs_final": final_mmcs.numpy(),
        **{threshold_column(t): pd.array([steps_to_threshold(steps, row.numpy(), t) for row in trace], dtype="Int64")
           for t in THRESHOLDS},
        "l0_final": final["l0"].numpy(),
        "fve_final": final["fve"].numpy(),
        "dead_fraction_final": final["dead_fraction"].numpy(),
        "mse_final": final["mse"].numpy(),
        "resampled": model[f"{LOG_PREFIX}resampled"].numpy(),
        "source_mono_fraction": float(data["source_mono_fraction"]) if "source_mono_fraction" in data else float("nan"),
    })
    trace_table = pd.DataFrame({
        "instance": torch.arange(len(specs)).repeat_interleave(len(steps)).numpy(),
        "step": steps * len(specs),
        "mmcs": trace.reshape(-1).numpy(),
    })
    n_inst, n_atoms, _ = model["W_dec"].shape
    atoms = pd.DataFrame({
        "instance": torch.arange(n_inst).repeat_interleave(n_atoms).numpy(),
        "atom": list(range(n_atoms)) * n_inst,
        "fired": final["fired"].reshape(-1).numpy(),
        "direction": list(model["W_dec"].reshape(n_inst * n_atoms, -1).float().numpy()),
    })
    return {"instances": label_instances(instances, specs), "trace": label_instances(trace_table, specs),
            "atoms": label_instances(atoms, specs)}
