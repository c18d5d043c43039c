"""The serving side's redis-py clients answer after Redis closed their pooled connection (a restart,
or its idle ``timeout``), instead of failing the first command after it."""

from __future__ import annotations

import asyncio

import redis

from feature_store.limits_redis import RedisLimitsStore
from feature_store.redis_store import AsyncRedisReader
from tests.conftest import redis_url


def _kill(client_id: int) -> None:
    admin = redis.Redis.from_url(redis_url())
    try:
        assert admin.client_kill_filter(_id=client_id) == 1
    finally:
        admin.close()


def test_the_readiness_client_reconnects_after_the_server_closed_its_connection():
    async def main():
        reader = AsyncRedisReader(redis_url(), prefix="reconnect")
        try:
            assert await reader.ping()
            _kill(await reader.client.client_id())
            assert await reader.ping()
        finally:
            await reader.close()

    asyncio.run(main())


def test_the_limits_store_reports_usage_after_the_server_closed_its_connection():
    async def main():
        limits = RedisLimitsStore(redis_url(), prefix="reconnect-limits", max_connections=1)
        try:
            assert await limits.used(["nothing-here"]) == [0]
            _kill(await limits.client.client_id())
            assert await limits.used(["nothing-here"]) == [0]
        finally:
            await limits.close()

    asyncio.run(main())
