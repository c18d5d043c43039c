"""Audience files for marketers: a lookalike audience of a seed list, from a shop's transactions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.customers.lookalike import lookalikes
from recsys.data import CleaningRules, clean_transactions, schema
from recsys.data.interactions import build_interactions
from recsys.data.loaders import is_csv_file
from recsys.models.neighbours import nearest_neighbours
from recsys.spreadsheet_cells import formula_safe, unescape_formula
from training.sources import DataSource, load_source

AUDIENCE_COLUMNS = ("customer_id", "rank", "seed_share", "seed_neighbours")


class AudienceInputError(ValueError):
    """A seed file without customer ids, or seeds of which none bought anything in the data."""


@dataclass(frozen=True)
class LookalikeAudience:
    audience: pd.DataFrame  # AUDIENCE_COLUMNS, best first
    seeds_found: int
    seeds_unknown: list[str]  # seed ids with no purchase in the cleaned data, in file order
    reachable: int  # customers outside the seeds with a seed among their neighbours


def read_seed_ids(path: Path) -> list[str]:
    """The distinct ``customer_id`` values of a CSV or Parquet file (a segment export, say), in file order;
    a ``'`` that an export put before an id starting with ``=``, ``+``, ``-`` or ``@`` is taken off."""
    if not path.exists():
        raise FileNotFoundError(f"seed file {path} does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False) if is_csv_file(path) else pd.read_parquet(path)
    if schema.CUSTOMER_ID not in frame:
        raise AudienceInputError(f"{path}: no {schema.CUSTOMER_ID!r} column; columns: {list(frame.columns)}")
    ids = [unescape_formula(str(value).strip()) for value in frame[schema.CUSTOMER_ID]]
    blank = [i for i, value in enumerate(ids) if not value]
    if blank:
        rows = ", ".join(str(i + 1) for i in blank[:5])
        raise AudienceInputError(f"{path}: {len(blank)} row(s) without a {schema.CUSTOMER_ID} "
                                 f"(data rows {rows}, counting from 1 after the header)")
    if not ids:
        raise AudienceInputError(f"{path}: no seed customers (the file has a header and no rows)")
    return list(dict.fromkeys(ids))


def lookalike_audience(source: DataSource, cleaning: CleaningRules, seed_ids: list[str], size: int,
                       neighbours: int = 50, num_threads: int = 0) -> LookalikeAudience:
    """The ``size`` customers of ``source`` most like ``seed_ids``, by what they bought (cosine
    customer-kNN over the cleaned transactions, orders weighting)."""
    data = build_interactions(clean_transactions(load_source(source), cleaning).transactions)
    rows = data.customers.to_index(seed_ids)
    unknown = [customer for customer, row in zip(seed_ids, rows, strict=True) if row < 0]
    known = rows[rows >= 0]
    if not len(known):
        raise AudienceInputError(f"none of the {len(seed_ids)} seed customers bought anything in the "
                                 f"cleaned data (first ids: {', '.join(seed_ids[:5])})")
    similarity = nearest_neighbours(data.matrix, "cosine", neighbours, num_threads=num_threads)
    found = lookalikes(similarity, known, size)
    audience = pd.DataFrame({
        "customer_id": formula_safe([str(c) for c in data.customers.ids[found.rows]]),
        "rank": range(1, len(found.rows) + 1),
        "seed_share": found.seed_share.round(6),
        "seed_neighbours": found.seed_neighbours,
    }, columns=list(AUDIENCE_COLUMNS))
    return LookalikeAudience(audience, len(known), unknown, found.reachable)
