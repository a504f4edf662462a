"""Adapter: make one study dataset and write it as safetensors."""
from toymodels.artifacts import save_tensors
from toymodels.logs import log_to
from toymodels.studies import load_study

with log_to(snakemake.log[0]):
    study = load_study(snakemake.params.study)
    values = dict(snakemake.params["values"])
    save_tensors(snakemake.output[0], study.make_dataset(values), {"study": snakemake.params.study, "values": values})
