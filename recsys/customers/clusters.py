"""Behavioural clusters of customers, with a number of clusters marketers can act on and ids that keep
their meaning from one retrain to the next.

Space. Six features of :func:`~recsys.customers.features.customer_features` (:data:`CLUSTER_FEATURES`),
each ``log1p``-transformed (spend and counts are heavy-tailed: without the log a few wholesalers would be
clusters of their own) and standardised. KMeans (k-means++, 10 starts, seeded) partitions that space.

Choosing k. The silhouette optimum on Online Retail is k = 2 (roughly "active" vs "lapsed"), which
tells a marketer nothing new, so k is searched in ``k_range`` (4-8 by default) only. A k is *eligible*
when every cluster holds at least ``min_share`` (3%) of customers (smaller clusters are too small to
run a campaign on) and its partition is *stable*: KMeans fitted on two random halves labels all
customers with an adjusted Rand index of at least ``min_stability`` (0.6) against the full fit (a
partition that moves with the sample is not a segment). Among eligible k the one with the highest
silhouette (on a seeded sample of at most 4,000 customers) wins; when none is eligible, the k with the
highest stability does. The scores of every k are kept in ``selection``. Only k that each half can hold
(``2 <= k <= n // 2``) are tried; when none of ``k_range`` is, :class:`ClusterDataError` says so.

Stable ids. Given the previous model, the new fit keeps the previous k, and its centroids are matched
to the previous ones by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the
Euclidean distance between centroids in the new standardised space; a matched cluster inherits the
previous id, so "cluster 2" means the same kind of customer after a retrain.

Names. A cluster is named after its two most distinctive features: those whose centroid lies furthest
from the overall mean in standard deviations, each turned into a word ("Frequent", "lapsed", ...), e.g.
"Frequent, high-value customers". After a retrain a cluster keeps its previous name while the features
it was named after still lie on the same side of the mean (``named_after`` records them). Each
description also carries the cluster's size, share and the mean of every feature in original units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from threadpoolctl import threadpool_limits

CLUSTER_FEATURES: tuple[str, ...] = (
    "recency_days", "frequency", "monetary_mean", "tenure_days", "basket_lines", "n_items",
)
# (word when above the mean, word when below) for each feature.
_WORDS: dict[str, tuple[str, str]] = {
    "recency_days": ("lapsed", "recently active"),
    "frequency": ("frequent", "one-off"),
    "monetary_mean": ("high-value", "low-value"),
    "tenure_days": ("long-standing", "new"),
    "basket_lines": ("big-basket", "small-basket"),
    "n_items": ("wide-range", "narrow-range"),
}
_SILHOUETTE_SAMPLE = 4000
# A retrained cluster keeps its name while each feature it was named after stays this far (in standard
# deviations) from the mean on the same side: names should not flip when two features are nearly tied.
_KEEP_NAME_Z = 0.25


class ClusterDataError(ValueError):
    """Too few customers for the requested clusters (each stability half must hold k customers)."""


@dataclass(frozen=True)
class CustomerClusters:
    """A fitted clustering: how to place a customer, and what each cluster means.

    ``centroids`` are in log1p feature space, one row per cluster id (``ids``); ``mean`` and ``scale``
    standardise log features. ``descriptions`` has one dict per cluster: ``id``, ``name``, ``size``,
    ``share``, ``means`` (feature -> mean in original units), ``z`` (feature -> centroid in standard
    deviations). ``selection`` has one row per k tried (``k``, ``silhouette``, ``stability``,
    ``min_share``, ``eligible``); empty when k came from the previous model.
    """

    features: tuple[str, ...]
    ids: tuple[int, ...]
    centroids: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    descriptions: tuple[dict, ...]
    selection: pd.DataFrame

    @property
    def k(self) -> int:
        return len(self.ids)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Cluster id of each customer: the nearest centroid in the standardised log space."""
        z = (_log_matrix(features, self.features) - self.mean) / self.scale
        centres = (self.centroids - self.mean) / self.scale
        nearest = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        return pd.Series(np.asarray(self.ids)[nearest], index=features.index, name="cluster")

    def names(self) -> dict[int, str]:
        return {d["id"]: d["name"] for d in self.descriptions}

    def to_dict(self) -> dict:
        """JSON-friendly state; :meth:`from_dict` restores it (e.g. the previous model of a retrain)."""
        return {"features": list(self.features), "ids": list(self.ids), "centroids": self.centroids.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "descriptions": list(self.descriptions)}

    @classmethod
    def from_dict(cls, data: dict) -> CustomerClusters:
        return cls(tuple(data["features"]), tuple(int(i) for i in data["ids"]), np.asarray(data["centroids"], float),
                   np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   tuple(data.get("descriptions", ())), pd.DataFrame())


def _log_matrix(features: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise ValueError(f"features lack columns {missing}")
    values = features[list(columns)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"cluster features {list(columns)} must be finite and >= 0")
    return np.log1p(values)


def _kmeans(z: np.ndarray, k: int, seed: int) -> KMeans:
    # One thread: on a shared machine OpenMP threads spin against each other and run many times slower.
    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)


