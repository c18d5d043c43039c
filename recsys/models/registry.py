"""Models by name: build one from a config, or load one that :meth:`Recommender.save` wrote."""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

from recsys.models.als import ALSRecommender
from recsys.models.base import Recommender, read_model_name
from recsys.models.bpr import BPRRecommender
from recsys.models.ease import EASERecommender
from recsys.models.item_knn import ItemKNNRecommender
from recsys.models.popularity import PopularityRecommender
from recsys.models.ranker import TwoStageRanker
from recsys.models.repeat_buy import RepeatBuyRecommender
from recsys.models.user_knn import UserKNNRecommender

MODEL_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        PopularityRecommender,
        RepeatBuyRecommender,
        ItemKNNRecommender,
        UserKNNRecommender,
        ALSRecommender,
        BPRRecommender,
        EASERecommender,
        TwoStageRanker,
    )
}


def model_class(name: str) -> type[Recommender]:
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {name!r}{_did_you_mean(name, MODEL_CLASSES)}; "
                         f"valid models: {', '.join(sorted(MODEL_CLASSES))}")
    return MODEL_CLASSES[name]


def model_params(name: str) -> dict[str, Any]:
    """The constructor parameters of model ``name`` and their defaults."""
    signature = inspect.signature(model_class(name).__init__)
    return {key: p.default for key, p in signature.parameters.items() if key != "self"}


def create_model(name: str, **params: Any) -> Recommender:
    """A new, unfitted model ``name`` built with ``params``; unknown names are an error, never ignored."""
    valid = model_params(name)
    unknown = [key for key in params if key not in valid]
    if unknown:
        hints = "".join(_did_you_mean(key, valid) for key in unknown)
        raise ValueError(f"model {name!r} has no parameter(s) {', '.join(map(repr, unknown))}{hints}; "
                         f"valid parameters: {', '.join(valid)}")
    return model_class(name)(**params)


def load_model(path: str | Path) -> Recommender:
    """The model saved at ``path``, ready to score as it did when saved."""
    return model_class(read_model_name(path)).load(path)


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
