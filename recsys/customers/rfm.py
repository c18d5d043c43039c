"""RFM scores (1-5 quintiles) and the eleven standard named segments.

Scores. Each of recency (days since the last purchase), frequency (orders) and monetary (total spend)
becomes a score from 1 to 5 by its quintile among the customers scored together: customers are put in
one strict order, worst first, and the customer at 0-based position ``i`` of ``n`` gets
``1 + floor(5 * i / n)``. Each score therefore holds ``n / 5`` customers (one more or less), even when
many customers share a value (a third of a shop's customers have exactly one order, which would
otherwise leave a quintile empty). Recency is reversed: the most recent customers score 5.

Ties are broken by the other two measures, then by customer id, so equal values are ordered by how
good the customer is on the rest and the answer never depends on row order:

=============  ==========================================  =============================================
score          ordered by (worst first)                    ties broken by (worst first)
=============  ==========================================  =============================================
recency        more days since the last purchase           fewer orders, then less spend, then id
frequency      fewer orders                                less spend, then more days since last, then id
monetary       less total spend                            fewer orders, then more days since last, then id
=============  ==========================================  =============================================

Segments. The widely used R x FM grid (the "RFM segments" heat map of marketing handbooks and the
Putler / Rsquared Academy tables): ``FM = ceil((F + M) / 2)`` joins frequency and spend, and the
segment is read from the recency row and FM column. Every (R, F, M) of the 125 maps to exactly one
segment:

======  ===================  ===================  ===================  ===================  ===================
R \\ FM  1                    2                    3                    4                    5
======  ===================  ===================  ===================  ===================  ===================
5       New Customers        Potential Loyalists  Potential Loyalists  Champions            Champions
4       Promising            Potential Loyalists  Potential Loyalists  Loyal Customers      Loyal Customers
3       About to Sleep       About to Sleep       Need Attention       Loyal Customers      Loyal Customers
2       Hibernating          Hibernating          At Risk              At Risk              Can't Lose Them
1       Lost                 Hibernating          At Risk              At Risk              Can't Lose Them
======  ===================  ===================  ===================  ===================  ===================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"),
    3: ("About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"),
    2: ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),
    1: ("Lost", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),
}


def net_spend(features: pd.DataFrame) -> pd.Series:
    """Spend net of returns, floored at 0: what the M score ranks. A customer who sent everything back
    spent nothing."""
    returned = features["return_value"].fillna(0.0) if "return_value" in features.columns else 0.0
    return (features["monetary_total"] - returned).clip(lower=0.0)


# Name -> definition, in the order segments are reported (best first).
SEGMENTS: dict[str, str] = {
    "Champions": "bought very recently (R=5), buy often and spend the most (FM 4-5)",
    "Loyal Customers": "recent (R 3-4), frequent, high-spending buyers (FM 4-5)",
    "Potential Loyalists": "recent (R 4-5) with average frequency and spend (FM 2-3)",
    "New Customers": "bought very recently (R=5) but rarely and little so far (FM=1)",
    "Promising": "recent (R=4) but rare, low-spending buyers (FM=1)",
    "Need Attention": "average on everything (R=3, FM=3)",
    "About to Sleep": "below-average recency (R=3) and low frequency and spend (FM 1-2)",
    "At Risk": "used to buy often and spend well (FM 3-4) but not for a long time (R 1-2)",
    "Can't Lose Them": "were among the best buyers (FM=5) but have not bought for a long time (R 1-2)",
    "Hibernating": "long since the last purchase (R 1-2), few orders, low spend (FM 1-2), except R=1 with FM=1",
    "Lost": "lowest recency, frequency and spend (R=1, FM=1)",
}

SCORE_COLUMNS = ("recency_score", "frequency_score", "monetary_score")


def fm_score(frequency_score, monetary_score):
    """``ceil((F + M) / 2)``: the combined frequency-and-spend score of the segment grid."""
    return (np.asarray(frequency_score) + np.asarray(monetary_score) + 1) // 2


def segment_of(recency_score: int, frequency_score: int, monetary_score: int) -> str:
    """The named segment of one (R, F, M) triple, each 1-5."""
    for name, score in zip(("recency", "frequency", "monetary"),
                           (recency_score, frequency_score, monetary_score), strict=True):
        if int(score) != score or not 1 <= score <= 5:
            raise ValueError(f"{name} score must be a whole number from 1 to 5, got {score}")
    return SEGMENT_GRID[int(recency_score)][int(fm_score(frequency_score, monetary_score)) - 1]


def quintile_scores(keys: list[np.ndarray]) -> np.ndarray:
    """1-5 by position in the strict order of ``keys`` (first key primary, all ascending = worst first)."""
    n = len(keys[0])
    order = np.lexsort(tuple(reversed(keys)))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    return (1 + (5 * position) // max(n, 1)).astype(np.int64)


def rfm_scores(features: pd.DataFrame) -> pd.DataFrame:
    """R, F, M and FM scores and the segment of each customer.

    ``features`` is indexed by customer id with ``recency_days``, ``frequency`` and ``monetary_total``
    (as :func:`recsys.customers.features.customer_features` returns). M ranks spend net of returns when
    ``features`` has ``return_value`` (floored at 0): a customer who sent everything back spent nothing,
    and is no top spender. The result has the same index and
    ``recency_score``, ``frequency_score``, ``monetary_score``, ``fm_score``, ``rfm_cell`` (e.g. "545")
    and ``segment``.
    """
    missing = [c for c in ("recency_days", "frequency", "monetary_total") if c not in features.columns]
    if missing:
        raise ValueError(f"features lack columns {missing}")
    recency = features["recency_days"].to_numpy(dtype=np.float64)
    frequency = features["frequency"].to_numpy(dtype=np.float64)
    monetary = net_spend(features).to_numpy(dtype=np.float64)
    if not (np.isfinite(recency).all() and np.isfinite(frequency).all() and np.isfinite(monetary).all()):
        raise ValueError("recency_days, frequency and monetary_total must be finite")
    # Position of each id in sorted order: a numeric key that orders ids without comparing strings twice.
    ids = pd.Index(features.index.astype(str))
    id_rank = np.argsort(np.argsort(ids.to_numpy(), kind="stable"), kind="stable")
    # Worst first: more days since the last purchase is worse, so negate recency.
    r = quintile_scores([-recency, frequency, monetary, id_rank])
    f = quintile_scores([frequency, monetary, -recency, id_rank])
    m = quintile_scores([monetary, frequency, -recency, id_rank])
    fm = fm_score(f, m)
    out = pd.DataFrame({"recency_score": r, "frequency_score": f, "monetary_score": m, "fm_score": fm},
                       index=features.index)
    out["rfm_cell"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
    grid = np.array([SEGMENT_GRID[score] for score in (1, 2, 3, 4, 5)], dtype=object)
    out["segment"] = grid[r - 1, fm - 1] if len(out) else pd.Series(dtype=object)
    return out


def segment_summary(scores: pd.DataFrame, monetary: pd.Series) -> list[dict]:
    """One dict per segment (all eleven, in :data:`SEGMENTS` order, empty ones with size 0).

    Keys: ``name``, ``definition``, ``size``, ``share`` (of customers), ``revenue`` (sum of ``monetary``),
    ``revenue_share``, ``mean_recency_score``, ``mean_frequency_score``, ``mean_monetary_score``.
    """
    monetary = monetary.reindex(scores.index)
    total_customers = len(scores)
    total_revenue = float(monetary.sum())
    out = []
    for name, definition in SEGMENTS.items():
        members = scores["segment"] == name
        size = int(members.sum())
        revenue = float(monetary[members].sum())
        out.append({
            "name": name,
            "definition": definition,
            "size": size,
            "share": size / total_customers if total_customers else 0.0,
            "revenue": revenue,
            "revenue_share": revenue / total_revenue if total_revenue > 0 else 0.0,
            **{f"mean_{c}": (float(scores.loc[members, c].mean()) if size else None) for c in SCORE_COLUMNS},
        })
    return out
