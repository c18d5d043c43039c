"""Customer, item and customer x item features for the re-ranker, all measured at one reference time.

Everything is computed from purchases strictly before ``reference_time`` and kept as plain arrays
(dense per customer and per item, sparse per pair and per item description word), so a fitted ranker
saves them beside its trees and scores without the transactions. Missing values are NaN, which
LightGBM routes on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recsys.data import schema
from recsys.data.interactions import Interactions, days_before
from recsys.models.base import arrays_to_sparse, sparse_to_arrays

CUSTOMER_FEATURES = ("c_orders", "c_items", "c_recency_days", "c_tenure_days", "c_spend", "c_order_value",
                     "c_unit_price")
ITEM_FEATURES = ("i_buyers", "i_buyers_30d", "i_buyers_90d", "i_trend", "i_price", "i_age_days",
                 "i_last_sold_days", "i_repeat_share", "i_buyers_7d", "i_buyers_14d", "i_orders_30d", "i_slope",
                 "i_first_share_30d")
PAIR_FEATURES = ("p_orders", "p_days_since", "p_quantity", "p_first_days", "p_price_ratio", "p_due",
                 "p_text_sim")
FEATURE_NAMES = CUSTOMER_FEATURES + ITEM_FEATURES + PAIR_FEATURES


@dataclass(frozen=True)
class FeatureTables:
    """Per-customer and per-item rows, and per-pair sparse matrices (stored value = feature + 1, so
    that an explicit 0 is told apart from "never bought")."""

    customer: np.ndarray
    item: np.ndarray
    pair_orders: sp.csr_matrix
    pair_days_since: sp.csr_matrix
    pair_quantity: sp.csr_matrix
    pair_first_days: sp.csr_matrix
    #: items x description words, TF-IDF rows of unit length (no columns when items have no description)
    item_words: sp.csr_matrix

    def gather(self, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Feature rows in :data:`FEATURE_NAMES` order (float32, NaN where unknown) for the pairs
        ``(customers[j], items[j])``."""
        pairs = [_lookup(matrix, customers, items)
                 for matrix in (self.pair_orders, self.pair_days_since, self.pair_quantity, self.pair_first_days)]
        customer = self.customer[customers]
        item = self.item[items]
        price_ratio = item[:, ITEM_FEATURES.index("i_price")] / customer[:, CUSTOMER_FEATURES.index("c_unit_price")]
        # days since the last purchase over the customer's usual gap for it (tenure / orders):
        # near or above 1 means a repeat is due
        gap = pairs[3] / np.maximum(pairs[0], 1.0)
        due = pairs[1] / np.where(pairs[0] > 1, gap, np.nan)
        text = self._description_similarity(customers, items)
        return np.column_stack([customer, item, *pairs, price_ratio, due, text]).astype(np.float32)

    def _description_similarity(self, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosine between the item's description words and those of every item the customer bought
        (TF-IDF, summed over their distinct items): tells a new item of a customer's usual kind (more
        candle holders) from an unrelated one. NaN without descriptions or purchases."""
        if not self.item_words.shape[1] or not len(items):
            return np.full(len(items), np.nan)
        unique, local = np.unique(customers, return_inverse=True)
        bought = self.pair_orders[unique]
        bought.data[:] = 1.0
        profile = (bought @ self.item_words).toarray()
        norms = np.linalg.norm(profile, axis=1)
        profile /= np.where(norms > 0, norms, np.nan)[:, None]
        # (customers x words) @ (words x items), then one entry per pair: no dense row per candidate
        similarity = (self.item_words @ profile.T).T
        return similarity[local, items]

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"customer": self.customer, "item": self.item}
        for name in _SPARSE:
            arrays.update(sparse_to_arrays(name, getattr(self, name)))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureTables:
        return cls(arrays["customer"], arrays["item"], *(arrays_to_sparse(arrays, name) for name in _SPARSE))


_SPARSE = ("pair_orders", "pair_days_since", "pair_quantity", "pair_first_days", "item_words")


def build_features(data: Interactions) -> FeatureTables:
    """Feature tables from ``data.transactions`` as seen at ``data.reference_time``."""
    frame = data.transactions
    now = data.reference_time
    frame = frame.assign(_days=days_before(now, frame[schema.TIMESTAMP]),
                         _spend=frame[schema.QUANTITY].to_numpy(float) * frame[schema.UNIT_PRICE].to_numpy(float))
    return FeatureTables(_customer_table(frame, data.n_customers), _item_table(frame, data.n_items),
                         *_pair_tables(frame, data.n_customers, data.n_items), _item_words(frame, data.n_items))


def _customer_table(frame: pd.DataFrame, n: int) -> np.ndarray:
    grouped = frame.groupby("customer_idx")
    stats = pd.DataFrame({
        "c_orders": grouped[schema.ORDER_ID].nunique(),
        "c_items": grouped["item_idx"].nunique(),
        "c_recency_days": grouped["_days"].min(),
        "c_tenure_days": grouped["_days"].max(),
        "c_spend": grouped["_spend"].sum(),
    })
    stats["c_order_value"] = stats["c_spend"] / stats["c_orders"]
    stats["c_unit_price"] = grouped[schema.UNIT_PRICE].median()
    return _dense(stats[list(CUSTOMER_FEATURES)], n)


def _item_table(frame: pd.DataFrame, n: int) -> np.ndarray:
    grouped = frame.groupby("item_idx")
    recent = frame[frame["_days"] < 30].groupby("item_idx")
    quarter = frame[frame["_days"] < 90].groupby("item_idx")["customer_idx"].nunique()
    orders_per_buyer = frame.groupby(["item_idx", "customer_idx"])[schema.ORDER_ID].nunique()
    stats = pd.DataFrame({
        "i_buyers": grouped["customer_idx"].nunique(),
        "i_buyers_30d": recent["customer_idx"].nunique(),
        "i_buyers_90d": quarter,
        "i_price": grouped[schema.UNIT_PRICE].median(),
        "i_age_days": grouped["_days"].max(),
        "i_last_sold_days": grouped["_days"].min(),
        "i_repeat_share": (orders_per_buyer > 1).groupby(level=0).mean(),
        "i_buyers_7d": frame[frame["_days"] < 7].groupby("item_idx")["customer_idx"].nunique(),
        "i_buyers_14d": frame[frame["_days"] < 14].groupby("item_idx")["customer_idx"].nunique(),
        "i_orders_30d": recent[schema.ORDER_ID].nunique(),
    })
    counts = ["i_buyers_30d", "i_buyers_90d", "i_buyers_7d", "i_buyers_14d", "i_orders_30d"]
    stats[counts] = stats[counts].fillna(0.0)
    stats["i_trend"] = (stats["i_buyers_30d"] + 1.0) / (stats["i_buyers_90d"] / 3.0 + 1.0)
    # the last week against the last month, both per 30 days: an item taking off right now (new
    # stock, the run-up to a season) is what customers try for the first time
    stats["i_slope"] = (stats["i_buyers_7d"] * 30.0 / 7.0 + 1.0) / (stats["i_buyers_30d"] + 1.0)
    # of the item's buyers in the last 30 days, the share buying it for the first time: an item being
    # discovered differs from one its regulars restock, which i_buyers_30d alone cannot tell apart
    first_days = frame.groupby(["item_idx", "customer_idx"])["_days"].max()
    first_buyers = (first_days < 30).groupby(level=0).sum()
    stats["i_first_share_30d"] = first_buyers / stats["i_buyers_30d"].where(stats["i_buyers_30d"] > 0)
    return _dense(stats[list(ITEM_FEATURES)], n)


def _pair_tables(frame: pd.DataFrame, n_customers: int, n_items: int) -> list[sp.csr_matrix]:
    pairs = frame.groupby(["customer_idx", "item_idx"], sort=True).agg(
        orders=(schema.ORDER_ID, "nunique"), last=("_days", "min"), quantity=(schema.QUANTITY, "sum"),
        first=("_days", "max")).reset_index()
    rows, cols = pairs["customer_idx"].to_numpy(), pairs["item_idx"].to_numpy()
    return [sp.csr_matrix((pairs[column].to_numpy(np.float64) + 1.0, (rows, cols)),
                          shape=(n_customers, n_items), dtype=np.float64)
            for column in ("orders", "last", "quantity", "first")]


def _item_words(frame: pd.DataFrame, n_items: int) -> sp.csr_matrix:
    """TF-IDF of the words (3+ letters) of each item's most frequent description, rows of unit length
    (scikit-learn's smoothed idf over the items that have a description)."""
    if schema.ITEM_NAME not in frame or frame[schema.ITEM_NAME].isna().all():
        return sp.csr_matrix((n_items, 0))
    names = frame.dropna(subset=[schema.ITEM_NAME]).groupby("item_idx")[schema.ITEM_NAME].agg(
        lambda s: s.value_counts().index[0])
    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=r"[a-z]{3,}", dtype=np.float64)
    try:
        weights = vectorizer.fit_transform(names.astype(str)).tocoo()
    except ValueError:  # no description has a word of three letters
        return sp.csr_matrix((n_items, 0))
    rows = names.index.to_numpy(np.int64)[weights.row]
    return sp.csr_matrix((weights.data, (rows, weights.col)), shape=(n_items, weights.shape[1]))


def _dense(stats: pd.DataFrame, n: int) -> np.ndarray:
    table = np.full((n, stats.shape[1]), np.nan, dtype=np.float64)
    table[stats.index.to_numpy(np.int64)] = stats.to_numpy(np.float64)
    return table


def _lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    values = np.asarray(matrix[rows, cols]).ravel() - 1.0
    # stored values were shifted by one; an absent entry reads 0 - 1 = -1, i.e. "never bought"
    return np.where(values < 0, np.nan, values)
