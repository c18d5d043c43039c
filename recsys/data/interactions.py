"""Customer and item id maps and the customer x item interaction matrix the models learn from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data import schema

WEIGHTINGS = ("orders", "quantity", "binary", "lines")
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class IdIndex:
    """A fixed, sorted list of external ids and their dense row numbers."""

    ids: np.ndarray

    @classmethod
    def from_values(cls, values: Iterable) -> IdIndex:
        return cls(np.asarray(sorted(set(map(str, values))), dtype=object))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def _lookup(self) -> dict[str, int]:
        cached = self.__dict__.get("_lookup_cache")
        if cached is None:
            cached = {value: row for row, value in enumerate(self.ids)}
            object.__setattr__(self, "_lookup_cache", cached)
        return cached

    def index_of(self, value: str) -> int | None:
        return self._lookup.get(str(value))

    def to_index(self, values: Iterable, missing: int = -1) -> np.ndarray:
        lookup = self._lookup
        return np.fromiter((lookup.get(str(v), missing) for v in values), dtype=np.int64)


@dataclass(frozen=True)
class Interactions:
    """Training data as models see it.

    ``matrix`` is customers x items (CSR, float32) with the chosen weighting; ``transactions`` are the
    rows it was built from, with integer ``customer_idx`` and ``item_idx`` columns added, so that models
    needing time or price (repeat-buy, rankers) read them without re-mapping ids. ``reference_time`` is
    "now" for recency features: the training cutoff, or the last timestamp seen.
    """

    customers: IdIndex
    items: IdIndex
    matrix: sp.csr_matrix
    transactions: pd.DataFrame
    reference_time: pd.Timestamp
    #: how ``matrix`` weighs purchases (one of :data:`WEIGHTINGS`), so that a model rebuilding a matrix
    #: from ``transactions`` (a ranker's earlier history) weighs it the same way
    weighting: str = "orders"

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def n_items(self) -> int:
        return len(self.items)


def build_interactions(
    transactions: pd.DataFrame,
    *,
    weighting: str = "orders",
    items: IdIndex | None = None,
    reference_time: pd.Timestamp | str | None = None,
) -> Interactions:
    """Build an :class:`Interactions` from cleaned transactions.

    ``weighting``: ``orders`` counts distinct orders containing the item (robust to a customer listing
    the same item on several lines of one order), ``quantity`` sums units, ``lines`` counts rows,
    ``binary`` marks any purchase. ``items`` fixes the item index (e.g. the full catalogue) so that items
    nobody bought yet still get a column; rows with items outside it are an error.
    """
    check_weighting(weighting)
    missing = [c for c in (schema.CUSTOMER_ID, schema.ITEM_ID, schema.ORDER_ID) if c not in transactions]
    if missing:
        raise ValueError(f"transactions lack column(s) {missing}; present: {list(transactions.columns)}")
    if transactions[schema.CUSTOMER_ID].isna().any():
        raise ValueError("transactions contain rows without customer_id; clean them first")

    frame = transactions.copy()
    customers = IdIndex.from_values(frame[schema.CUSTOMER_ID].unique())
    items = items if items is not None else IdIndex.from_values(frame[schema.ITEM_ID].unique())
    customer_codes = pd.Categorical(frame[schema.CUSTOMER_ID].astype(str), categories=customers.ids)
    item_codes = pd.Categorical(frame[schema.ITEM_ID].astype(str), categories=items.ids)
    frame["customer_idx"] = np.asarray(customer_codes.codes, dtype=np.int64)
    frame["item_idx"] = np.asarray(item_codes.codes, dtype=np.int64)
    unknown = frame["item_idx"] < 0
    if unknown.any():
        sample = frame.loc[unknown, schema.ITEM_ID].head(5).tolist()
        count = int(unknown.sum())
        raise ValueError(f"{count} rows have item ids outside the given item index, e.g. {sample}")

    matrix = interaction_matrix(frame, weighting, (len(customers), len(items)))
    if reference_time is None:
        reference_time = frame[schema.TIMESTAMP].max() if len(frame) else pd.Timestamp(0)
    return Interactions(customers, items, matrix, frame, pd.Timestamp(reference_time), weighting)


def interaction_matrix(
    frame: pd.DataFrame, weighting: str, shape: tuple[int, int], row_weights: np.ndarray | None = None
) -> sp.csr_matrix:
    """The customers x items matrix (CSR, float32) of ``frame``'s ``customer_idx`` and ``item_idx`` rows
    under ``weighting`` (see :func:`build_interactions`).

    ``row_weights`` (one per row of ``frame``, such as a recency decay) scale each purchase: a line by
    its own weight, an order (``orders``) or a customer's whole history of the item (``binary``) by the
    largest weight among its rows.
    """
    check_weighting(weighting)
    if row_weights is None:
        weights = np.ones(len(frame))
    else:
        weights = np.asarray(row_weights, dtype=np.float64)
        if weights.shape != (len(frame),):
            raise ValueError(f"row_weights has shape {weights.shape}; expected one weight per row ({len(frame)})")
    if weighting in ("orders", "binary"):
        # an order counts once whatever its lines; a binary entry once whatever its orders
        keys = ["customer_idx", "item_idx"] + ([schema.ORDER_ID] if weighting == "orders" else [])
        units = frame[keys].assign(_weight=weights).groupby(keys, sort=False)["_weight"].max().reset_index()
        rows, cols, values = units["customer_idx"], units["item_idx"], units["_weight"].to_numpy()
    elif weighting == "quantity":
        rows, cols = frame["customer_idx"], frame["item_idx"]
        values = frame[schema.QUANTITY].to_numpy(float) * weights
    else:
        rows, cols, values = frame["customer_idx"], frame["item_idx"], weights
    matrix = sp.csr_matrix((np.asarray(values, dtype=np.float32), (np.asarray(rows), np.asarray(cols))), shape=shape)
    matrix.sum_duplicates()
    return matrix


def check_weighting(weighting: str) -> None:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r} is not one of {', '.join(WEIGHTINGS)}")


def recency_weighted_matrix(data: Interactions, half_life_days: float) -> sp.csr_matrix:
    """``data.matrix`` with every purchase weighed by ``0.5 ** (days before data.reference_time /
    half_life_days)``, so that this season's purchases count more than last year's; purchases dated
    after the reference time count fully."""
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    frame = data.transactions
    decay = 0.5 ** (np.clip(days_before(data.reference_time, frame[schema.TIMESTAMP]), 0.0, None) / half_life_days)
    return interaction_matrix(frame, data.weighting, (data.n_customers, data.n_items), decay)


def days_before(reference_time: pd.Timestamp, timestamps: pd.Series) -> np.ndarray:
    """How many days (fractional) each of ``timestamps`` lies before ``reference_time``."""
    return (reference_time - timestamps).dt.total_seconds().to_numpy() / SECONDS_PER_DAY
