"""Two-stage recommendations: candidates from several recommenders, re-ranked by LightGBM.

Training labels never leak: :meth:`TwoStageRanker.fit` cuts the given data ``label_days`` before its
reference time, fits the candidate generators and builds the features on the earlier part only, and
labels each candidate by whether the customer bought it in the later part. The generators and the
features are then rebuilt on all the data for scoring, with the trees kept as learned.

Two rankers are learned from the same split: one over every candidate (bought before or not, for
``exclude_seen=False``) and one over candidates the customer never bought, labelled by new items
only (for ``exclude_seen=True``), since what predicts a first purchase differs from what predicts a
repeat. When no customer bought anything new in the label window, the first serves both. First
purchases are rare and scattered, so the new-item ranker defaults to a pointwise (binary) objective,
which on the Online Retail validation fold ranked them better than LambdaRank. The ranker over every
candidate defaults to XE-NDCG (``rank_xendcg``), which beat LambdaRank there on nDCG@10 and recall@20
under every seed tried.

Below the top ``depth_after`` items of the list over every candidate, the order is a third ranker's,
learned on the same examples with ``depth_objective`` (default pointwise): XE-NDCG puts the best items
first, while the pointwise model finds more of the items bought at all, so on the Online Retail
validation fold the pair kept nDCG@10 and raised recall@20 under every seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data import schema
from recsys.data.interactions import Interactions, interaction_matrix
from recsys.models.base import (
    ModelFitError,
    Recommender,
    arrays_to_sparse,
    check_k,
    sparse_to_arrays,
    top_k,
)
from recsys.models.candidates import Candidates, generate_candidates, generator_feature_names, make_generators
from recsys.models.ranker_features import FEATURE_NAMES, FeatureTables, build_features

DEFAULT_GENERATORS: dict[str, dict[str, Any]] = {
    "repeat_buy": {"recency_half_life_days": 60.0},
    "ease_weighted": {"l2": 100.0},
    # binary EASE is the best single source of first purchases; weighted EASE ranks repeats better
    "ease_binary": {"l2": 500.0},
    # co-purchases and baskets weighed by age (60-day half-life), in place of BM25 item-kNN, which added
    # nothing beside it: on the Online Retail validation fold (means of seeds 0-4) A nDCG@10 0.4493 ->
    # 0.4509, A recall@20 0.2686 -> 0.2693, B nDCG@10 0.1781 -> 0.1790
    "ease_recent": {"l2": 30.0, "recency_half_life_days": 60.0},
    # weak alone, yet dropping it costs the new-item ranker on validation
    "als": {"factors": 64, "iterations": 15, "num_threads": 2},
    "trending": {"window_days": 30},
}
OBJECTIVES = ("rank_xendcg", "lambdarank", "binary")
_MODES = ("all", "new")


class TwoStageRanker(Recommender):
    """Union of each generator's top ``candidates_per_generator`` items, re-scored by gradient-boosted trees.

    ``generators`` maps registry model names to their parameters (default
    :data:`DEFAULT_GENERATORS`). The re-ranker sees each generator's score and rank plus the customer,
    item and pair features of :mod:`recsys.models.ranker_features`. Items outside every generator's
    list score ``-inf``. Each ranker is ``n_bags`` boosters with seeds ``random_state``,
    ``random_state + 1``, ..., whose raw scores are averaged. Fitting is deterministic for a given
    ``random_state`` and ``num_threads``.
    """

    name = "ranker"
    ranks_new_items_apart = True

    def __init__(
        self,
        generators: Mapping[str, Mapping[str, Any]] | None = None,
        candidates_per_generator: int = 30,
        label_days: int = 30,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        objective: str = "rank_xendcg",
        new_items_objective: str = "binary",
        depth_objective: str | None = "binary",
        depth_after: int = 10,
        n_bags: int = 5,
        random_state: int = 0,
        num_threads: int = 1,
    ) -> None:
        super().__init__()
        if candidates_per_generator < 1 or label_days < 1 or n_estimators < 1 or n_bags < 1:
            raise ValueError("candidates_per_generator, label_days, n_estimators and n_bags must be >= 1")
        for label, value in (("objective", objective), ("new_items_objective", new_items_objective),
                             ("depth_objective", objective if depth_objective is None else depth_objective)):
            if value not in OBJECTIVES:
                raise ValueError(f"{label}={value!r} is not one of {', '.join(OBJECTIVES)}")
        if depth_after < 1:
            raise ValueError(f"depth_after must be >= 1, got {depth_after}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 (a fixed count keeps the trees reproducible), "
                             f"got {num_threads}")
        self.generators = None if generators is None else {k: dict(v) for k, v in generators.items()}
        self.candidates_per_generator = candidates_per_generator
        self.label_days = label_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.objective = objective
        self.new_items_objective = new_items_objective
        self.depth_objective = depth_objective
        self.depth_after = depth_after
        self.n_bags = n_bags
        self.random_state = random_state
        self.num_threads = num_threads
        self._models: dict[str, Recommender] = {}
        self._features: FeatureTables | None = None
        self._boosters: dict[str, list[lgb.Booster]] = {}

    @property
    def generator_specs(self) -> dict[str, dict[str, Any]]:
        return DEFAULT_GENERATORS if self.generators is None else self.generators

    # -- fitting --------------------------------------------------------------------------------------
    def fit(self, data: Interactions) -> TwoStageRanker:
        history, labels = split_for_labels(data, self.label_days)
        learners = _learners(history, labels)
        if not len(learners):
            raise ModelFitError(f"no customer bought both before and within the last {self.label_days} days "
                                "of the training data; lower label_days or give more history")
        models = self._fit_generators(history)
        features = build_features(history)
        boosters = {}
        for mode in _MODES:
            candidates = self._candidates(models, features, learners, mode, history.matrix)
            objective = self.objective if mode == "all" else self.new_items_objective
            bag = self._train_boosters(candidates, labels, objective)
            if bag:
                boosters[mode] = bag
            if mode == "all" and bag and self.depth_objective is not None:
                boosters["depth"] = self._train_boosters(candidates, labels, self.depth_objective)
        if "all" not in boosters:
            raise ModelFitError("no candidate was bought in the label window; raise candidates_per_generator")
        self._boosters = boosters
        self._models = self._fit_generators(data)
        self._features = build_features(data)
        self._remember_seen(data)
        return self

    def training_examples(self, data: Interactions, mode: str = "all") -> pd.DataFrame:
        """The labelled candidates :meth:`fit` learns from, for inspection: one row per candidate with
        ``customer_idx``, ``item_idx``, ``label`` and every feature."""
        history, labels = split_for_labels(data, self.label_days)
        candidates = self._candidates(self._fit_generators(history), build_features(history),
                                      _learners(history, labels), mode, history.matrix)
        frame = pd.DataFrame(candidates.features, columns=self.feature_names)
        frame.insert(0, "customer_idx", candidates.customers)
        frame.insert(1, "item_idx", candidates.items)
        frame.insert(2, "label", _labels_of(candidates, labels))
        return frame

    @property
    def feature_names(self) -> list[str]:
        return list(generator_feature_names(sorted(self.generator_specs))) + list(FEATURE_NAMES)

    def _fit_generators(self, data: Interactions) -> dict[str, Recommender]:
        return {name: model.fit(data) for name, model in make_generators(self.generator_specs).items()}

    def _candidates(self, models, features: FeatureTables, customers: np.ndarray, mode: str,
                    seen: sp.csr_matrix) -> Candidates:
        found = generate_candidates(models, customers, self.candidates_per_generator,
                                    exclude_seen=mode == "new", seen=seen)
        table = features.gather(found.customers, found.items)
        return Candidates(found.customers, found.items, np.hstack([found.features, table]))

    def _train_boosters(self, candidates: Candidates, labels: sp.csr_matrix, objective: str) -> list[lgb.Booster]:
        y = _labels_of(candidates, labels)
        customers = candidates.customers
        # customers whose candidates hold no purchase give a ranking objective no pair to order, and only
        # add easy negatives to the pointwise objective
        positives = np.bincount(customers, weights=y, minlength=labels.shape[0])
        keep = positives[customers] > 0
        if not keep.any():
            return []
        x, y, customers = candidates.features[keep], y[keep], customers[keep]
        _, group = np.unique(customers, return_counts=True)  # candidates come grouped by customer
        dataset = lgb.Dataset(x, y, group=group, feature_name=self.feature_names, free_raw_data=True)
        if objective == "lambdarank":
            params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
                      "lambdarank_truncation_level": 20}
        elif objective == "rank_xendcg":
            params = {"objective": "rank_xendcg", "metric": "ndcg", "eval_at": [10]}
        else:
            params = {"objective": "binary", "metric": "auc"}
        params |= {
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "feature_fraction": 0.9, "bagging_fraction": 0.8,
            "bagging_freq": 1, "deterministic": True, "force_row_wise": True,
            "num_threads": self.num_threads, "verbosity": -1,
        }
        # the same trees grown on different row and feature samples, averaged: one seed's luck moves
        # nDCG@10 by ~0.003; on the Online Retail validation fold (seeds 0-2) five bags beat three on
        # A nDCG@10, A recall@20 and B nDCG@10, and eight beat five on none
        return [lgb.train(params | {"seed": self.random_state + bag}, dataset, num_boost_round=self.n_estimators)
                for bag in range(self.n_bags)]

    # -- scoring --------------------------------------------------------------------------------------
    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self._dense_scores(np.asarray(customer_rows, dtype=np.int64), "all")

    def recommend(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        if not exclude_seen:
            return super().recommend(customer_rows, k)
        # new items only: candidates drawn among unseen items, ordered by the new-item ranker
        return self._batched_top_k(customer_rows, k, lambda rows: self._dense_scores(rows, "new"))

    def recommend_with_sources(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`recommend`; each item is named ``ranker/<generator>`` after the candidate generator
        that ranked it highest, so a served list says where every item came from."""
        self._check_fitted()
        customer_rows = self._check_customer_rows(customer_rows)
        check_k(k)
        names = np.asarray([f"{self.name}/{generator}" for generator in self._models] + [self.name], dtype=object)
        mode = "new" if exclude_seen else "all"
        item_rows = np.full((len(customer_rows), k), -1, dtype=np.int64)
        item_scores = np.full((len(customer_rows), k), -np.inf, dtype=np.float32)
        sources = np.full((len(customer_rows), k), self.name, dtype=object)
        for batch in self._batches(len(customer_rows)):
            scores, origin = self._dense_scores(customer_rows[batch], mode, with_origin=True)
            item_rows[batch], item_scores[batch] = top_k(scores, k)
            picked = np.take_along_axis(origin, np.maximum(item_rows[batch], 0), axis=1)
            sources[batch] = names[np.where(item_rows[batch] >= 0, picked, -1)]
        return item_rows, item_scores, sources

    def _dense_scores(self, customer_rows: np.ndarray, mode: str, with_origin: bool = False):
        """Dense ranker scores; with ``with_origin`` also, per (customer, item), the index of the generator
        that ranked the candidate best (-1 where nothing proposed it)."""
        candidates = self._candidates(self._models, self._features, customer_rows, mode, self._seen)
        scores = np.full((len(customer_rows), self.n_items), -np.inf, dtype=np.float32)
        origin = np.full(scores.shape, -1, dtype=np.int16) if with_origin else None
        if len(candidates.customers):
            # a shop where nobody tried anything new in the label window teaches no new-item ranker
            bag = self._boosters.get(mode, self._boosters["all"])
            predicted = self._predict(bag, candidates.features)
            # candidates name customers by row; the same row may be asked for twice
            position = {row: i for i, row in enumerate(customer_rows.tolist())}
            local = np.fromiter((position[c] for c in candidates.customers.tolist()), np.int64,
                                count=len(candidates.customers))
            scores[local, candidates.items] = predicted.astype(np.float32)
            if mode == "all" and "depth" in self._boosters:
                depth = np.full(scores.shape, -np.inf, dtype=np.float32)
                depth[local, candidates.items] = self._predict(self._boosters["depth"], candidates.features)
                scores = _below_head(scores, depth, self.depth_after)
            if with_origin:
                n_generators = len(self._models)
                ranks = candidates.features[:, n_generators:2 * n_generators]
                origin[local, candidates.items] = np.argmin(np.where(np.isnan(ranks), np.inf, ranks), axis=1)
            duplicates = len(position) < len(customer_rows)
            if duplicates:
                first = np.asarray([position[row] for row in customer_rows.tolist()])
                scores = scores[first]
                origin = origin[first] if with_origin else None
        return (scores, origin) if with_origin else scores

    def _predict(self, bag: list[lgb.Booster], features: np.ndarray) -> np.ndarray:
        # every core (0: OpenMP's default), not num_threads: rows are predicted independently, so the
        # scores are the same bits on any thread count, and prediction is most of the time a ranker
        # takes to score a shop's customers at publish
        return sum(booster.predict(features, raw_score=True, num_threads=0) for booster in bag) / len(bag)

    # -- persistence ----------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"booster_{mode}": np.array([booster.model_to_string() for booster in bag])
                  for mode, bag in self._boosters.items()}
        arrays.update({f"features__{key}": value for key, value in self._features.to_arrays().items()})
        arrays.update(sparse_to_arrays("generator_seen", self._seen))
        for name, model in self._models.items():
            arrays.update({f"generator__{name}__{key}": value for key, value in model.state_arrays().items()})
        return arrays

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._boosters = {mode: [lgb.Booster(model_str=str(text)) for text in arrays[f"booster_{mode}"]]
                          for mode in (*_MODES, "depth") if f"booster_{mode}" in arrays}
        self._features = FeatureTables.from_arrays(
            {key.removeprefix("features__"): value for key, value in arrays.items() if key.startswith("features__")})
        seen = arrays_to_sparse(arrays, "generator_seen")
        self._models = make_generators(self.generator_specs)
        for name, model in self._models.items():
            prefix = f"generator__{name}__"
            model._restore_state({key.removeprefix(prefix): value for key, value in arrays.items()
                                  if key.startswith(prefix)})
            model._seen = seen


