"""The trained bundle: every model a snapshot needs, with its id maps and catalogue, as plain files.

Layout of the folder (logged to MLflow as the ``bundle`` artifact and registered as a model version)::

    bundle.json        roles -> model file, reference time, data summary
    customers.npy      customer ids by row (unicode, no pickle)
    items.npy          item ids by row
    catalog.json       item names, categories, prices by row
    history.npz        customers x items purchase counts (CSR parts)
    <role>.npz         one model per role, written by Recommender.save
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data import schema
from recsys.data.interactions import IdIndex, Interactions
from recsys.models.base import Recommender
from recsys.models.registry import load_model
from recsys.records import Catalog

BUNDLE_FORMAT = 1


@dataclass
class ModelBundle:
    customers: IdIndex
    items: IdIndex
    catalog: Catalog
    history: sp.csr_matrix
    models: dict[str, Recommender]
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "customers.npy", self.customers.ids.astype(str), allow_pickle=False)
        np.save(folder / "items.npy", self.items.ids.astype(str), allow_pickle=False)
        (folder / "catalog.json").write_bytes(self.catalog.to_bytes())
        np.savez(folder / "history.npz", data=self.history.data, indices=self.history.indices,
                 indptr=self.history.indptr, shape=np.asarray(self.history.shape))
        files = {role: model.save(folder / f"{role}.npz").name for role, model in self.models.items()}
        manifest = {"format": BUNDLE_FORMAT, "models": files, "info": self.info}
        (folder / "bundle.json").write_text(json.dumps(manifest, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        manifest = json.loads((folder / "bundle.json").read_text())
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{folder}/bundle.json has format {manifest.get('format')}, expected {BUNDLE_FORMAT}")
        with np.load(folder / "history.npz", allow_pickle=False) as parts:
            history = sp.csr_matrix((parts["data"], parts["indices"], parts["indptr"]),
                                    shape=tuple(parts["shape"]))
        models = {role: load_model(folder / name) for role, name in manifest["models"].items()}
        return cls(
            customers=IdIndex(np.load(folder / "customers.npy", allow_pickle=False).astype(object)),
            items=IdIndex(np.load(folder / "items.npy", allow_pickle=False).astype(object)),
            catalog=Catalog.from_bytes((folder / "catalog.json").read_bytes()),
            history=history,
            models=models,
            info=manifest.get("info", {}),
        )


def build_catalog(transactions: pd.DataFrame, items: IdIndex) -> Catalog:
    """Latest known name, category and median price of every item, by item row."""
    frame = transactions.sort_values(schema.TIMESTAMP)
    by_item = frame.groupby(schema.ITEM_ID)
    names = by_item[schema.ITEM_NAME].last() if schema.ITEM_NAME in frame else None
    categories = by_item[schema.CATEGORY].last() if schema.CATEGORY in frame else None
    prices = by_item[schema.UNIT_PRICE].median()

    def column(series: pd.Series | None) -> list:
        if series is None:
            return [None] * len(items)
        values = series.reindex(items.ids)
        return [None if pd.isna(v) else v for v in values.tolist()]

    return Catalog(
        item_ids=[str(i) for i in items.ids],
        names=[None if v is None else str(v) for v in column(names)],
        categories=[None if v is None else str(v) for v in column(categories)],
        prices=[None if v is None else round(float(v), 4) for v in column(prices)],
    )


def history_of(data: Interactions) -> sp.csr_matrix:
    return data.matrix.tocsr().astype(np.float32)
