"""Adapter: make one study dataset and write it as safetensors.

A study that reads other studies' artifacts defines ``upstream``; its inputs are those artifacts, by the names
``upstream`` gave them (beside ``code``, the stage's source files), and it gets their paths: ``make_dataset(values,
inputs)``. The file's metadata records the code version, with those of the artifacts it was made from.
"""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from toymodels.artifacts import save_tensors
from toymodels.logs import log_to
from toymodels.provenance import stage_metadata
from toymodels.studies import load_study

with log_to(snakemake.log[0]):
    study = load_study(snakemake.params.study)
    values = dict(snakemake.params["values"])
    upstream = {name: list(snakemake.input[name]) for name in snakemake.input.keys() if name != "code"}
    tensors = study.make_dataset(values, upstream) if hasattr(study, "upstream") else study.make_dataset(values)
    code = stage_metadata(snakemake.params.study, "dataset", snakemake.input.code, [p for paths in upstream.values() for p in paths])
    save_tensors(snakemake.output[0], tensors, {"study": snakemake.params.study, "values": values, **code})
