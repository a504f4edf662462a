"""Adapter: make one study dataset and write it as safetensors.

A study that reads other studies' artifacts defines ``upstream``; its inputs are those artifacts, by the names
``upstream`` gave them, and it gets their paths: ``make_dataset(values, inputs)``.
"""
from toymodels.forkserver import hand_over

hand_over(snakemake, __file__)

from toymodels.artifacts import save_tensors
from toymodels.logs import log_to
from toymodels.studies import load_study

with log_to(snakemake.log[0]):
    study = load_study(snakemake.params.study)
    values = dict(snakemake.params["values"])
    if hasattr(study, "upstream"):
        tensors = study.make_dataset(values, {name: list(snakemake.input[name]) for name in snakemake.input.keys()})
    else:
        tensors = study.make_dataset(values)
    save_tensors(snakemake.output[0], tensors, {"study": snakemake.params.study, "values": values})
