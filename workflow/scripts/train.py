"""Adapter: train every seed of one cell; write final weights, log-spaced checkpoints and the history table, each with
the code version in its metadata."""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

import time
from pathlib import Path

from toymodels.artifacts import load_tensors, save_tensors, write_table
from toymodels.devices import pick_device, set_threads
from toymodels.logs import announce, cell_summary, log_to
from toymodels.provenance import source_key, stage_metadata
from toymodels.studies import load_study
from toymodels.training import snapshot_path

start = time.monotonic()
with log_to(snakemake.log[0]):
    set_threads(snakemake.threads)
    study = load_study(snakemake.params.study)
    values, off_defaults = dict(snakemake.params["values"]), dict(snakemake.params.off_defaults)
    seeds = list(snakemake.params.seeds)
    device = pick_device(snakemake.params.device)
    print(f"training {snakemake.params.study} {off_defaults or 'defaults'} seeds={seeds} on {device}")
    data, _ = load_tensors(snakemake.input.data, device)
    code = stage_metadata(snakemake.params.study, "train", snakemake.input.code, [snakemake.input.data])
    resume_path = snapshot_path(Path(snakemake.output.model).parent, source_key(code))
    result = study.train_model(values, data, seeds, device, resume_path=resume_path)
    metadata = {"study": snakemake.params.study, "values": values, "off_defaults": off_defaults, "seeds": seeds, **code}
    write_table(snakemake.output.history, result.history, code)
    save_tensors(snakemake.output.checkpoints, result.checkpoint_tensors(), metadata)
    save_tensors(snakemake.output.model, result.params, metadata)
    announce(cell_summary(snakemake.params.study, snakemake.wildcards.cell, time.monotonic() - start, result.history))