def _score_k(z: np.ndarray, k: int, seed: int) -> dict:
    model = _kmeans(z, k, seed)
    labels = model.labels_
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(z), size=min(len(z), _SILHOUETTE_SAMPLE), replace=False)
    silhouette = float(silhouette_score(z[sample], labels[sample])) if len(np.unique(labels[sample])) > 1 else -1.0
    halves = rng.permutation(len(z)) % 2
    stability = float(np.mean([adjusted_rand_score(labels, _kmeans(z[halves == h], k, seed).predict(z))
                               for h in (0, 1)]))
    share = float(np.bincount(labels, minlength=k).min() / len(z))
    return {"k": k, "silhouette": silhouette, "stability": stability, "min_share": share, "model": model}


def fit_clusters(
    features: pd.DataFrame,
    k_range: Sequence[int] = range(4, 9),
    previous: CustomerClusters | None = None,
    min_share: float = 0.03,
    min_stability: float = 0.6,
    seed: int = 0,
    columns: Sequence[str] = CLUSTER_FEATURES,
) -> tuple[CustomerClusters, pd.Series]:
    """Fit the clusters (see the module docstring) and return them with each customer's cluster id."""
    columns = tuple(previous.features if previous is not None else columns)
    logs = _log_matrix(features, columns)
    mean, scale = logs.mean(axis=0), logs.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (logs - mean) / scale
    if previous is not None:
        if len(z) < previous.k:
            raise ClusterDataError(f"{len(z)} customers cannot fill the previous model's {previous.k} clusters")
        model = _kmeans(z, previous.k, seed)
        selection = pd.DataFrame()
    else:
        # The stability check fits each half of the customers, so a half must hold k of them.
        ks = [k for k in k_range if 2 <= k <= len(z) // 2]
        if not ks:
            raise ClusterDataError(f"no k in {list(k_range)} fits {len(z)} customers: clustering needs "
                                   f"2 <= k <= {len(z) // 2}, half of them (the stability check fits each half)")
        scored = [_score_k(z, k, seed) for k in ks]
        for row in scored:
            row["eligible"] = row["min_share"] >= min_share and row["stability"] >= min_stability
        eligible = [row for row in scored if row["eligible"]]
        best = max(eligible, key=lambda r: r["silhouette"]) if eligible else max(scored, key=lambda r: r["stability"])
        model = best["model"]
        selection = pd.DataFrame([{key: v for key, v in row.items() if key != "model"} for row in scored])
    centroids_log = model.cluster_centers_ * scale + mean
    ids = _stable_ids(model.cluster_centers_, previous, mean, scale)
    order = np.argsort(ids)
    ids, centroids_log = ids[order], centroids_log[order]
    labels = pd.Series(ids[np.argsort(order)][model.labels_], index=features.index, name="cluster")
    descriptions = _describe(features, columns, labels, ids, (centroids_log - mean) / scale, previous)
    clusters = CustomerClusters(columns, tuple(int(i) for i in ids), centroids_log, mean, scale,
                                descriptions, selection)
    return clusters, labels


def _stable_ids(centres_z: np.ndarray, previous: CustomerClusters | None, mean, scale) -> np.ndarray:
    k = len(centres_z)
    if previous is None:
        return np.arange(k)
    previous_z = (previous.centroids - mean) / scale
    cost = np.sqrt(((centres_z[:, None, :] - previous_z[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    ids = np.full(k, -1)
    ids[rows] = np.asarray(previous.ids)[cols]
    fresh = iter(range(max(previous.ids) + 1, max(previous.ids) + 1 + k))
    return np.array([i if i >= 0 else next(fresh) for i in ids])


def _kept_name(previous: CustomerClusters | None, cluster: int, z: dict) -> str | None:
    """The previous name of ``cluster`` while the features it was named after still point the same way."""
    if previous is None:
        return None
    before = next((d for d in previous.descriptions if d.get("id") == cluster), None)
    if not before or "named_after" not in before:
        return None
    same = all(np.sign(z.get(c, 0.0)) == np.sign(sign) and abs(z.get(c, 0.0)) >= _KEEP_NAME_Z
               for c, sign in before["named_after"])
    return before["name"] if same else None


def _describe(features, columns, labels, ids, centres_z, previous=None) -> tuple[dict, ...]:
    names: list[str] = []
    out = []
    for row, cluster in enumerate(ids):
        z = dict(zip(columns, centres_z[row], strict=True))
        ranked = sorted(columns, key=lambda c: -abs(z[c]))
        named_after = [(c, 1 if z[c] > 0 else -1) for c in ranked[:2]]
        words = [_WORDS.get(c, (f"high {c}", f"low {c}"))[0 if z[c] > 0 else 1] for c in ranked]
        name = _name(words[:2])
        kept = _kept_name(previous, int(cluster), z)
        if kept is not None and kept not in names:
            name = kept
            named_after = [tuple(pair) for pair in next(d for d in previous.descriptions
                                                        if d.get("id") == cluster)["named_after"]]
        if name in names and len(words) > 2:
            name = _name(words[:3])
        if name in names:
            name = f"{name} ({cluster})"
        names.append(name)
        members = labels == cluster
        out.append({
            "id": int(cluster),
            "name": name,
            "named_after": [[c, int(sign)] for c, sign in named_after],
            "size": int(members.sum()),
            "share": float(members.mean()) if len(labels) else 0.0,
            "means": {c: float(features.loc[members, c].mean()) for c in columns},
            "z": {c: round(float(z[c]), 3) for c in columns},
        })
    return tuple(out)


def _name(words: Sequence[str]) -> str:
    # As many words as there are features (``columns`` may hold fewer than three).
    return f"{', '.join([words[0].capitalize(), *words[1:]])} customers"
