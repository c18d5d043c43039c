"""Customer and item id maps and the customer x item interaction matrix the models learn from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data import schema

WEIGHTINGS = ("orders", "quantity", "binary", "lines")


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
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r} is not one of {', '.join(WEIGHTINGS)}")
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


def interaction_matrix(frame: pd.DataFrame, weighting: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """The customers x items matrix (CSR, float32) of ``frame``'s ``customer_idx`` and ``item_idx`` rows
    under ``weighting`` (see :func:`build_interactions`)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r} is not one of {', '.join(WEIGHTINGS)}")
    if weighting == "orders":
        pairs = frame.drop_duplicates(["customer_idx", "item_idx", schema.ORDER_ID])
        rows, cols, values = pairs["customer_idx"], pairs["item_idx"], np.ones(len(pairs))
    elif weighting == "quantity":
        rows, cols, values = frame["customer_idx"], frame["item_idx"], frame[schema.QUANTITY].to_numpy(float)
    else:
        rows, cols, values = frame["customer_idx"], frame["item_idx"], np.ones(len(frame))
    matrix = sp.csr_matrix((np.asarray(values, dtype=np.float32), (np.asarray(rows), np.asarray(cols))), shape=shape)
    matrix.sum_duplicates()
    if weighting == "binary":
        matrix.data[:] = 1.0
    return matrix
