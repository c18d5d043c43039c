"""A storefront must never fall over: with its Redis gone, the API keeps answering from memory."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis
from fastapi.testclient import TestClient

from feature_store import open_store
from serving.app import create_app
from serving.settings import ServingSettings
from tests.conftest import redis_url
from tests.serving.offers_fixture import catalogue_data, publish_with_offers
from tests.serving.snapshot_fixture import publish_hand_made

pytestmark = pytest.mark.redis


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own, so that it can be killed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; ./scripts/test.sh installs it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url, process
    process.kill()
    process.wait()


def test_answers_from_memory_while_redis_is_down(private_redis):
    url, process = private_redis
    store = open_store(url, prefix="outage")
    manifest = publish_hand_made(store)
    store.close()
    settings = ServingSettings(store_url=url, store_prefix="outage", snapshot_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        before = client.get("/v1/customers/c1/recommendations", params={"k": 3}).json()
        process.kill()
        process.wait()
        during = client.get("/v1/customers/c1/recommendations", params={"k": 3})
        # c1's purchases are in the record that cannot be read: exclude_purchased is not claimed
        ruled = client.get("/v1/customers/c1/recommendations",
                           params={"k": 3, "exclude_purchased": "t", "max_per_category": 5})
        popular = client.get("/v1/items/popular", params={"k": 2})
        ready = client.get("/health/ready")
        similar = client.get("/v1/items/A/similar")
        basket = client.get("/v1/baskets/complements", params={"items": ["A", "B"], "k": 3})
    assert before["source"] == "personalised"
    assert during.status_code == 200
    body = during.json()
    assert body["source"] == "fallback" and body["fallback_reason"] == "store_unavailable"
    assert [i["item_id"] for i in body["items"]] == ["D", "A", "B"]
    assert ruled.status_code == 200 and ruled.json()["rules"] == ["max_per_category"]
    assert body["snapshot_id"] == manifest.snapshot_id
    assert popular.status_code == 200 and [i["item_id"] for i in popular.json()["items"]] == ["D", "A"]
    # a basket's complements come from the popular list in memory, still without the basket's own items
    assert basket.status_code == 200 and basket.json()["fallback_reason"] == "store_unavailable"
    assert [i["item_id"] for i in basket.json()["items"]] == ["D", "C", "E"]
    assert ready.status_code == 503
    # items like A from the popular list in memory, without A itself
    assert similar.status_code == 200 and similar.json()["fallback_reason"] == "store_unavailable"
    assert [i["item_id"] for i in similar.json()["items"]] == ["D", "B", "C", "E"]


def test_a_store_unreachable_from_the_start_answers_503_with_retry_after():
    settings = ServingSettings(store_url="redis://127.0.0.1:1/0", store_prefix="outage", snapshot_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/items/popular")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "unreachable" in response.json()["detail"]


def _offers_client(store_url: str, store_prefix: str, limits_url: str, limits_prefix: str,
                   **overrides) -> TestClient:
    settings = ServingSettings(store_url=store_url, store_prefix=store_prefix, snapshot_refresh_seconds=0,
                               limits_url=limits_url, limits_prefix=limits_prefix, offers_seed=0, **overrides)
    return TestClient(create_app(settings))


def _publish_offers(url: str) -> None:
    store = open_store(url, prefix="outage")
    publish_with_offers(store)
    store.close()


def test_an_offer_event_during_a_store_outage_is_counted_once_on_retry(private_redis, redis_prefix):
    url, process = private_redis
    _publish_offers(url)
    event = {"event_id": "evt-42", "type": "redemption", "customer_id": "c1"}
    # profiles read per decision: the segment cannot be read, so nothing is counted
    with _offers_client(url, "outage", redis_url(), redis_prefix, offers_profiles_in_memory=False) as client:
        assert client.get("/v1/customers/c2/offers").status_code == 200  # the snapshot is known
        process.kill()
        process.wait()
        first = client.post("/v1/offers/winback/events", json=event)
        retry = client.post("/v1/offers/winback/events", json=event)
    # nothing was written by the failed call, so the retry is not mistaken for a duplicate
    assert first.status_code == 503 and retry.status_code == 503
    limits = redis.Redis.from_url(redis_url())
    assert limits.keys(f"{redis_prefix}:once:*") == [] and limits.keys(f"{redis_prefix}:lim:budget:*") == []
    assert limits.hgetall(f"{redis_prefix}:cnt:outcomes:winback") == {}
    assert limits.keys(f"{redis_prefix}:log:offer_events") == []


def test_offers_and_events_go_on_from_profiles_held_while_the_snapshot_store_is_down(private_redis, redis_prefix):
    url, process = private_redis
    _publish_offers(url)
    event = {"event_id": "evt-43", "type": "redemption", "customer_id": "c1"}
    with _offers_client(url, "outage", redis_url(), redis_prefix) as client:
        process.kill()
        process.wait()
        decision = client.get("/v1/customers/c2/offers")
        first = client.post("/v1/offers/winback/events", json=event)
        retry = client.post("/v1/offers/winback/events", json=event)
    assert decision.status_code == 200 and decision.json()["segment"] == "champions", decision.text
    assert first.status_code == 200 and not first.json()["duplicate"]
    assert retry.status_code == 200 and retry.json()["duplicate"]
    limits = redis.Redis.from_url(redis_url())
    assert limits.hgetall(f"{redis_prefix}:cnt:outcomes:winback") == {b"at_risk|redemptions": b"1"}


def test_an_offer_event_writes_counter_log_and_marker_together(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    publish_with_offers(store, catalogue_data(winback_budget=1))
    store.close()
    with _offers_client(redis_url(), redis_prefix, redis_url(), redis_prefix) as client:
        counted = client.post("/v1/offers/winback/events",
                              json={"event_id": "e1", "type": "redemption", "customer_id": "c1"})
        again = client.post("/v1/offers/winback/events",
                            json={"event_id": "e1", "type": "redemption", "customer_id": "c1"})
        refused = client.post("/v1/offers/winback/events",
                              json={"event_id": "e2", "type": "redemption", "customer_id": "c2"})
    assert counted.status_code == 200 and not counted.json()["duplicate"]
    assert again.status_code == 200 and again.json()["duplicate"]
    assert refused.status_code == 409
    limits = redis.Redis.from_url(redis_url())
    assert limits.hgetall(f"{redis_prefix}:cnt:outcomes:winback") == {b"at_risk|redemptions": b"1"}
    log = [(f[b"event_id"], f[b"acquired"]) for _, f in limits.xrange(f"{redis_prefix}:log:offer_events")]
    assert log == [(b"e1", b"0"), (b"e2", b"")]  # the refused redemption is logged, and counted nowhere


@pytest.mark.parametrize(("down", "in_memory", "status"), [
    ("snapshot store", False, 503), ("snapshot store", True, 200), ("limits store", True, 503)])
def test_offers_preview_while_a_store_is_down(private_redis, redis_prefix, down, in_memory, status):
    url, process = private_redis
    snapshot_url = url if down == "snapshot store" else redis_url()
    store = open_store(snapshot_url, prefix=redis_prefix)
    publish_with_offers(store)
    store.close()
    limits_url = url if down == "limits store" else redis_url()
    with _offers_client(snapshot_url, redis_prefix, limits_url, redis_prefix,
                        offers_profiles_in_memory=in_memory) as client:
        assert client.get("/v1/customers/c2/offers").status_code == 200  # catalogue and snapshot known
        process.kill()
        process.wait()
        preview = client.get("/v1/offers/preview")
    # with every profile held, the preview needs only the limits store's counters
    assert preview.status_code == status
    if status == 503:
        assert preview.headers["retry-after"] == "1"
    else:
        assert preview.json()["customers"] == 3


def test_a_hung_store_holds_in_memory_answers_only_briefly(private_redis):
    url, process = private_redis
    store = open_store(url, prefix="outage")
    publish_hand_made(store)
    store.close()
    settings = ServingSettings(store_url=f"{url}?socket_timeout=1", store_prefix="outage",
                               snapshot_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/items/popular", params={"k": 2}).status_code == 200
        process.send_signal(signal.SIGSTOP)
        try:
            timings = []
            for _ in range(30):
                started = time.perf_counter()
                answer = client.get("/v1/items/popular", params={"k": 2})
                timings.append(time.perf_counter() - started)
                assert answer.status_code == 200
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGCONT)
    # The first re-read that hangs holds requests for at most its wait (0.25 s); once it has failed on
    # the 1 s timeout, no request waits for the store again. Before, every re-read held every request
    # for the whole timeout.
    assert sum(timings) < 1.0, timings


def test_a_snapshot_that_fails_to_load_leaves_the_current_one_serving(redis_prefix):
    store = open_store(redis_url(), prefix=redis_prefix)
    first = publish_hand_made(store)
    settings = ServingSettings(store_url=redis_url(), store_prefix=redis_prefix, snapshot_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/items/popular").json()["snapshot_id"] == first.snapshot_id
        broken = publish_hand_made(store)
        admin = redis.Redis.from_url(redis_url())
        admin.delete(*admin.keys(f"{redis_prefix}:snap:{broken.snapshot_id}:meta:*"))
        answer = client.get("/v1/items/popular")
        repaired = publish_hand_made(store)
        after = client.get("/v1/items/popular")
    store.close()
    assert answer.status_code == 200 and answer.json()["snapshot_id"] == first.snapshot_id
    assert after.json()["snapshot_id"] == repaired.snapshot_id
