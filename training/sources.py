"""Where training data comes from: the synthetic shop, a file in the documented schema, or an adapter."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.data import generate_transactions, load_online_retail, load_transactions

FORMATS = ("canonical", "online-retail")
#: the fewest items the generator accepts: it gives each of its categories (as many as its default
#: ``n_categories``, which load_source keeps) at least one item
SYNTHETIC_MIN_ITEMS: int = inspect.signature(generate_transactions).parameters["n_categories"].default


@dataclass(frozen=True)
class DataSource:
    """``path`` is a CSV/Parquet file, or ``"synthetic"`` for the built-in generator."""

    path: str = "synthetic"
    format: str = "canonical"
    synthetic_customers: int = 5_000
    synthetic_items: int = 800
    seed: int = 0

    def describe(self) -> dict[str, str | int]:
        if self.path == "synthetic":
            return {"source": "synthetic", "customers": self.synthetic_customers,
                    "items": self.synthetic_items, "seed": self.seed}
        return {"source": str(self.path), "format": self.format}


def load_source(source: DataSource) -> pd.DataFrame:
    if source.format not in FORMATS:
        raise ValueError(f"data format {source.format!r} is not one of {', '.join(FORMATS)}")
    if source.path == "synthetic":
        return generate_transactions(n_customers=source.synthetic_customers,
                                     n_items=source.synthetic_items, seed=source.seed)
    path = Path(source.path)
    if not path.exists():
        raise FileNotFoundError(f"training data file {path} does not exist")
    if source.format == "online-retail":
        return load_online_retail(path)
    return load_transactions(path)
