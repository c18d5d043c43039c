"""A hand-made snapshot whose every answer is known, written through the real publishing writer."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.records import Catalog
from training.publish import RankedBlock, SnapshotLists, write_snapshot

ITEMS = ["A", "B", "C", "D", "E"]
CATALOG = Catalog(ITEMS, [f"Item {i}" for i in ITEMS], ["mugs", "mugs", "bags", "bags", "toys"],
                  [1.0, 2.0, 3.0, 4.0, 5.0])


FIRST_CUSTOMER_BOUGHT = [0, 1]  # c1 (or whoever comes first) bought A and B


def hand_made_lists(customer_lists: dict[str, list[int]] | None = None,
                    new_item_lists: dict[str, list[int]] | None = None,
                    beyond_lists: dict[str, list[int]] | None = None) -> SnapshotLists:
    """c1 gets B, C, A; c2 gets only E (so its answer is filled from popular); popular is D, A, B, C, E.
    Without ``new_item_lists`` the records hold no new-items list, as for a model whose full list orders
    new items too; ``beyond_lists`` are then the new items such a model ranks after each list."""
    customer_lists = customer_lists or {"c1": [1, 2, 0], "c2": [4]}
    ids = np.asarray(list(customer_lists), dtype=object)
    similar = RankedBlock(np.asarray(ITEMS, dtype=object),
                          np.asarray([[1, 2], [0, 2], [3, 1], [2, 0], [0, 1]]),
                          np.asarray([[0.8, 0.1]] * 5, dtype=np.float32), "item_knn")
    popular = RankedBlock(np.asarray(["popular"], dtype=object), np.asarray([[3, 0, 1, 2, 4]]),
                          np.asarray([[50, 40, 30, 20, 10]], dtype=np.float32), "popular")
    trending = RankedBlock(np.asarray(["trending"], dtype=object), np.asarray([[4, 3]]),
                           np.asarray([[5, 4]], dtype=np.float32), "trending")
    history = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], FIRST_CUSTOMER_BOUGHT)), shape=(len(ids), len(ITEMS)))
    new_items = None if new_item_lists is None else [_block(ids, new_item_lists)]
    beyond = None if beyond_lists is None else [_block(ids, beyond_lists)]
    return SnapshotLists(CATALOG, [_block(ids, customer_lists)], new_items, beyond, [similar],
                         {"popular": popular, "trending": trending}, ids, history,
                         ["als", "item_knn", "popular", "trending", "rule"])


def _block(ids: np.ndarray, lists: dict[str, list[int]]) -> RankedBlock:
    rows = np.full((len(ids), 3), -1)
    scores = np.full((len(ids), 3), -np.inf, dtype=np.float32)
    for i, customer in enumerate(ids):
        items = lists.get(customer, [])
        rows[i, : len(items)] = items
        scores[i, : len(items)] = np.linspace(0.9, 0.5, len(items))
    return RankedBlock(ids, rows, scores, "als")


def publish_hand_made(store, version: str = "7", customer_lists=None, new_item_lists=None, beyond_lists=None):
    model = {"name": "recsys-recommender", "version": version, "run_id": "run-" + version, "alias": "champion"}
    return write_snapshot(hand_made_lists(customer_lists, new_item_lists, beyond_lists), store, {"model": model})