def split_for_labels(data: Interactions, label_days: int) -> tuple[Interactions, sp.csr_matrix]:
    """``data`` before ``reference_time - label_days`` (same customer and item rows, that cut as its
    reference time, weighted as ``data`` is), and the customers x items matrix of what was bought from
    the cut on."""
    cut = data.reference_time - pd.Timedelta(days=label_days)
    frame = data.transactions
    before = frame[frame[schema.TIMESTAMP] < cut]
    after = frame[frame[schema.TIMESTAMP] >= cut]
    shape = (data.n_customers, data.n_items)
    # the generators are refitted on ``data`` for scoring: trained on another weighting, the trees would
    # have learned the scale of other scores
    matrix = interaction_matrix(before, data.weighting, shape)
    labels = sp.csr_matrix((np.ones(len(after), np.float32), (after["customer_idx"], after["item_idx"])),
                           shape=shape)
    labels.sum_duplicates()
    labels.data[:] = 1.0
    history = Interactions(data.customers, data.items, matrix, before, cut, data.weighting)
    return history, labels


def _learners(history: Interactions, labels: sp.csr_matrix) -> np.ndarray:
    """Customer rows with purchases on both sides of the label cut: the ones a ranker can learn from."""
    return np.flatnonzero((np.diff(labels.indptr) > 0) & (np.diff(history.matrix.indptr) > 0)).astype(np.int64)


