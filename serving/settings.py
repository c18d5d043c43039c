"""Settings of the web service (``RECSYS_SERVING_*``), built once and injected."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feature_store.keys import validate_name
from feature_store.limits import default_limits_url
from recsys.records import POPULAR_LISTS
from recsys.rules import RuleSet

SCOPES = ("recommendations:read", "customers:read", "segments:read", "offers:read", "offers:write",
          "experiments:read")


ENV_PREFIX = "RECSYS_SERVING_"


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    store_url: str | None = Field(default=None, description="redis://... or sqlite:///file; default embedded")
    store_prefix: str = Field(default="recsys", description="Key prefix of the snapshots")
    default_k: int = Field(default=10, ge=1, description="k when a request gives none")
    max_k: int = Field(default=100, ge=1, description="Largest k a request may ask for")
    snapshot_refresh_seconds: float = Field(
        default=1.0, ge=0, description="How often a worker re-reads which snapshot is current"
    )
    limits_url: str | None = Field(
        default=None,
        description="Offer caps, budgets, outcome counters and decision log: redis://... or sqlite:///file; "
                    "default: the snapshot store when that is Redis, else sqlite:///var/limits.sqlite",
    )
    limits_prefix: str | None = Field(default=None, description="Key prefix of the limits store; default store_prefix")
    offer_catalogue_path: Path | None = Field(
        default=None, description="Offer catalogue YAML used only while the current snapshot carries none"
    )
    offers_seed: int | None = Field(default=None, description="Seed of Thompson sampling (tests, replays)")
    offers_outcomes_refresh_seconds: float = Field(
        default=1.0, ge=0, description="How often a worker re-reads the offer outcome counters"
    )
    offers_event_log_max: int = Field(default=1_000_000, ge=1, description="Decisions and events kept in the log")
    offers_profiles_in_memory: bool = Field(
        default=True, description="Hold the profile fields offers read (about 50 bytes a customer) in each worker, "
                                  "instead of reading a profile per decision")
    experiments_path: Path | None = Field(
        default=None, description="A/B experiment designs (YAML: experiments: {id: {arms: {control: 1, "
                                  "treatment: 1}, traffic: 1.0}}); none configured when unset"
    )
    exposure_log_max: int = Field(
        default=10_000_000, ge=1, description="Experiment exposures kept in their log, all experiments together"
    )
    fallback_chain: list[str] = Field(
        default=["popular", "trending"], description="Lists that fill short answers, in order"
    )
    placements: dict[str, dict] = Field(
        default_factory=dict,
        description='Named rule sets, e.g. {"basket": {"exclude_purchased": true, "max_per_category": 2}}',
    )
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description='API key -> scopes, e.g. {"k1": ["recommendations:read"]}; empty switches auth off',
    )

    def resolved_limits_url(self) -> str:
        return self.limits_url or default_limits_url(self.store_url)


    @model_validator(mode="after")
    def _default_k_within_max(self) -> ServingSettings:
        # else a request without k would get more items than any request may ask for
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}, RECSYS_SERVING_DEFAULT_K) is above max_k "
                             f"({self.max_k}, RECSYS_SERVING_MAX_K)")
        return self

    @field_validator("store_prefix", "limits_prefix")
    @classmethod
    def _usable_prefix(cls, value: str | None) -> str | None:
        return value if value is None else validate_name("the key prefix", value)

    @field_validator("fallback_chain")
    @classmethod
    def _known_lists(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in POPULAR_LISTS]
        if unknown:
            raise ValueError(f"fallback_chain names unknown list(s) {unknown}; published lists: {list(POPULAR_LISTS)}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _known_scopes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        # a misspelt scope would quietly grant nothing and every request with that key would be a 403
        for position, scopes in enumerate(value.values(), 1):
            unknown = sorted(set(scopes) - set(SCOPES))
            if unknown:
                # named by position: an error line must not show any part of a secret
                raise ValueError(f"api_keys: key #{position} names unknown scope(s) {unknown}; "
                                 f"scopes: {list(SCOPES)}")
        return value

    @field_validator("placements")
    @classmethod
    def _valid_placements(cls, value: dict[str, dict]) -> dict[str, dict]:
        for name, rules in value.items():
            RuleSet.from_mapping(rules, where=f"placement {name!r}")
        return value

    def placement_rules(self, name: str | None) -> RuleSet:
        if name is None:
            return RuleSet()
        if name not in self.placements:
            raise KeyError(name)
        return RuleSet.from_mapping(self.placements[name], where=f"placement {name!r}")


@lru_cache
def get_settings() -> ServingSettings:
    return ServingSettings()


def _variable(loc: tuple) -> str:
    # below api_keys the path holds the key itself, a secret: it is not shown
    parts = ("API_KEYS", "<KEY>") if loc[0] == "api_keys" and len(loc) > 1 else map(str, loc)
    return "__".join(parts).upper()


def describe(exc: ValidationError) -> str:
    """One line per invalid setting, named by its environment variable (a check across settings, which
    names them in its message, has no variable of its own)."""
    lines = [f"{ENV_PREFIX}{_variable(error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
             for error in exc.errors()]
    return "invalid serving settings:\n  " + "\n  ".join(lines)
