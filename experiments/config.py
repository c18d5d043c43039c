"""The YAML file behind ``recsys experiment run``: data, protocol, settings, models and metrics.

A config looks like this (every key but ``data.path`` and ``models`` has a default)::

    name: online-retail
    seed: 0
    data:
      path: ../../../shared/data/online_retail.parquet  # relative to this file
      format: online-retail                                # or canonical (the documented schema)
      cleaning: {non_product_items: [POST, M]}             # CleaningRules fields; omitted = defaults
    protocol:
      kind: temporal                                       # or stratified, leave_last_out
      validation_cutoff: 2011-06-09
      test_cutoff: 2011-09-09
    settings: [A, B]
    metrics: [ndcg@10, recall@10, recall@20, precision@10, map@10, coverage@10]
    selection: ndcg@10                                     # or {A: ndcg@10, B: recall@20}
    models:
      - model: item_knn
        label: item_knn_bm25
        params: {similarity: bm25, neighbours: [50, 200]}  # lists expand to a grid
      - model: als
        params: {iterations: 15}
        search:                                            # an Optuna search instead of a grid
          n_trials: 8
          space:
            factors: {type: int, low: 16, high: 128, log: true}
            regularization: {type: float, low: 0.001, high: 1.0, log: true}

Errors are :class:`ConfigError`: they name the file and the dotted path of each bad field.
"""

from __future__ import annotations

import difflib
import itertools
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsys.data import CleaningRules
from recsys.models.registry import create_model, model_params
from recsys.yaml_text import load_yaml

METRIC_NAMES = ("ndcg", "recall", "precision", "map", "coverage")
DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@20", "precision@10", "map@10", "coverage@10")
_METRIC = re.compile(r"^(?P<name>[a-z]+)@(?P<k>[1-9][0-9]*)$")


class ConfigError(ValueError):
    """A config file that cannot be run; the message names the file and each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CleaningConfig(_Strict):
    """Fields of :class:`recsys.data.CleaningRules`; anything omitted keeps its default."""

    drop_missing_customer: bool | None = None
    drop_cancellations: bool | None = None
    cancellation_prefix: str | None = None
    drop_non_positive_quantity: bool | None = None
    drop_non_positive_price: bool | None = None
    non_product_items: list[str] | None = None

    @field_validator("drop_missing_customer")
    @classmethod
    def _keep_dropping_missing_customers(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError("cannot be false: every model and split needs a customer for each row, so rows "
                             "without one must be dropped (leave the field out or set it to true)")
        return value

    def rules(self) -> CleaningRules:
        given = {key: value for key, value in self.model_dump().items() if value is not None}
        if "non_product_items" in given:
            given["non_product_items"] = frozenset(given["non_product_items"])
        return CleaningRules(**given)

    @model_validator(mode="after")
    def _check_rules(self) -> CleaningConfig:
        self.rules()
        return self


class DataConfig(_Strict):
    path: Path = Field(description="CSV/Parquet transactions file; relative paths start at the config file")
    format: Literal["canonical", "online-retail"] = "canonical"
    cleaning: CleaningConfig = CleaningConfig()
    weighting: Literal["orders", "quantity", "binary", "lines"] = "orders"


def _as_naive_utc_string(value: Any) -> Any:
    """A cut-off as an ISO string; one with a UTC offset becomes the same instant in naive UTC."""
    # YAML reads 2011-06-09 as a date; keep one type whatever the author typed.
    if isinstance(value, date | datetime):
        value = value.isoformat()
    if not isinstance(value, str):
        return value
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        return value
    # The loaders hold timestamps as naive UTC, and pandas refuses to compare naive with aware ones.
    return stamp.tz_convert("UTC").tz_localize(None).isoformat()


class TemporalConfig(_Strict):
    """Train before each cut-off: validation in [validation_cutoff, test_cutoff), test in [test_cutoff, end).

    A cut-off with a UTC offset is held as the same instant in naive UTC, the loaded timestamps' time zone.
    """

    kind: Literal["temporal"]
    validation_cutoff: str
    test_cutoff: str
    end: str | None = None

    _dates = field_validator("validation_cutoff", "test_cutoff", "end", mode="before")(_as_naive_utc_string)

    @model_validator(mode="after")
    def _check_order(self) -> TemporalConfig:
        from recsys.evaluation import TemporalProtocol

        TemporalProtocol(self.validation_cutoff, self.test_cutoff, self.end)
        return self


class StratifiedConfig(_Strict):
    """Per-customer random split of all rows into train+validation and test at ``ratio``; validation is
    carved from train+validation by the same split (same ratio and seed)."""

    kind: Literal["stratified"]
    ratio: float = Field(default=0.75, gt=0.0, lt=1.0)
    seed: int = 42
    min_rating: int = Field(default=1, ge=1)


class LeaveLastOutConfig(_Strict):
    """Each customer's last ``n`` orders (or rows) are test; the ``n`` before them are validation."""

    kind: Literal["leave_last_out"]
    n: int = Field(default=1, ge=1)
    by: Literal["order", "row"] = "order"


