"""A storefront must never fall over: with its Redis gone, the API keeps answering from memory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis
from fastapi.testclient import TestClient

from feature_store import open_store
from serving.app import create_app
from serving.settings import ServingSettings
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
        popular = client.get("/v1/items/popular", params={"k": 2})
        ready = client.get("/health/ready")
        similar = client.get("/v1/items/A/similar")
    assert before["source"] == "personalised"
    assert during.status_code == 200
    body = during.json()
    assert body["source"] == "fallback" and body["fallback_reason"] == "store_unavailable"
    assert [i["item_id"] for i in body["items"]] == ["D", "A", "B"]
    assert body["snapshot_id"] == manifest.snapshot_id
    assert popular.status_code == 200 and [i["item_id"] for i in popular.json()["items"]] == ["D", "A"]
    assert ready.status_code == 503
    assert similar.status_code == 503 and similar.headers["retry-after"] == "1"
