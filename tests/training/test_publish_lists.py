"""What publishing scores for each customer: the list, and what an "exclude already bought" request reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.item_knn import ItemKNNRecommender
from recsys.models.popularity import PopularityRecommender
from training.bundle import ModelBundle, build_catalog, history_of
from training.publish import PublishOptions, score_bundle

NOW = pd.Timestamp("2024-03-31")
# buyers per item: p 4, q 3, r 2, s 1, t 1 (s before t: ties go to the lower item row)
PURCHASES = [("a", "p"), ("a", "q"), ("b", "p"), ("b", "q"), ("c", "p"), ("c", "q"), ("c", "r"), ("d", "p"),
             ("d", "r"), ("e", "s"), ("e", "t")]


def scored(top_n: int, personal=None):
    frame = pd.DataFrame([(f"o{i}", c, item, NOW - pd.Timedelta(days=i + 1), 1.0, 1.0)
                          for i, (c, item) in enumerate(PURCHASES)],
                         columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP,
                                  schema.QUANTITY, schema.UNIT_PRICE])
    data = build_interactions(frame, reference_time=NOW)
    models = {"personal": (personal or PopularityRecommender()).fit(data), "similar": ItemKNNRecommender().fit(data),
              "popular": PopularityRecommender().fit(data)}
    bundle = ModelBundle(data.customers, data.items, build_catalog(frame, data.items), history_of(data), models)
    return bundle, score_bundle(bundle, PublishOptions(top_n=top_n, batch_size=2))


def item_lists(bundle, blocks):
    lists = {}
    for block in blocks:
        for key, rows in zip(block.keys, block.item_rows, strict=True):
            lists[str(key)] = bundle.items.ids[rows[rows >= 0]].tolist()
    return lists


def test_the_new_items_a_model_ranks_next_make_up_for_the_bought_items_of_a_list():
    bundle, lists = scored(top_n=2)
    assert lists.new_items is None  # popularity orders new items as it orders all items
    assert all(items == ["p", "q"] for items in item_lists(bundle, lists.customers).values())
    # a and b bought p and q: r, s come next; c bought p, q and r; d bought p (and r, outside the
    # list): one new item makes up for p; e bought neither listed item and is not scored again
    assert item_lists(bundle, lists.beyond_ranked) == {"a": ["r", "s"], "b": ["r", "s"], "c": ["s", "t"],
                                                       "d": ["s"], "e": []}
    assert {block.source for block in lists.beyond_ranked} == {"popularity"}


def test_a_list_of_one_bought_item_is_made_up_for_by_the_next_new_item():
    bundle, lists = scored(top_n=1)
    # everyone but e bought p, the one listed item
    assert item_lists(bundle, lists.beyond_ranked) == {"a": ["r"], "b": ["r"], "c": ["s"], "d": ["q"], "e": []}


class SlotSourcedPopularity(PopularityRecommender):
    """Popularity naming a source per slot, as a blend of generators would."""

    def recommend_with_sources(self, customer_rows, k, *, exclude_seen=False):
        items, scores = self.recommend(customer_rows, k, exclude_seen=exclude_seen)
        return items, scores, np.where(items % 2 == 0, "even", "odd").astype(object)


def test_the_items_beyond_a_list_keep_the_source_of_each_slot():
    bundle, lists = scored(top_n=2, personal=SlotSourcedPopularity())
    beyond = {str(key): [(bundle.items.ids[row], source) for row, source in zip(rows, sources, strict=True)
                         if row >= 0]
              for block in lists.beyond_ranked for key, rows, sources in zip(block.keys, block.item_rows,
                                                                              block.source, strict=True)}
    # item rows: p 0, q 1, r 2, s 3, t 4; c's s and t come from ranking c again without its purchases
    assert beyond["a"] == [("r", "even"), ("s", "odd")] and beyond["c"] == [("s", "odd"), ("t", "even")]
    assert beyond["e"] == []
