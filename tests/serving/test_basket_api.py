"""Basket complements on the hand-made snapshot, whose similar lists make every answer known:
A -> B .8, C .1; B -> A .8, C .1; C -> D .8, B .1; D -> C .8, A .1; E -> A .8, B .1; popular D, A, B, C, E;
categories A, B mugs, C, D bags, E toys; c1 bought A and B."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from feature_store import open_store
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.snapshot_fixture import publish_hand_made


@pytest.fixture
def client(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_store(url, prefix="t")
    publish_hand_made(store)
    store.close()
    settings = ServingSettings(store_url=url, store_prefix="t", snapshot_refresh_seconds=0,
                               limits_url=f"sqlite:///{tmp_path / 'limits.sqlite'}")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def complements(client, items, **params):
    response = client.get("/v1/baskets/complements", params={"items": items, "k": 3, **params})
    assert response.status_code == 200, response.text
    return response.json()


def ids(body):
    return [item["item_id"] for item in body["items"]]


def test_an_item_that_goes_with_several_basket_items_comes_first(client):
    body = complements(client, ["A", "B"])
    # C is similar to both (.1 + .1); the rest comes from popular, without the basket's own A and B
    assert ids(body) == ["C", "D", "E"]
    assert [(i["score"], i["source"]) for i in body["items"]] == [(0.2, "item_knn"), (50.0, "popular"),
                                                                   (10.0, "popular")]
    assert (body["source"], body["fallback_reason"], body["basket"], body["unknown_items"]) == (
        "basket_complements", None, ["A", "B"], [])
    assert body["snapshot_id"] and body["model"]["version"] == "7"


def test_scores_add_up_over_the_basket_and_ties_go_in_catalogue_order(client):
    body = complements(client, ["C", "E"])
    assert ids(body) == ["A", "D", "B"]  # A .8 (from E) and D .8 (from C) tie; B .1 + .1
    assert [i["score"] for i in body["items"]] == [0.8, 0.8, 0.2]


def test_unknown_basket_items_are_named_and_skipped(client):
    body = complements(client, ["A", "NEW-SKU", "A"])
    assert ids(body) == ["B", "C", "D"] and body["basket"] == ["A"] and body["unknown_items"] == ["NEW-SKU"]
    unknown = complements(client, ["NEW-SKU"])
    assert (unknown["source"], unknown["fallback_reason"], ids(unknown)) == ("fallback", "no_known_items",
                                                                             ["D", "A", "B"])


def test_business_rules_apply(client):
    capped = complements(client, ["C", "E"], max_per_category=1)
    assert ids(capped) == ["A", "D"] and capped["rules"] == ["max_per_category"]  # B is a second mug
    bought = complements(client, ["E"], customer_id="c1", exclude_purchased="true")
    assert ids(bought) == ["D", "C"] and bought["rules"] == ["exclude_purchased"]  # c1 bought A and B
    # without a shopper there are no purchases to exclude, and the answer does not claim it
    anonymous = complements(client, ["E"], exclude_purchased="true")
    assert ids(anonymous) == ["A", "B", "D"] and anonymous["rules"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({}, "items"),
    ({"items": [f"I{i}" for i in range(101)]}, "items"),
    ({"items": ["A", " "]}, "items"),
    ({"items": ["A"], "k": 0}, "k"),
    ({"items": ["A"], "customer_id": "x" * 129}, "customer_id"),
    ({"items": ["A"], "placement": "nowhere"}, "placement"),
])
def test_bad_requests_are_422_naming_the_field(client, params, field):
    response = client.get("/v1/baskets/complements", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_summed_scores_tie_as_the_answer_shows_them():
    from recsys.records import encode_ranked
    from serving.services.recommendations import _summed

    # item 0 scores .1 + .2 over the basket, item 1 scores .3: equal to six decimals (float32 parts sum a
    # hair below), so the lower item row comes first
    lists = [encode_ranked([0], [0.1], 0), encode_ranked([0, 1], [0.2, 0.3], 0), None]
    assert [item for item, _, _ in _summed(lists)] == [0, 1]


def test_an_answer_without_any_complement_says_it_is_the_fallback(client):
    body = complements(client, ["E"], exclude_items=["A", "B"])  # E's complements are A and B
    assert ids(body) == ["D", "C"] and (body["source"], body["fallback_reason"]) == ("fallback", "no_complements")
