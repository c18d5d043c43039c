"""HTTP behaviour of the storefront API on a hand-made snapshot: bodies, status codes, provenance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from feature_store import open_store
from recsys.records import CATALOG_KEY, META, RECOMMENDATIONS, encode_ranked
from serving.app import create_app
from serving.settings import ServingSettings, describe
from tests.serving.snapshot_fixture import CATALOG, hand_made_lists, publish_hand_made
from training.publish import write_snapshot


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def published(store_url):
    store = open_store(store_url, prefix="t")
    manifest = publish_hand_made(store)
    yield store, manifest
    store.close()


def client_for(store_url: str, **overrides) -> TestClient:
    # the limits store beside the snapshot store: its default, var/limits.sqlite, would sit in the working
    # directory and carry caps and exposures from one test run to the next
    overrides.setdefault("limits_url", store_url.replace("store.sqlite", "limits.sqlite"))
    settings = ServingSettings(store_url=store_url, store_prefix="t", snapshot_refresh_seconds=0, **overrides)
    return TestClient(create_app(settings))


def test_known_customer_gets_personal_list_with_provenance(store_url, published):
    _, manifest = published
    with client_for(store_url) as client:
        response = client.get("/v1/customers/c1/recommendations", params={"k": 3})
    assert response.status_code == 200
    body = response.json()
    assert [i["item_id"] for i in body["items"]] == ["B", "C", "A"]
    assert {i["source"] for i in body["items"]} == {"als"}
    assert body["source"] == "personalised"
    assert body["snapshot_id"] == manifest.snapshot_id
    assert body["model"] == {"name": "recsys-recommender", "version": "7", "run_id": "run-7", "alias": "champion"}


def test_short_personal_list_is_filled_from_popular_without_repeats(store_url, published):
    with client_for(store_url) as client:
        body = client.get("/v1/customers/c2/recommendations", params={"k": 4}).json()
    assert [(i["item_id"], i["source"]) for i in body["items"]] == [
        ("E", "als"), ("D", "popular"), ("A", "popular"), ("B", "popular")]
    assert body["source"] == "personalised"


def test_unknown_customer_gets_popular_fallback(store_url, published):
    with client_for(store_url) as client:
        response = client.get("/v1/customers/nobody/recommendations", params={"k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fallback" and body["fallback_reason"] == "unknown_customer"
    assert [i["item_id"] for i in body["items"]] == ["D", "A"]


def test_default_k_and_bounds(store_url, published):
    with client_for(store_url, default_k=2, max_k=4) as client:
        assert len(client.get("/v1/items/popular").json()["items"]) == 2
        too_big = client.get("/v1/items/popular", params={"k": 5})
        zero = client.get("/v1/customers/c1/recommendations", params={"k": 0})
        text = client.get("/v1/customers/c1/recommendations", params={"k": "ten"})
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["query", "k"]
    assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["query", "k"]
    assert text.status_code == 422 and text.json()["detail"][0]["loc"] == ["query", "k"]


def test_k_is_read_as_fastapi_reads_its_own_integer_parameters(store_url, published):
    with client_for(store_url) as client:
        def status_and_length(raw: str) -> tuple[int, int | None]:
            answer = client.get("/v1/items/popular", params={"k": raw})
            return answer.status_code, len(answer.json()["items"]) if answer.status_code == 200 else None

        assert status_and_length("2.0") == (200, 2)
        assert status_and_length(" 2 ") == (200, 2)
        assert status_and_length("\u0663") == (422, None)  # an Arabic-Indic three: int() reads it, pydantic not
        assert status_and_length("2.5") == (422, None)


def test_similar_items_and_unknown_item(store_url, published):
    with client_for(store_url) as client:
        similar = client.get("/v1/items/C/similar", params={"k": 2})
        missing = client.get("/v1/items/ZZZ/similar")
    assert similar.status_code == 200
    assert [i["item_id"] for i in similar.json()["items"]] == ["D", "B"]
    assert similar.json()["source"] == "similar_items"
    assert missing.status_code == 404
    assert "ZZZ" in missing.json()["detail"]


def test_similar_items_are_filled_from_the_fallback_chain_never_with_the_item_itself(store_url, published):
    # C's similar list is D, B; popular is D, A, B, C, E
    with client_for(store_url) as client:
        body = client.get("/v1/items/C/similar", params={"k": 4}).json()
    assert ids_and_sources(body) == [("D", "item_knn"), ("B", "item_knn"), ("A", "popular"), ("E", "popular")]
    assert body["source"] == "similar_items" and body["fallback_reason"] is None


def test_an_item_nothing_was_bought_with_gets_the_fallback_list(store_url):
    lists = hand_made_lists()
    block = lists.similar[0]
    rows = block.item_rows.copy()
    rows[4] = -1  # E
    lists = dataclasses.replace(lists, similar=[dataclasses.replace(block, item_rows=rows)])
    store = open_store(store_url, prefix="t")
    write_snapshot(lists, store, {"model": {"name": "m", "version": "1"}})
    store.close()
    with client_for(store_url) as client:
        body = client.get("/v1/items/E/similar", params={"k": 3}).json()
    assert ids_and_sources(body) == [("D", "popular"), ("A", "popular"), ("B", "popular")]
    assert body["source"] == "fallback" and body["fallback_reason"] == "no_similar_items"


def test_ids_holding_a_line_break_reach_their_routes(store_url, published):
    with client_for(store_url) as client:
        customer = client.get("/v1/customers/a%0Ab/recommendations", params={"k": 2})
        item = client.get("/v1/items/%0A/similar")
    assert customer.status_code == 200 and customer.json()["customer_id"] == "a\nb"
    assert customer.json()["fallback_reason"] == "unknown_customer"
    assert item.status_code == 404 and item.json()["detail"] == "item '\\n' is not in the current snapshot's catalogue"


def test_popular_and_trending_lists(store_url, published):
    with client_for(store_url) as client:
        popular = client.get("/v1/items/popular", params={"k": 3}).json()
        trending = client.get("/v1/items/popular", params={"k": 3, "kind": "trending"}).json()
        bad = client.get("/v1/items/popular", params={"kind": "hot"})
    assert [i["item_id"] for i in popular["items"]] == ["D", "A", "B"]
    assert [i["item_id"] for i in trending["items"]] == ["E", "D"]
    assert trending["kind"] == "trending"
    assert bad.status_code == 422


def test_health_before_and_after_publish(store_url):
    with client_for(store_url) as client:
        assert client.get("/health/live").status_code == 200
        not_ready = client.get("/health/ready")
        assert not_ready.status_code == 503
        assert client.get("/v1/items/popular").status_code == 503
        store = open_store(store_url, prefix="t")
        manifest = publish_hand_made(store)
        store.close()
        ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["snapshot_id"] == manifest.snapshot_id


def test_rollback_is_served_at_once(store_url, published):
    store, first = published
    second = publish_hand_made(store, version="8", customer_lists={"c1": [4, 3, 2]})
    with client_for(store_url) as client:
        newer = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
        store.rollback()
        older = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
    assert (newer["snapshot_id"], newer["model"]["version"]) == (second.snapshot_id, "8")
    assert [i["item_id"] for i in newer["items"]] == ["E", "D", "C"]
    assert (older["snapshot_id"], older["model"]["version"]) == (first.snapshot_id, "7")
    assert [i["item_id"] for i in older["items"]] == ["B", "C", "A"]


def test_api_keys_and_scopes(store_url, published):
    keys = {"reader": ["recommendations:read"], "other": ["segments:read"]}
    with client_for(store_url, api_keys=keys) as client:
        path = "/v1/customers/c1/recommendations"
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
        forbidden = client.get(path, headers={"X-API-Key": "other"})
        assert forbidden.status_code == 403 and "recommendations:read" in forbidden.json()["detail"]
        assert client.get(path, headers={"X-API-Key": "reader"}).status_code == 200
        assert client.get("/health/live").status_code == 200


def test_openapi_documents_the_routes(store_url, published):
    with client_for(store_url) as client:
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/v1/customers/{customer_id}/recommendations" in spec["paths"]
    assert "/v1/items/{item_id}/similar" in spec["paths"]
    recommendations = spec["paths"]["/v1/customers/{customer_id}/recommendations"]["get"]
    assert {"200", "422", "503"} <= set(recommendations["responses"])
    assert "rules" in spec["components"]["schemas"]["RecommendationList"]["properties"]
    export = spec["paths"]["/v1/segments/{segment}/export.csv"]["get"]["responses"]
    assert "text/csv" in export["200"]["content"] and "503" in export


def test_openapi_bounds_k_by_the_configured_max_k(store_url, published):
    with client_for(store_url, max_k=40) as client:
        spec = client.get("/openapi.json").json()
        over = client.get("/v1/items/popular", params={"k": 41})
    k_bounds = {path: [p["schema"].get("maximum") for p in op.get("parameters", []) if p["name"] == "k"]
                for path, ops in spec["paths"].items() for op in ops.values()}
    assert k_bounds["/v1/customers/{customer_id}/recommendations"] == [40]
    assert k_bounds["/v1/items/popular"] == [40] and k_bounds["/v1/baskets/complements"] == [40]
    assert k_bounds["/v1/customers/{customer_id}/offers"] == [20]  # the offers route's own bound
    assert over.status_code == 422


def ids_and_sources(body):
    return [(i["item_id"], i["source"]) for i in body["items"]]


def test_exclude_purchased_fills_from_the_fallback_chain(store_url, published):
    # c1's list is B, C, A and c1 bought A and B; popular is D, A, B, C, E.
    with client_for(store_url) as client:
        body = client.get("/v1/customers/c1/recommendations", params={"k": 3, "exclude_purchased": True}).json()
    assert ids_and_sources(body) == [("C", "als"), ("D", "popular"), ("E", "popular")]
    assert body["rules"] == ["exclude_purchased"] and body["source"] == "personalised"


def test_exclude_purchased_serves_the_models_own_list_of_new_items(store_url):
    # c1's list is B, C, A (c1 bought A and B); the model ranks E, C for c1's first purchases, which
    # its list minus purchases (C alone) would not have found
    store = open_store(store_url, prefix="t")
    publish_hand_made(store, new_item_lists={"c1": [4, 2], "c2": [4]})
    store.close()
    with client_for(store_url) as client:
        body = client.get("/v1/customers/c1/recommendations", params={"k": 3, "exclude_purchased": True}).json()
        plain = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
    assert ids_and_sources(body) == [("E", "als"), ("C", "als"), ("D", "popular")]
    assert [i["item_id"] for i in plain["items"]] == ["B", "C", "A"]


def test_exclude_purchased_goes_on_past_the_list_with_the_models_next_new_items(store_url):
    # c1's list is B, C, A and c1 bought A and B: the model's next new items E, D follow C, in its order
    # (popular alone would give D, E)
    store = open_store(store_url, prefix="t")
    publish_hand_made(store, beyond_lists={"c1": [4, 3]})
    store.close()
    with client_for(store_url) as client:
        body = client.get("/v1/customers/c1/recommendations", params={"k": 3, "exclude_purchased": True}).json()
        plain = client.get("/v1/customers/c1/recommendations", params={"k": 5}).json()
    assert ids_and_sources(body) == [("C", "als"), ("E", "als"), ("D", "als")] and body["fallback_reason"] is None
    # without the rule the list ends where the model's list ends, then the fallback fills
    assert ids_and_sources(plain) == [("B", "als"), ("C", "als"), ("A", "als"), ("D", "popular"), ("E", "popular")]


def test_a_snapshot_an_earlier_release_published_is_served(store_url):
    # record format 1: no record_format in the manifest, and a record holds the list, then the history
    store = open_store(store_url, prefix="t")
    c1 = (3).to_bytes(2, "little") + encode_ranked([1, 2, 0], [0.9, 0.7, 0.5], 0) + np.array([0, 1], "<u4").tobytes()
    with store.begin_snapshot() as writer:
        writer.write(META, [CATALOG_KEY], [CATALOG.to_bytes()])
        writer.write(RECOMMENDATIONS, ["c1"], [c1])
        writer.commit({"model": {"name": "recsys-recommender", "version": "6"}, "sources": ["als", "popular"]})
    store.close()
    with client_for(store_url) as client:
        plain = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
        new_only = client.get("/v1/customers/c1/recommendations", params={"k": 2, "exclude_purchased": True}).json()
    assert ids_and_sources(plain) == [("B", "als"), ("C", "als"), ("A", "als")]
    assert [i["item_id"] for i in new_only["items"]] == ["C"]  # A and B bought; no popular list to fill from


def test_a_snapshot_of_a_later_record_format_is_not_served(store_url, published):
    store, first = published
    with client_for(store_url) as client:
        assert client.get("/v1/customers/c1/recommendations").json()["snapshot_id"] == first.snapshot_id
        with store.begin_snapshot() as writer:
            writer.write(META, [CATALOG_KEY], [CATALOG.to_bytes()])
            later = writer.commit({"model": {"name": "recsys-recommender", "version": "9"}, "record_format": 99})
        kept = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
    assert kept["snapshot_id"] == first.snapshot_id and [i["item_id"] for i in kept["items"]] == ["B", "C", "A"]
    with client_for(store_url) as fresh:
        ready = fresh.get("/health/ready")
    assert ready.status_code == 503
    assert f"snapshot {later.snapshot_id} holds customer records of format 99" in ready.text


def test_category_cap_and_category_filter(store_url, published):
    with client_for(store_url) as client:
        capped = client.get("/v1/customers/c1/recommendations", params={"k": 3, "max_per_category": 1}).json()
        bags = client.get("/v1/customers/c1/recommendations", params={"k": 3, "categories": "bags"}).json()
        lists = client.get("/v1/customers/c1/recommendations",
                           params=[("k", 5), ("exclude_items", "B"), ("exclude_items", "D")]).json()
    # categories: A, B mugs; C, D bags; E toys
    assert ids_and_sources(capped) == [("B", "als"), ("C", "als"), ("E", "popular")]
    assert ids_and_sources(bags) == [("C", "als"), ("D", "popular")]  # no third bag anywhere
    assert [i["item_id"] for i in lists["items"]] == ["C", "A", "E"]


def test_placements_are_configuration_and_requests_refine_them(store_url, published):
    placements = {"basket": {"exclude_purchased": True}}
    with client_for(store_url, placements=placements) as client:
        basket = client.get("/v1/customers/c1/recommendations", params={"k": 2, "placement": "basket"}).json()
        refined = client.get("/v1/customers/c1/recommendations",
                             params={"k": 3, "placement": "basket", "exclude_categories": "bags"}).json()
        unknown = client.get("/v1/customers/c1/recommendations", params={"placement": "home"})
    assert [i["item_id"] for i in basket["items"]] == ["C", "D"]
    assert [i["item_id"] for i in refined["items"]] == ["E"]  # all else bought or a bag
    assert unknown.status_code == 422
    problem = unknown.json()["detail"][0]
    assert problem["loc"] == ["query", "placement"] and "basket" in problem["msg"]


def test_rules_apply_to_unknown_customers_too(store_url, published):
    with client_for(store_url) as client:
        body = client.get("/v1/customers/nobody/recommendations", params={"k": 2, "exclude_items": "D"}).json()
    assert body["source"] == "fallback" and [i["item_id"] for i in body["items"]] == ["A", "B"]


def test_bad_placement_configuration_is_rejected_at_start():
    with pytest.raises(ValueError, match="placement 'home': unknown rule"):
        ServingSettings(placements={"home": {"exclude_bought": True}})


def test_a_misspelt_scope_is_refused_at_start():
    with pytest.raises(ValueError, match=r"names unknown scope\(s\) \['recomendations:read'\]"):
        ServingSettings(api_keys={"k1": ["recomendations:read"]})


def test_a_default_k_above_max_k_is_refused_at_start():
    with pytest.raises(ValueError, match=r"default_k \(5, RECSYS_SERVING_DEFAULT_K\) is above max_k \(2"):
        ServingSettings(default_k=5, max_k=2)
    assert ServingSettings(default_k=2, max_k=2).default_k == 2


@pytest.mark.parametrize("field", ["store_prefix", "limits_prefix"])
def test_a_prefix_that_cannot_be_part_of_a_key_is_refused_at_start(field):
    with pytest.raises(ValueError, match=f"{field}\n.*the key prefix must be non-empty letters"):
        ServingSettings(**{field: "shop:eu"})


def test_an_answer_without_any_personal_item_says_it_is_the_fallback(store_url, published):
    with client_for(store_url) as client:
        toys = client.get("/v1/customers/c1/recommendations", params={"k": 2, "categories": "toys"}).json()
        mugs = client.get("/v1/customers/c1/recommendations", params={"k": 2, "categories": "mugs"}).json()
    # c1's list is B, C, A: no toy, so the answer is popular's only toy, E
    assert [i["item_id"] for i in toys["items"]] == ["E"]
    assert (toys["source"], toys["fallback_reason"]) == ("fallback", "no_personal_items")
    assert [i["item_id"] for i in mugs["items"]] == ["B", "A"] and mugs["source"] == "personalised"


def test_an_id_holding_a_slash_reaches_its_route(store_url):
    store = open_store(store_url, prefix="t")
    publish_hand_made(store, customer_lists={"AB/123": [1, 2, 0]})
    store.close()
    with client_for(store_url) as client:
        recs = client.get("/v1/customers/AB%2F123/recommendations", params={"k": 2})
        empty = client.get("/v1/customers//recommendations")
    assert recs.status_code == 200 and recs.json()["customer_id"] == "AB/123"
    assert recs.json()["source"] == "personalised" and [i["item_id"] for i in recs.json()["items"]] == ["B", "C"]
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["path", "customer_id"]


def test_a_count_of_thousands_of_digits_is_a_422_not_a_500(store_url, published):
    with client_for(store_url) as client:
        huge = client.get("/v1/items/popular", params={"k": "9" * 4301})
        padded = client.get("/v1/items/popular", params={"k": "0" * 5000 + "5"})
    assert huge.status_code == 422 and huge.json()["detail"][0]["loc"] == ["query", "k"]
    assert padded.status_code == 200 and len(padded.json()["items"]) == 5


def test_a_body_json_cannot_carry_is_a_422_and_a_large_one_a_413(store_url, published):
    with client_for(store_url) as client:
        nan = client.post("/v1/offers/x/events", content=b"NaN", headers={"content-type": "application/json"})
        inf = client.post("/v1/offers/x/events", content=b'{"event_id": 1e400, "type": "impression"}',
                          headers={"content-type": "application/json"})
        large = client.post("/v1/offers/x/events", content=b'{"event_id": "' + b"a" * 200_000 + b'"}',
                            headers={"content-type": "application/json"})
    assert nan.status_code == 422 and inf.status_code == 422
    assert large.status_code == 413


def test_settings_errors_never_show_an_api_key():
    with pytest.raises(ValidationError) as raised:
        ServingSettings(api_keys={"supersecretkey": ["recomendations:read"]})
    assert "supersecret" not in describe(raised.value) and "key #1" in describe(raised.value)
    with pytest.raises(ValidationError) as invalid:
        ServingSettings(api_keys={"supersecretkey": "recommendations:read"})
    assert "SUPERSECRET" not in describe(invalid.value) and "RECSYS_SERVING_API_KEYS__<KEY>" in describe(invalid.value)
