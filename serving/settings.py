"""Settings of the web service (``RECSYS_SERVING_*``), built once and injected."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SCOPES = ("recommendations:read", "customers:read", "segments:read", "offers:read", "offers:write")


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_SERVING_", env_nested_delimiter="__", extra="ignore")

    store_url: str | None = Field(default=None, description="redis://... or sqlite:///file; default embedded")
    store_prefix: str = Field(default="recsys", description="Key prefix of the snapshots")
    default_k: int = Field(default=10, ge=1, description="k when a request gives none")
    max_k: int = Field(default=100, ge=1, description="Largest k a request may ask for")
    snapshot_refresh_seconds: float = Field(
        default=1.0, ge=0, description="How often a worker re-reads which snapshot is current"
    )
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description='API key -> scopes, e.g. {"k1": ["recommendations:read"]}; empty switches auth off',
    )


@lru_cache
def get_settings() -> ServingSettings:
    return ServingSettings()
