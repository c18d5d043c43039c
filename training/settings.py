"""Settings of the batch jobs, read from ``RECSYS_*`` environment variables once per command."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feature_store.keys import validate_name

ENV_PREFIX = "RECSYS_"
NESTED_DELIMITER = "__"


class SettingsError(ValueError):
    """``RECSYS_*`` variables that do not validate; the message names each variable on its own line."""


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore")

    store_url: str | None = Field(
        default=None, description="redis://host:port/db or sqlite:///file; default var/feature_store.sqlite"
    )
    store_prefix: str = Field(default="recsys", description="Key prefix of every snapshot in the store")
    snapshots_retained: int = Field(default=3, ge=1, description="Committed snapshots kept for rollback")
    mlflow_experiment: str = Field(default="recsys", description="MLflow experiment of training runs")
    registered_model: str = Field(default="recsys-recommender", description="MLflow registered model name")
    model_alias: str = Field(default="champion", description="Registry alias that marks the served version")
    var_dir: Path = Field(default=Path("var"), description="Local folder for the embedded stores")
    publish_top_n: int = Field(default=50, ge=1, le=500, description="Recommendations stored per customer")
    offer_catalogue: Path = Field(
        default=Path(__file__).resolve().parents[1] / "recsys" / "offers" / "example_catalogue.yaml",
        description="Offer catalogue (YAML) published with every snapshot",
    )

    @field_validator("store_prefix")
    @classmethod
    def _usable_prefix(cls, value: str) -> str:
        # checked here, so that the error names RECSYS_STORE_PREFIX rather than the store it is used with
        return validate_name("the key prefix", value)

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{(self.var_dir / 'mlflow.db').resolve()}"


@lru_cache
def get_settings() -> TrainingSettings:
    try:
        return TrainingSettings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line per invalid setting, named as the user set it: the environment variable, not the field."""
    lines = [f"{ENV_PREFIX}{NESTED_DELIMITER.join(map(str, error['loc'])).upper()}: {error['msg']} "
             f"(got {error['input']!r})" for error in exc.errors()]
    return "invalid settings:\n  " + "\n  ".join(lines)
