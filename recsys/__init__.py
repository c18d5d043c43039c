"""Pure library: data, models and metrics. Imports no service SDK (FastAPI, Redis, MLflow)."""

__version__ = "0.1.0"
