# Two set-up entry points; each creates .venv with pip and installs what it needs.
#   make figures   every figure of config/config.yaml (CPU-sized) and the claims scorecard into results/
#   make test      the linters, then the test suite (unit tests, dry runs of every config, a quick end-to-end run)
#   make lint      ruff, snakefmt --check and snakemake --lint alone
#   make scorecard the claims scorecard of CONFIG's run (results/claims.md) copied into README.md
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
CONFIG ?= config/config.yaml
BIN = $(VENV)/bin

.PHONY: figures test lint report scorecard clean-results

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

figures: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) figures --configfile $(CONFIG)

test: lint
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakefmt --check workflow Snakefile
	$(BIN)/snakemake --lint

report: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --report report.html --report-stylesheet workflow/report/style.css --configfile $(CONFIG)

scorecard: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) claims --configfile $(CONFIG)
	$(BIN)/python -m toymodels.scorecard results/claims.md README.md

clean-results:
	rm -rf results/*/ .snakemake/
