"""Offers over HTTP and through the service, on a real Redis: ranking, caps, budgets, idempotency."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient

from feature_store import StoreUnavailableError, open_async_reader, open_limits, open_store
from recsys.offers import parse_catalogue
from serving.app import create_app
from serving.services import offers as offers_service
from serving.services.offers import BudgetExhaustedError, OfferEvent, OfferService
from serving.settings import ServingSettings
from serving.snapshots import SnapshotCache
from tests.conftest import redis_url
from tests.serving.offers_fixture import PROFILE_ROWS, catalogue_data, profiles_part, publish_with_offers
from tests.serving.snapshot_fixture import hand_made_lists
from training.publish import write_snapshot
from training.publish_offers import offer_catalogue_part

pytestmark = pytest.mark.redis


@pytest.fixture
def published(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    yield store, publish_with_offers(store)
    store.close()


def client_for(prefix: str, **overrides) -> TestClient:
    settings = ServingSettings(store_url=redis_url(), store_prefix=prefix, snapshot_refresh_seconds=0,
                               offers_seed=0, offers_outcomes_refresh_seconds=0, **overrides)
    return TestClient(create_app(settings))


def run_service(prefix: str, body):
    async def main():
        reader = open_async_reader(redis_url(), prefix=prefix)
        service = OfferService(reader, SnapshotCache(reader, 0), open_limits(redis_url(), prefix=prefix), seed=0,
                               outcomes_refresh_seconds=0)
        try:
            return await body(service)
        finally:
            await service.close()
            await reader.close()

    return asyncio.run(main())


def test_offers_with_reasons_and_provenance_then_contact_cap(redis_prefix, published):
    _, manifest = published
    with client_for(redis_prefix) as client:
        first = client.get("/v1/customers/c1/offers", params={"k": 3})
        second = client.get("/v1/customers/c1/offers", params={"k": 3})
    assert first.status_code == 200
    body = first.json()
    assert body["snapshot_id"] == manifest.snapshot_id
    assert body["catalogue_version"] == manifest.metadata["offer_catalogue_version"]
    assert body["segment"] == "at_risk" and body["eligible"] == 2
    assert len(body["offers"]) == 1  # the contact cap allows one offer per 7 days
    offer = body["offers"][0]
    assert offer["offer_id"] in {"winback", "bundle"}
    assert offer["expected_value"] == pytest.approx(offer["p_redeem"] * offer["value"] - offer["cost"], abs=1e-3)
    assert offer["reasons"]
    if offer["offer_id"] == "winback":
        assert offer["reasons"] == ["churn_probability 0.8 >= 0.5"]
    else:
        assert offer["recommended_item"] == "B"
    # the cap is used: still a fast 200, with nothing shown and the skipped offers named
    assert second.status_code == 200
    assert second.json()["offers"] == [] and set(second.json()["capped"]) == {"winback", "bundle"}


def test_several_offers_when_the_contact_cap_allows_and_repeat_cap(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, catalogue_data(max_offers=5))
    with client_for(redis_prefix) as client:
        first = client.get("/v1/customers/c2/offers", params={"k": 5}).json()
        again = client.get("/v1/customers/c2/offers", params={"k": 5}).json()
    store.close()
    assert {o["offer_id"] for o in first["offers"]} == {"vip", "bundle"}
    assert [o["rank"] for o in first["offers"]] == [1, 2]
    bundle = next(o for o in first["offers"] if o["offer_id"] == "bundle")
    assert bundle["recommended_item"] == "E"  # c2's top recommendation in the same snapshot
    assert again["offers"] == [] and set(again["capped"]) == {"vip", "bundle"}  # not the same offer within 30 days


def test_unknown_customer_missing_catalogue_and_customer_without_recommendation(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, with_catalogue=False)
    with client_for(redis_prefix) as client:
        assert client.get("/v1/customers/c1/offers").status_code == 503
        publish_with_offers(store)
        assert client.get("/v1/customers/nobody/offers").status_code == 404
        c3 = client.get("/v1/customers/c3/offers").json()
        assert [o["offer_id"] for o in c3["offers"]] == ["first-repeat"]  # no recommendation: no bundle
        # k is parsed as on every other route: other scripts' digits and fractions are 422s naming k
        for bad in (0, 21, "\u0663", "2.5", "two"):
            answer = client.get("/v1/customers/c1/offers", params={"k": bad})
            assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "k"], bad
    store.close()


def test_a_bad_catalogue_never_replaces_the_served_one(redis_prefix, published):
    store, manifest = published
    bad = catalogue_data()
    bad["offers"][0]["cost"] = -1
    with pytest.raises(ValueError, match="offer 'winback': cost"):
        publish_with_offers(store, bad)
    assert store.current_snapshot_id() == manifest.snapshot_id
    with client_for(redis_prefix) as client:
        assert client.get("/v1/customers/c2/offers").json()["snapshot_id"] == manifest.snapshot_id


def test_200_concurrent_requests_for_one_customer_record_exactly_one_impression(redis_prefix, published):
    async def body(service: OfferService):
        answers = await asyncio.gather(*[service.for_customer("c1", 3) for _ in range(200)])
        used = await service.limits.used(["contact:c1"])
        counters = await service.limits.counters(["outcomes:winback", "outcomes:bundle"])
        decisions = await service.limits.read_events("offer_decisions", count=1000)
        return answers, used, counters, decisions

    answers, used, counters, decisions = run_service(redis_prefix, body)
    assert sum(len(a["offers"]) for a in answers) == 1
    assert used == [1]
    assert sum(c.get("at_risk|impressions", 0) for c in counters) == 1
    assert len(decisions) == 200  # every decision is logged, capped ones included
    shown = [fields for _, fields in decisions if fields["acquired"]]
    assert len(shown) == 1 and shown[0]["acquired"] == "0"
    shown_offer = next(a["offers"][0]["offer_id"] for a in answers if a["offers"])
    decision = orjson.loads(shown[0]["decision"])
    assert decision["customer_id"] == "c1" and decision["segment"] == "at_risk" and decision["k"] == 3
    candidates = [c["offer_id"] for c in decision["candidates"]]
    assert sorted(candidates) == ["bundle", "winback"] and candidates[0] == shown_offer


def test_budget_is_never_exceeded_under_concurrent_redemptions(redis_prefix, published):
    async def body(service: OfferService):
        async def redeem(i: int):
            try:
                return await service.record_event("winback", OfferEvent(f"r{i}", "redemption", "c1"))
            except BudgetExhaustedError:
                return None

        results = await asyncio.gather(*[redeem(i) for i in range(100)])
        return results, await service.limits.counters(["outcomes:winback"])

    results, counters = run_service(redis_prefix, body)
    assert sum(r is not None for r in results) == 3  # the catalogue's budget
    assert counters == [{"at_risk|redemptions": 3}]


def test_events_are_idempotent_feed_the_posterior_and_enforce_the_budget(redis_prefix, published):
    with client_for(redis_prefix) as client:
        before = client.get("/v1/customers/c1/offers").json()
        event = {"event_id": "e-1", "type": "redemption", "customer_id": "c1"}
        first = client.post("/v1/offers/winback/events", json=event)
        replay = client.post("/v1/offers/winback/events", json=event)
        assert first.status_code == replay.status_code == 200
        assert first.json()["duplicate"] is False and first.json()["segment"] == "at_risk"
        assert replay.json()["duplicate"] is True
        for i in (2, 3):
            assert client.post("/v1/offers/winback/events",
                               json={**event, "event_id": f"e-{i}"}).status_code == 200
        exhausted = client.post("/v1/offers/winback/events", json={**event, "event_id": "e-4"})
        assert exhausted.status_code == 409 and "budget of 3" in exhausted.json()["detail"]
        assert client.post("/v1/offers/nope/events", json=event).status_code == 404
        stranger = client.post("/v1/offers/bundle/events",
                               json={"event_id": "n-1", "type": "redemption", "customer_id": "nobody"})
        assert stranger.status_code == 404 and "'nobody' has no profile" in stranger.json()["detail"]
        dismissal = client.post("/v1/offers/bundle/events",
                                json={"event_id": "d-1", "type": "dismissal", "customer_id": "c1"})
        assert dismissal.status_code == 200
        assert client.post("/v1/offers/bundle/events", json={"event_id": "x", "type": "click",
                                                             "customer_id": "c1"}).status_code == 422
        preview = client.get("/v1/offers/preview").json()
    assert before["offers"][0]["offer_id"] in {"winback", "bundle"}
    rows = {row["offer_id"]: row for row in preview["offers"]}
    assert rows["winback"]["redemptions_used"] == 3 and rows["winback"]["redemption_limit"] == 3
    assert {k: v["eligible_customers"] for k, v in rows.items()} == {
        "winback": 1, "vip": 1, "bundle": 2, "first-repeat": 1}  # c3 has no recommendation: no bundle
    assert preview["customers"] == 3


def test_redemptions_update_the_beta_posterior_served(redis_prefix, published):
    store, _ = published
    publish_with_offers(store, catalogue_data(max_offers=5, winback_budget=100))
    with client_for(redis_prefix) as client:
        for i in range(4):
            client.post("/v1/offers/winback/events", json={"event_id": f"e{i}", "type": "redemption",
                                                           "customer_id": "c1"})
        offers = client.get("/v1/customers/c1/offers", params={"k": 5}).json()["offers"]
    winback = next(o for o in offers if o["offer_id"] == "winback")
    assert winback["posterior"] == {"alpha": pytest.approx(2.0 + 4), "beta": pytest.approx(8.0)}


def test_scopes(redis_prefix, published):
    keys = {"reader": ["offers:read"], "writer": ["offers:write"]}
    with client_for(redis_prefix, api_keys=keys) as client:
        event = {"event_id": "s-1", "type": "impression", "customer_id": "c2"}
        assert client.get("/v1/customers/c2/offers").status_code == 401
        assert client.get("/v1/customers/c2/offers", headers={"X-API-Key": "writer"}).status_code == 403
        assert client.get("/v1/customers/c2/offers", headers={"X-API-Key": "reader"}).status_code == 200
        assert client.post("/v1/offers/vip/events", json=event, headers={"X-API-Key": "reader"}).status_code == 403
        assert client.post("/v1/offers/vip/events", json=event, headers={"X-API-Key": "writer"}).status_code == 200


def test_embedded_limits_store_serves_without_redis_for_limits(redis_prefix, published, tmp_path):
    with client_for(redis_prefix, limits_url=f"sqlite:///{tmp_path / 'limits.sqlite'}") as client:
        assert len(client.get("/v1/customers/c2/offers").json()["offers"]) == 1
        assert client.get("/v1/customers/c2/offers").json()["offers"] == []
    assert (tmp_path / "limits.sqlite").exists()


def test_fallback_catalogue_file_when_the_snapshot_has_none(redis_prefix, tmp_path):
    import yaml

    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, with_catalogue=False)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(catalogue_data()))
    with client_for(redis_prefix, offer_catalogue_path=path) as client:
        body = client.get("/v1/customers/c2/offers").json()
    store.close()
    assert body["catalogue_version"] == parse_catalogue(catalogue_data()).version


def test_decision_time_is_written_as_isoformat_writes_it():
    from serving.services.clock import now_iso

    stamp = now_iso()
    parsed = datetime.fromisoformat(stamp)
    assert stamp == parsed.isoformat(timespec="milliseconds")
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 2


def test_an_undecodable_string_in_an_event_is_a_422_naming_the_field(redis_prefix, published):
    # JSON may carry a lone surrogate (\ud800), which no UTF-8 text holds: rejected, and echoed escaped
    body = b'{"event_id": "e1", "type": "impression", "customer_id": "\\ud800"}'
    with client_for(redis_prefix) as client:
        answer = client.post("/v1/offers/vip/events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    problem = answer.json()["detail"][0]
    assert problem["loc"] == ["body", "customer_id"] and problem["input"] == "\\ud800"


def test_the_preview_counts_again_when_a_validity_window_opens(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    data = catalogue_data()
    data["offers"][2]["validity"] = {"starts_at": "2030-01-01T00:00:00Z"}  # bundle: 3 eligible once open
    publish_with_offers(store, data)
    store.close()
    now = [datetime(2029, 12, 31, 23, 59, tzinfo=UTC)]

    async def body(service):
        service.clock = lambda: now[0]
        before = await service.preview()
        now[0] = datetime(2030, 1, 1, tzinfo=UTC)
        after = await service.preview()
        return ({row["offer_id"]: row["eligible_customers"] for row in answer["offers"]} for answer in (before, after))

    before, after = run_service(redis_prefix, body)
    assert before == {"winback": 1, "vip": 1, "bundle": 0, "first-repeat": 1}
    assert after == {"winback": 1, "vip": 1, "bundle": 2, "first-repeat": 1}


def test_a_money_budget_stops_impressions_once_spent(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    data = catalogue_data(max_offers=5)
    data["offers"][2]["budget"] = {"total": 0.5}  # the bundle costs 0.5 to show: one impression
    publish_with_offers(store, data)
    store.close()
    with client_for(redis_prefix) as client:
        c1 = client.get("/v1/customers/c1/offers", params={"k": 5}).json()
        c2 = client.get("/v1/customers/c2/offers", params={"k": 5}).json()
        preview = client.get("/v1/offers/preview").json()
    assert sorted(o["offer_id"] for o in c1["offers"]) == ["bundle", "winback"]
    assert [o["offer_id"] for o in c2["offers"]] == ["vip"] and c2["capped"] == ["bundle"]
    bundle = next(row for row in preview["offers"] if row["offer_id"] == "bundle")
    assert (bundle["impression_limit"], bundle["budget_impressions_used"], bundle["redemption_limit"]) == (1, 1, None)


def counting_reads(reader) -> list:
    """Every profile read (``get_each`` call) the reader makes from now on."""
    reads, read = [], reader.get_each

    async def get_each(snapshot_id, lookups):
        reads.append(lookups)
        return await read(snapshot_id, lookups)

    reader.get_each = get_each
    return reads


def eligible_offers(client: TestClient, customer: str) -> tuple[int, set[str], dict]:
    body = client.get(f"/v1/customers/{customer}/offers", params={"k": 5}).json()
    return body["eligible"], {o["offer_id"] for o in body["offers"]}, \
        {o["offer_id"]: o["recommended_item"] for o in body["offers"]}


@pytest.mark.parametrize("in_memory", [True, False])
def test_decisions_from_profiles_held_in_memory_or_read_per_decision(redis_prefix, in_memory):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, catalogue_data(max_offers=3))
    with client_for(redis_prefix, offers_profiles_in_memory=in_memory) as client:
        reads = counting_reads(client.app.state.reader)
        assert eligible_offers(client, "c1") == (2, {"winback", "bundle"}, {"winback": None, "bundle": "B"})
        assert eligible_offers(client, "c2") == (2, {"vip", "bundle"}, {"vip": None, "bundle": "E"})
        assert eligible_offers(client, "c3") == (1, {"first-repeat"}, {"first-repeat": None})
        assert client.get("/v1/customers/nobody/offers").status_code == 404
        event = {"event_id": "m-1", "type": "impression", "customer_id": "nobody"}
        assert client.post("/v1/offers/vip/events", json=event).status_code == 404
        assert client.post("/v1/offers/vip/events", json={**event, "customer_id": "c2"}).json()["segment"] \
            == "champions"
    # held in memory, a decision's one store call is the atomic step of the caps, an unknown customer's too
    assert len(reads) == (0 if in_memory else 6)
    store.close()


@pytest.mark.parametrize("in_memory", [True, False])
def test_the_preview_counts_the_same_from_profiles_held_or_read(redis_prefix, in_memory):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, catalogue_data(max_offers=3))
    store.close()
    with client_for(redis_prefix, offers_profiles_in_memory=in_memory) as client:
        scans = []
        reader = client.app.state.reader
        scan = reader.iter_namespace
        reader.iter_namespace = lambda *args, **kwargs: scans.append(args) or scan(*args, **kwargs)
        preview = client.get("/v1/offers/preview").json()
    assert preview["customers"] == 3
    assert {row["offer_id"]: row["eligible_customers"] for row in preview["offers"]} == {
        "winback": 1, "vip": 1, "bundle": 2, "first-repeat": 1}  # c3 has no recommendation: no bundle
    assert len(scans) == (0 if in_memory else 1)  # held: no profile is read


def test_a_snapshot_published_without_offer_profiles_reads_each_profile(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, offer_profiles=False)
    with client_for(redis_prefix) as client:
        assert client.portal.call(client.app.state.offers.warm_up) is None
        reads = counting_reads(client.app.state.reader)
        assert client.get("/v1/customers/c2/offers").json()["segment"] == "champions"
        assert len(reads) == 1
    store.close()


def test_a_new_snapshot_replaces_the_profiles_held(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store)
    with client_for(redis_prefix) as client:
        held = client.portal.call(client.app.state.offers.warm_up)
        assert held is not None and held.row("c1") is not None
        assert client.get("/v1/customers/c1/offers").json()["segment"] == "at_risk"
        moved = [replace(p, segment="champions") if p.customer_id == "c1" else p for p in PROFILE_ROWS]
        manifest = write_snapshot(hand_made_lists(), store, {"model": {"name": "m", "version": "8"}},
                                  parts=[profiles_part(moved), offer_catalogue_part(parse_catalogue(catalogue_data()))])
        # the first decision on the new snapshot reads the profile while the new table loads
        first = client.get("/v1/customers/c1/offers").json()
        assert (first["snapshot_id"], first["segment"]) == (manifest.snapshot_id, "champions")
        reloaded = client.portal.call(client.app.state.offers.warm_up)
        assert reloaded is not held and reloaded.profile(reloaded.row("c1"))[0].segment == "champions"
    store.close()


@pytest.mark.parametrize("chunk", [None, b"not a chunk"], ids=["missing", "corrupt"])
def test_offer_profiles_that_do_not_load_leave_decisions_reading_the_store(redis_prefix, caplog, chunk):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store)
    store.close()
    loads = []

    async def body(service):
        read_many = service.reader.get_many

        async def losing_chunks(snapshot_id, namespace, keys):
            loads.extend(key for key in keys if key.startswith("offer_profiles:"))
            values = await read_many(snapshot_id, namespace, keys)
            return [chunk if key.startswith("offer_profiles:") else v for key, v in zip(keys, values, strict=True)]

        service.reader.get_many = losing_chunks
        assert await service.warm_up() is None
        decision = await service.for_customer("c2", 1)
        service.reader.get_many = read_many
        return decision, await service.warm_up()  # within the retry time: not tried again

    decision, table = run_service(redis_prefix, body)
    assert decision["segment"] == "champions" and len(decision["offers"]) == 1
    assert table is None and loads == ["offer_profiles:0"]
    assert "offer profiles of snapshot" in caplog.text
    assert ("a chunk named by the manifest is missing" in caplog.text) == (chunk is None)


def test_offer_profiles_are_loaded_again_after_the_retry_time(redis_prefix, monkeypatch):
    monkeypatch.setattr(offers_service, "PROFILES_RETRY_SECONDS", 0.0)
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store)
    store.close()

    async def body(service):
        read_many = service.reader.get_many

        async def failing(snapshot_id, namespace, keys):
            raise StoreUnavailableError("down")

        service.reader.get_many = failing
        assert await service.warm_up() is None
        service.reader.get_many = read_many
        return await service.warm_up()

    table = run_service(redis_prefix, body)
    assert table is not None and table.row("c3") is not None


def test_offer_profiles_load_from_the_embedded_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_store(url, prefix="embedded")
    publish_with_offers(store)
    store.close()

    async def main():
        reader = open_async_reader(url, prefix="embedded")
        service = OfferService(reader, SnapshotCache(reader, 0), open_limits(f"sqlite:///{tmp_path / 'limits.sqlite'}"),
                               seed=0)
        try:
            table = await service.warm_up()
            return table, await service.for_customer("c3", 1)
        finally:
            await service.close()
            await reader.close()

    table, decision = asyncio.run(main())
    assert table is not None and len(table) == 3
    assert [o["offer_id"] for o in decision["offers"]] == ["first-repeat"]
