"""toymodels: pure, tested functions behind the toy-model interpretability pipeline."""

__version__ = "0.1.0"
