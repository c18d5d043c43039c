"""Similar items from product text, for items nobody has bought yet (cold items)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recsys.data import schema
from recsys.data.interactions import IdIndex
from recsys.models.base import (
    NotFittedError,
    arrays_to_sparse,
    check_rows,
    exclude_self,
    npz_path,
    sparse_scores,
    sparse_to_arrays,
    top_k,
)

FORMAT_VERSION = 1
ANALYZERS = ("word", "char_wb")


class TfidfSimilarItems:
    """Cosine similarity of TF-IDF vectors of item texts (names, categories).

    Rows are positions in the ``item_ids`` given to :meth:`fit`; pass ``Interactions.items.ids`` (or the
    catalogue's index) to make them the same rows the other models use. Results follow the model
    convention: ``(n, k)`` item rows padded with ``-1`` and cosines padded with ``-inf``; items sharing
    no term with the query are never returned.
    """

    name = "tfidf"

    def __init__(
        self,
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        max_features: int | None = None,
    ) -> None:
        if analyzer not in ANALYZERS:
            raise ValueError(f"analyzer={analyzer!r} is not one of {', '.join(ANALYZERS)}")
        self.analyzer = analyzer
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.max_features = max_features
        self.item_ids: np.ndarray | None = None
        self.vectors: sp.csr_matrix | None = None

    def get_params(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, "ngram_range": list(self.ngram_range), "min_df": self.min_df,
                "max_features": self.max_features}

    def fit(self, item_ids: Sequence[str], texts: Sequence[str | None]) -> TfidfSimilarItems:
        if len(item_ids) != len(texts):
            raise ValueError(f"{len(item_ids)} item ids but {len(texts)} texts")
        vectorizer = TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, min_df=self.min_df,
                                     max_features=self.max_features, lowercase=True, sublinear_tf=True)
        cleaned = ["" if text is None or pd.isna(text) else str(text) for text in texts]
        try:
            self.vectors = vectorizer.fit_transform(cleaned).tocsr().astype(np.float32)
        except ValueError as exc:  # every text empty, or min_df pruned every term
            raise ValueError(f"no usable terms in the item texts: {exc}") from exc
        self.item_ids = np.asarray([str(i) for i in item_ids], dtype=str)
        return self

    def rows_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows of ``item_ids`` in the fitted order; ``-1`` for ids it was not fitted on."""
        self._check_fitted()
        lookup = {item: row for row, item in enumerate(self.item_ids)}
        return np.fromiter((lookup.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        item_rows = check_rows(item_rows, len(self.item_ids), "item")
        # the vectorizer l2-normalises each row, so the dot product is the cosine
        cosine = sparse_scores(self.vectors[item_rows] @ self.vectors.T)
        return top_k(exclude_self(cosine, item_rows), k)

    def save(self, path: str | Path) -> Path:
        self._check_fitted()
        path = Path(path)
        meta = {"format": FORMAT_VERSION, "model": self.name, "params": self.get_params()}
        np.savez(path, meta=np.array([json.dumps(meta)]), item_ids=self.item_ids,
                 **sparse_to_arrays("vectors", self.vectors))
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> TfidfSimilarItems:
        path = npz_path(path)  # save() adds the suffix, as Recommender.save does
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"][0]))
            if meta.get("model") != cls.name or meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path} is not a format-{FORMAT_VERSION} {cls.name} model")
            model = cls(**meta["params"])
            model.item_ids = archive["item_ids"]
            model.vectors = arrays_to_sparse(dict(archive), "vectors")
        return model

    def _check_fitted(self) -> None:
        if self.vectors is None:
            raise NotFittedError("TfidfSimilarItems is not fitted; call fit() first")


def item_texts(transactions: pd.DataFrame, items: IdIndex) -> list[str]:
    """One text per item of ``items``: its most frequent name and category in ``transactions``."""
    columns = [c for c in (schema.ITEM_NAME, schema.CATEGORY) if c in transactions]
    if not columns:
        return [""] * len(items)
    frame = transactions[[schema.ITEM_ID, *columns]].astype({schema.ITEM_ID: str})
    parts = []
    for column in columns:
        counts = frame.dropna(subset=[column]).groupby([schema.ITEM_ID, column]).size().rename("n")
        # stable sort after the grouped (alphabetical) order: ties go to the alphabetically first text
        most_common = (counts.reset_index().sort_values("n", ascending=False, kind="stable")
                       .drop_duplicates(schema.ITEM_ID).set_index(schema.ITEM_ID)[column])
        parts.append(most_common.reindex(items.ids).fillna("").astype(str))
    return [" ".join(p for p in row if p) for row in zip(*parts, strict=True)]
