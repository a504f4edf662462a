"""Adapter: make the dataset of a study that reads other studies' artifacts (it defines ``upstream``).

Its inputs are those artifacts, by the names ``upstream`` gave them; ``make_dataset(values, inputs)`` gets the paths.
(A separate script, so that studies without ``upstream`` keep dataset.py and their datasets are not rebuilt.)
"""
from toymodels.artifacts import save_tensors
from toymodels.logs import log_to
from toymodels.studies import load_study

with log_to(snakemake.log[0]):
    study = load_study(snakemake.params.study)
    values = dict(snakemake.params["values"])
    inputs = {name: list(snakemake.input[name]) for name in snakemake.input.keys()}
    save_tensors(snakemake.output[0], study.make_dataset(values, inputs), {"study": snakemake.params.study, "values": values})
