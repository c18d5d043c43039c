"""Turn validated order lines into the purchases models learn from, accounting for every dropped row.

Rules, applied in this order; a row is counted under the FIRST rule it fails, so the counts add up:
``rows_in == rows_out + sum(dropped.values())``.

1. ``missing_customer``: the customer id is null or empty. Such lines cannot be attributed to anyone
   (guest checkouts, manual adjustments).
2. ``cancellation``: the order id starts with ``cancellation_prefix`` ("C" in Online Retail). These are
   returns and cancellations, not demand.
3. ``non_positive_quantity``: quantity <= 0 (stock adjustments, damages).
4. ``non_positive_price``: unit price <= 0 (free samples, bad-debt write-offs).
5. ``non_product_item``: the item id is in ``non_product_items`` (postage, discounts, fees, manual
   entries): they are not products anyone would want recommended.

A disabled rule drops nothing and keeps its key with count 0, so metric names stay stable across runs.

Returns are not thrown away: the rows dropped as cancellations that have a customer id and are not
non-product items come back in ``CleaningResult.returns`` with positive quantities, for customer
features such as return rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from recsys.data import schema

# Online Retail stock codes that are charges, fees or adjustments rather than products.
DEFAULT_NON_PRODUCT_ITEMS: frozenset[str] = frozenset(
    {"POST", "D", "M", "BANK CHARGES", "AMAZONFEE", "DOT", "CRUK", "C2", "PADS", "S", "B"}
)

REASONS: tuple[str, ...] = (
    "missing_customer",
    "cancellation",
    "non_positive_quantity",
    "non_positive_price",
    "non_product_item",
)


@dataclass(frozen=True)
class CleaningRules:
    """Which rows ``clean_transactions`` drops; see the module docstring for the order of the rules.

    Attributes:
        drop_missing_customer: drop lines whose customer id is null or empty.
        drop_cancellations: drop lines whose order id starts with ``cancellation_prefix``.
        cancellation_prefix: the order-id prefix that marks a cancellation or return; must not be empty.
        drop_non_positive_quantity: drop lines with quantity <= 0.
        drop_non_positive_price: drop lines with unit price <= 0.
        non_product_items: item ids that are not products (postage, fees, ...); an empty set keeps all.
    """

    drop_missing_customer: bool = True
    drop_cancellations: bool = True
    cancellation_prefix: str = "C"
    drop_non_positive_quantity: bool = True
    drop_non_positive_price: bool = True
    non_product_items: frozenset[str] = field(default=DEFAULT_NON_PRODUCT_ITEMS)

    def __post_init__(self) -> None:
        if not self.cancellation_prefix:
            raise ValueError("cancellation_prefix must not be empty: every order id would be a cancellation")
        if isinstance(self.non_product_items, str):
            raise TypeError("non_product_items must be a set of item ids, not a single string")
        object.__setattr__(self, "non_product_items", frozenset(self.non_product_items))


@dataclass(frozen=True)
class CleaningReport:
    """How many rows came in, how many were kept, and how many each rule dropped (in ``REASONS`` order)."""

    rows_in: int
    rows_out: int
    dropped: Mapping[str, int]
    returns: int

    def __post_init__(self) -> None:
        if tuple(self.dropped) != REASONS:
            raise ValueError(f"dropped must have the keys {REASONS} in that order, got {tuple(self.dropped)}")
        if self.rows_in != self.rows_out + sum(self.dropped.values()):
            raise ValueError(
                f"counts do not add up: {self.rows_in} != {self.rows_out} + {dict(self.dropped)}"
            )
        object.__setattr__(self, "dropped", MappingProxyType({k: int(v) for k, v in self.dropped.items()}))

    def to_dict(self) -> dict[str, int]:
        """Flat ``{name: int}`` (``rows_in``, ``rows_out``, ``dropped_<reason>``..., ``returns``)."""
        out = {"rows_in": self.rows_in, "rows_out": self.rows_out}
        out.update({f"dropped_{reason}": count for reason, count in self.dropped.items()})
        out["returns"] = self.returns
        return out

    def __str__(self) -> str:
        parts = ", ".join(f"{reason} {count:,}" for reason, count in self.dropped.items() if count)
        return (
            f"cleaning kept {self.rows_out:,} of {self.rows_in:,} rows; dropped {parts or 'nothing'}; "
            f"{self.returns:,} return rows kept aside"
        )


@dataclass(frozen=True)
class CleaningResult:
    """Kept purchase lines (index reset), return lines (positive quantities) and the report."""

    transactions: pd.DataFrame
    returns: pd.DataFrame
    report: CleaningReport


def clean_transactions(frame: pd.DataFrame, rules: CleaningRules = CleaningRules()) -> CleaningResult:
    """Apply ``rules`` to a frame in the canonical schema (see ``validate_transactions``)."""
    missing = [
        c
        for c in (schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.QUANTITY, schema.UNIT_PRICE)
        if c not in frame.columns
    ]
    if missing:
        raise ValueError(f"clean_transactions needs columns {missing}; got {list(frame.columns)}")
    n = len(frame)
    customer = frame[schema.CUSTOMER_ID].astype("string").str.strip()
    no_customer = _flag(customer.isna() | (customer == ""))
    cancellation = _flag(frame[schema.ORDER_ID].astype("string").str.startswith(rules.cancellation_prefix))
    quantity = frame[schema.QUANTITY].to_numpy(dtype="float64", na_value=np.nan)
    price = frame[schema.UNIT_PRICE].to_numpy(dtype="float64", na_value=np.nan)
    non_product = _flag(frame[schema.ITEM_ID].isin(rules.non_product_items))

    checks = (
        (rules.drop_missing_customer, no_customer),
        (rules.drop_cancellations, cancellation),
        (rules.drop_non_positive_quantity, ~(quantity > 0)),
        (rules.drop_non_positive_price, ~(price > 0)),
        (bool(rules.non_product_items), non_product),
    )
    remaining = np.ones(n, dtype=bool)
    dropped: dict[str, int] = {}
    first_failure: dict[str, np.ndarray] = {}
    for reason, (enabled, fails) in zip(REASONS, checks, strict=True):
        hit = remaining & fails if enabled else np.zeros(n, dtype=bool)
        first_failure[reason] = hit
        dropped[reason] = int(hit.sum())
        remaining &= ~hit

    transactions = frame.loc[remaining].reset_index(drop=True)
    is_return = first_failure["cancellation"] & ~no_customer & ~non_product
    returns = frame.loc[is_return].reset_index(drop=True)
    returns[schema.QUANTITY] = returns[schema.QUANTITY].abs()
    report = CleaningReport(rows_in=n, rows_out=len(transactions), dropped=dropped, returns=len(returns))
    return CleaningResult(transactions=transactions, returns=returns, report=report)


def _flag(values: pd.Series) -> np.ndarray:
    return values.fillna(False).to_numpy(dtype=bool)
