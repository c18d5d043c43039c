"""Shared fixtures: a real Redis under a private key prefix, the shared data folder, synthetic data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("RECSYS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
ONLINE_RETAIL = SHARED_DATA / "online_retail.parquet"
CDNOW = SHARED_DATA / "cdnow"


def redis_url() -> str:
    return os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_prefix():
    """A unique key prefix on the test Redis database; every key under it is deleted afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_url())
    try:
        client.ping()
    except redis.ConnectionError as exc:  # the test command starts a server; a bare pytest may not
        pytest.skip(f"no Redis server answers at {redis_url()} ({exc}); run ./scripts/test.sh")
    prefix = f"recsys-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"{ONLINE_RETAIL} is absent: the Online Retail data set lives in ../shared/data")
    return ONLINE_RETAIL


@pytest.fixture(scope="session")
def cdnow_dir() -> Path:
    if not CDNOW.exists():
        pytest.skip(f"{CDNOW} is absent: the CDNOW data set lives in ../shared/data/cdnow")
    return CDNOW