ProtocolConfig = Annotated[TemporalConfig | StratifiedConfig | LeaveLastOutConfig, Field(discriminator="kind")]


class ParamSpace(_Strict):
    """One dimension of an Optuna search space."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes 'choices', not 'low'/'high'")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} dimension needs both 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled dimension needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' cannot be combined")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"'step' must be > 0, got {self.step}")
        if self.type == "int" and self.step is not None and not float(self.step).is_integer():
            # Optuna's int dimensions take an int step; truncating 2.5 to 2 would search another grid
            raise ValueError(f"an int dimension needs a whole-number 'step', got {self.step}")
        if self.choices is not None:
            raise ValueError(f"an {self.type} dimension takes 'low'/'high', not 'choices'")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high)):
            raise ValueError("an int dimension needs whole-number 'low' and 'high'")
        return self

    def extremes(self) -> list[Any]:
        """The values a model must accept for every trial to be buildable: the ends, or every choice."""
        if self.type == "categorical":
            return list(self.choices or ())
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


class SearchConfig(_Strict):
    """An Optuna search: a TPE sampler seeded with ``seed`` (default: the config's seed), ``n_trials`` trials.

    The sampler maximises the selection metric of ``setting`` (default: the first setting); every trial is
    still scored under every setting, and each setting picks its own best trial.
    """

    n_trials: int = Field(ge=1)
    seed: int | None = None
    setting: Literal["A", "B"] | None = None
    space: dict[str, ParamSpace] = Field(min_length=1)


class ModelConfig(_Strict):
    """A registry model with fixed parameters, a grid (list values) and/or an Optuna ``search``."""

    model: str
    label: str | None = None
    params: dict[str, Any] = {}
    search: SearchConfig | None = None

    @property
    def name(self) -> str:
        return self.label or self.model

    @model_validator(mode="after")
    def _check_params(self) -> ModelConfig:
        valid = model_params(self.model)
        named = list(self.params) + list(self.search.space if self.search else ())
        unknown = [key for key in named if key not in valid]
        if unknown:
            hints = "".join(f" (did you mean {close[0]!r}?)" for key in unknown
                            if (close := difflib.get_close_matches(key, list(valid), n=1)))
            raise ValueError(f"model {self.model!r} has no parameter(s) {', '.join(map(repr, unknown))}{hints}; "
                             f"valid parameters: {', '.join(valid)}")
        if self.search:
            both = sorted(set(self.search.space) & set(self.params))
            if both:
                raise ValueError(f"parameter(s) {both} are both fixed in 'params' and searched in 'search.space'")
            grids = sorted(key for key, value in self.params.items() if isinstance(value, list))
            if grids:
                raise ValueError(f"parameter(s) {grids} are grids; with 'search' give fixed 'params' only")
        for key, value in self.params.items():
            if isinstance(value, list) and not value:
                raise ValueError(f"parameter {key!r} has an empty grid")
        return self

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the list-valued parameters, in file order (the last key varies fastest)."""
        keys = list(self.params)
        axes = [value if isinstance(value, list) else [value] for value in self.params.values()]
        return [dict(zip(keys, combination, strict=True)) for combination in itertools.product(*axes)]

    def rejected_values(self) -> dict[str, str]:
        """``{field: message}`` for each parameter value the model's constructor rejects (``params.neighbours``,
        ``search.space.factors``); the first rejection of each field only.

        Every grid point is built, and a search is built at the ends of each dimension. Constructors check
        their values without fitting, so this is cheap, and a bad value fails here rather than mid-run.
        """
        rejected: dict[str, str] = {}
        for params in self.grid():
            error = _construction_error(self.model, params)
            if error is not None:
                for field, message in self._blame(params, error).items():
                    rejected.setdefault(field, message)
        if rejected or self.search is None:
            return rejected
        fixed = self.grid()[0]
        for name, space in self.search.space.items():
            for value in space.extremes():
                error = _construction_error(self.model, {**fixed, name: value})
                if error is not None:
                    rejected[f"search.space.{name}"] = f"model {self.model!r} rejects {name}={value!r}: {error}"
                    break
        return rejected

    def _blame(self, params: dict[str, Any], error: str) -> dict[str, str]:
        # Constructor messages need not name the parameter: each value rejected on its own (beside the
        # defaults) is a culprit; when none is, only the combination can be named.
        blamed = {}
        for key, value in params.items():
            alone = _construction_error(self.model, {key: value})
            if alone is not None:
                blamed[f"params.{key}"] = f"model {self.model!r} rejects {key}={value!r}: {alone}"
        return blamed or {"params": f"model {self.model!r} rejects {params}: {error}"}


def _construction_error(model: str, params: dict[str, Any]) -> str | None:
    try:
        create_model(model, **params)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; anything else is a ValueError naming the valid metrics."""
    match = _METRIC.match(metric)
    if not match or match["name"] not in METRIC_NAMES:
        raise ValueError(f"{metric!r} is not a metric; use <name>@<k> with name in {', '.join(METRIC_NAMES)}")
    return match["name"], int(match["k"])


class ExperimentConfig(_Strict):
    name: str = Field(default="experiment", min_length=1)
    experiment: str = Field(default="recsys-experiments", description="MLflow experiment of the runs")
    seed: int = 0
    data: DataConfig
    protocol: ProtocolConfig
    settings: list[Literal["A", "B"]] = Field(default=["A", "B"], min_length=1)
    metrics: list[str] = Field(default=list(DEFAULT_METRICS), min_length=1)
    selection: str | dict[str, str] = "ndcg@10"
    curve_max_k: int = Field(default=20, ge=1, le=100)
    models: list[ModelConfig] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, metrics: list[str]) -> list[str]:
        for metric in metrics:
            parse_metric(metric)
        if len(set(metrics)) != len(metrics):
            raise ValueError("metrics are listed twice")
        return metrics

    @field_validator("settings")
    @classmethod
    def _check_settings(cls, settings: list[str]) -> list[str]:
        if len(set(settings)) != len(settings):
            raise ValueError("settings are listed twice")
        return settings

    @model_validator(mode="after")
    def _check_cross_fields(self) -> ExperimentConfig:
        # each message starts with the field it is about: a check across fields has no location of its own
        if isinstance(self.selection, dict):
            extra = sorted(set(self.selection) - set(self.settings))
            if extra:
                raise ValueError(f"selection: names setting(s) {extra} that are not in settings {self.settings}")
        for setting in self.settings:
            try:
                parse_metric(self.selection_metric(setting))
            except ValueError as exc:
                raise ValueError(f"selection: {exc}") from None
        labels = [model.name for model in self.models]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"models: label(s) {repeated} are used twice; give each entry a distinct 'label'")
        for index, model in enumerate(self.models):
            if model.search and model.search.setting and model.search.setting not in self.settings:
                raise ValueError(f"models.{index}.search.setting: model {model.name!r} searches setting "
                                 f"{model.search.setting!r}, which is not in settings {self.settings}")
        return self

    def rejected_model_values(self) -> dict[str, str]:
        """``{dotted field: message}`` for each model parameter value its constructor rejects; see
        :meth:`ModelConfig.rejected_values`."""
        return {f"models.{index}.{field}": message for index, model in enumerate(self.models)
                for field, message in model.rejected_values().items()}

    def selection_metric(self, setting: str) -> str:
        if isinstance(self.selection, str):
            return self.selection
        return self.selection.get(setting, "ndcg@10")

    @property
    def ks(self) -> list[int]:
        """Cut-offs the metrics and the selection need."""
        needed = {parse_metric(metric)[1] for metric in self.metrics}
        needed |= {parse_metric(self.selection_metric(setting))[1] for setting in self.settings}
        return sorted(needed)


def load_config(path: str | Path, data: str | Path | None = None, data_format: str | None = None) -> ExperimentConfig:
    """Read and validate ``path``; ``data.path`` is resolved against the config file's folder.

    ``data`` and ``data_format`` replace the file's ``data.path`` and ``data.format`` (a relative ``data``
    starts at the working directory), so one config runs on any file in the documented schema.
    """
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    if data is not None or data_format is not None:
        section = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        raw = {**raw, "data": {**section, **({"path": str(Path(data).resolve())} if data is not None else {}),
                               **({"format": data_format} if data_format is not None else {})}}
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc.error_count()} invalid field(s):\n{_describe(exc)}") from None
    rejected = config.rejected_model_values()
    if rejected:
        lines = "\n".join(f"  {where}: {message}" for where, message in rejected.items())
        raise ConfigError(f"{path}: {len(rejected)} invalid field(s):\n{lines}")
    data_path = config.data.path if config.data.path.is_absolute() else (path.parent / config.data.path)
    return config.model_copy(update={"data": config.data.model_copy(update={"path": data_path.resolve()})})


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        # the protocol's kind picks its model: pydantic names that tag in the path, the file does not
        location = [str(part) for index, part in enumerate(error["loc"])
                    if not (index == 1 and error["loc"][0] == "protocol" and part in _PROTOCOL_KINDS)]
        message = error["msg"].removeprefix("Value error, ")
        field, _, rest = message.partition(": ")
        if not location and rest and _FIELD.fullmatch(field):
            location, message = [field], rest  # a check across fields names its field first
        lines.append(f"  {'.'.join(location) or '(top level)'}: {message}")
    return "\n".join(lines)


_FIELD = re.compile(r"[a-z_]+(\.[\w]+)*")
_PROTOCOL_KINDS = ("temporal", "stratified", "leave_last_out")
