"""Behavioural clusters: choice of k, names, and ids that survive a retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.clusters import CLUSTER_FEATURES, ClusterDataError, CustomerClusters, fit_clusters


def _blobs(n_per: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Four well-separated groups of customers in log space (lapsed one-offs, frequent big spenders, ...)."""
    rng = np.random.default_rng(seed)
    centres = np.array([
        [5.0, 0.3, 4.0, 5.0, 1.5, 2.0],
        [1.5, 2.5, 6.5, 5.5, 3.5, 4.5],
        [2.0, 0.5, 4.5, 2.0, 2.5, 2.5],
        [4.0, 1.5, 5.5, 5.5, 3.0, 3.5],
    ]) + shift
    logs = np.concatenate([c + rng.normal(0, 0.25, (n_per, len(c))) for c in centres])
    frame = pd.DataFrame(np.expm1(np.clip(logs, 0, None)), columns=list(CLUSTER_FEATURES))
    frame.index = pd.Index([f"c{seed}-{i}" for i in range(len(frame))], name="customer_id")
    return frame


def test_picks_an_actionable_k_and_names_every_cluster():
    features = _blobs(150, seed=0)
    clusters, labels = fit_clusters(features, k_range=range(4, 7))
    assert clusters.k == 4
    assert set(clusters.selection["k"]) == {4, 5, 6}
    assert labels.value_counts().min() >= 0.03 * len(features)
    names = list(clusters.names().values())
    assert len(set(names)) == 4
    frequent = max(clusters.descriptions, key=lambda d: d["means"]["frequency"])
    assert frequent["name"].lower().startswith(("frequent", "high-value", "wide-range", "recently"))
    assert sum(d["size"] for d in clusters.descriptions) == len(features)
    pd.testing.assert_series_equal(clusters.predict(features), labels)


def test_ids_survive_a_retrain_on_perturbed_and_extended_data():
    first = _blobs(120, seed=1)
    clusters, labels = fit_clusters(first, k_range=[4])
    # More customers, values moved a little, rows in another order.
    extended = pd.concat([first * 1.05, _blobs(60, seed=2, shift=0.1)]).sample(frac=1.0, random_state=0)
    refit, new_labels = fit_clusters(extended, previous=CustomerClusters.from_dict(clusters.to_dict()))
    assert refit.ids == clusters.ids
    assert (new_labels.loc[first.index] == labels).mean() > 0.97
    assert refit.names() == clusters.names()


def test_ids_follow_the_centroids_not_kmeans_order():
    features = _blobs(100, seed=3)
    clusters, labels = fit_clusters(features, k_range=[4], seed=0)
    refit, new_labels = fit_clusters(features, previous=clusters, seed=7)
    assert (new_labels == labels).all()


def test_rejects_negative_or_missing_features():
    features = _blobs(20, seed=4)
    with pytest.raises(ValueError, match="lack columns"):
        fit_clusters(features.drop(columns=["frequency"]))
    features.iloc[0, 0] = -1.0
    with pytest.raises(ValueError, match=">= 0"):
        fit_clusters(features)


def test_fewer_than_three_columns_still_give_unique_names():
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"recency_days": rng.gamma(1, 10, 200), "frequency": rng.gamma(1, 3, 200)})
    one, _ = fit_clusters(features, k_range=[2], columns=("frequency",))
    assert sorted(one.names().values()) == ["Frequent customers", "One-off customers"]
    # Seven clusters on two features repeat a two-word name; the id tells them apart.
    seven, _ = fit_clusters(features, k_range=[7], columns=("recency_days", "frequency"))
    names = list(seven.names().values())
    assert len(set(names)) == 7 and all(n.endswith(("customers", ")")) for n in names)


@pytest.mark.parametrize("n", [6, 9, 12, 15])
def test_few_customers_only_try_k_that_each_stability_half_holds(n):
    features = _blobs(20, seed=5).iloc[:: 80 // n].iloc[:n]
    clusters, labels = fit_clusters(features, k_range=range(2, 9))
    assert list(clusters.selection["k"]) == list(range(2, n // 2 + 1))
    assert len(labels) == n


def test_too_few_customers_for_any_k_is_a_cluster_data_error():
    features = _blobs(2, seed=6)[:7]
    with pytest.raises(ClusterDataError, match=r"no k in \[4, 5, 6, 7, 8\] fits 7 customers.*2 <= k <= 3"):
        fit_clusters(features)
