"""Per-customer batch steps on a Dask DataFrame, for a shop whose transactions outgrow one machine.

A step that summarises each customer from that customer's rows alone (customer features, the BG/NBD
purchase summary) gives the same answer on any split of the transactions that keeps every customer's
rows together. So the transactions are hash-partitioned by customer id (one shuffle), the library's
pandas step runs on each partition where the data lives, and only the per-customer table comes back:
what has to fit on one machine is one row per customer, not the transaction history.

Needs the ``scale`` extra (``pip install -e ".[scale]"``). Dask runs the partitions on whatever
scheduler is active: a ``dask.distributed.Client`` for a cluster, else local threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from recsys.data import schema


def per_customer(
    step: Callable[..., pd.DataFrame],
    transactions: Any,
    *args: Any,
    frames: Mapping[str, Any] | None = None,
    npartitions: int | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """``step(part, *args, **frames_parts, **kwargs)`` on every customer partition of ``transactions`` (a
    Dask DataFrame), the results concatenated and sorted by their index, as ``step`` run on all the rows
    at once would return them.

    ``step`` must read nothing but the rows of the customers it is given, and index its result by
    customer id. ``frames`` are further Dask DataFrames keyed by ``step``'s argument names (the returns
    of :func:`recsys.customers.features.customer_features`), partitioned the same way so that each call
    sees the same customers in all of them. ``npartitions`` defaults to that of ``transactions``.
    """
    import dask.dataframe as dd

    frames = dict(frames or {})
    for name, frame in {"transactions": transactions, **frames}.items():
        if not isinstance(frame, dd.DataFrame):
            raise TypeError(f"{name} must be a dask DataFrame, got {type(frame).__name__}")
        if schema.CUSTOMER_ID not in frame.columns:
            raise ValueError(f"{name} lack the column {schema.CUSTOMER_ID!r}; present: {list(frame.columns)}")
    n = npartitions or transactions.npartitions
    if n < 1:
        raise ValueError(f"npartitions must be >= 1, got {n}")
    # The same ids must hash alike in every frame, so their id columns share one dtype.
    id_dtype = transactions[schema.CUSTOMER_ID].dtype
    parts = [frame.astype({schema.CUSTOMER_ID: id_dtype}).shuffle(on=schema.CUSTOMER_ID, npartitions=n)
             for frame in (transactions, *frames.values())]
    names = list(frames)

    def on_partition(part: pd.DataFrame, *aligned: pd.DataFrame) -> pd.DataFrame:
        return step(part, *args, **dict(zip(names, aligned, strict=True)), **kwargs)

    meta = on_partition(*(part._meta for part in parts))
    result = dd.map_partitions(on_partition, *parts, meta=meta, align_dataframes=False).compute()
    return result.sort_index(kind="stable")