def _labels_of(candidates: Candidates, labels: sp.csr_matrix) -> np.ndarray:
    if not len(candidates.customers):
        return np.zeros(0)
    return (np.asarray(labels[candidates.customers, candidates.items]).ravel() > 0).astype(np.float64)


def _below_head(head_scores: np.ndarray, depth_scores: np.ndarray, head: int) -> np.ndarray:
    """Scores ordering each row's ``head`` best items by ``head_scores`` first, then every other item
    both score by ``depth_scores``: the head keeps its scores, the rest are ``depth_scores`` shifted so that
    their row maximum sits one below the head's minimum."""
    if head >= head_scores.shape[1]:
        return head_scores
    # the head is top_k's, so ties at its edge follow the same rule as every list (lower item rows first)
    top, _ = top_k(head_scores, head)
    in_head = np.zeros(head_scores.shape, dtype=bool)
    kept = np.nonzero(top >= 0)  # rows with fewer than ``head`` finite scores pad with -1
    in_head[kept[0], top[kept]] = True
    in_head &= np.isfinite(head_scores)
    rest = np.isfinite(depth_scores) & np.isfinite(head_scores) & ~in_head
    floor = np.min(np.where(in_head, head_scores, np.inf), axis=1, keepdims=True)
    ceiling = np.max(np.where(rest, depth_scores, -np.inf), axis=1, keepdims=True)
    # rows with an empty head have an infinite floor: shift their rest to end at zero instead
    floor = np.where(np.isfinite(floor), floor, 1.0)
    shifted = depth_scores - np.where(np.isfinite(ceiling), ceiling, 0.0) + floor - 1.0
    return np.where(in_head, head_scores, np.where(rest, shifted, -np.inf)).astype(np.float32)
