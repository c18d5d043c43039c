"""The errors that mean the training commands were given bad input, rather than that something broke."""

from __future__ import annotations


def input_errors() -> tuple[type[Exception], ...]:
    """Error types a command reports in one line: a missing or malformed file, a bad catalogue, data too
    thin to fit, an unknown model version, an unreachable or misconfigured store, invalid ``RECSYS_*``
    settings, a deleted MLflow experiment, an MLflow store that cannot be reached, an alias MLflow refuses.
    Imported when asked for: they pull in the models, and a plain ``recsys --help`` should not wait for those."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from feature_store.base import StoreError
    from recsys.customers.churn import ChurnDataError
    from recsys.customers.clusters import ClusterDataError
    from recsys.data import TransactionSchemaError
    from recsys.data.cdnow import CdnowFormatError
    from recsys.evaluation import SplitError
    from recsys.metrics.ranking import EmptyEvaluationError
    from recsys.models.base import ModelFitError
    from recsys.offers import CatalogueError
    from training.audiences import AudienceInputError
    from training.experiment_winner import ExperimentWinnerError
    from training.pipeline import NoTransactionsError
    from training.publish_customers import CustomerPublishError
    from training.settings import SettingsError
    from training.tracking import (
        DeletedExperimentError,
        InvalidAliasError,
        TrackingUnavailableError,
        UnknownModelVersionError,
    )

    return (FileNotFoundError, TransactionSchemaError, CdnowFormatError, CatalogueError, ModelFitError,
            ChurnDataError, ClusterDataError, EmptyEvaluationError, SplitError, CustomerPublishError, StoreError,
            RedisConnectionError, NoTransactionsError, UnknownModelVersionError, SettingsError,
            DeletedExperimentError, TrackingUnavailableError, InvalidAliasError, ExperimentWinnerError,
            AudienceInputError)
