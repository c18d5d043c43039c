"""The serving hot path's Redis client: replies matched by order, stalls and drops detected."""

from __future__ import annotations

import asyncio
import time

import pytest

from feature_store.multiplexed import MultiplexedRedis, RedisReplyError, RedisUnavailableError, without_password
from tests.conftest import redis_url


def test_concurrent_commands_get_their_own_replies():
    async def main():
        client = MultiplexedRedis(redis_url())
        try:
            replies = await asyncio.gather(*(client.execute("ECHO", f"m{i}") for i in range(500)))
            assert replies == [f"m{i}".encode() for i in range(500)]
            batches = await asyncio.gather(*(client.execute_all([("ECHO", f"a{i}"), ("ECHO", f"b{i}")])
                                             for i in range(100)), client.execute("ECHO", "alone"))
            assert batches[:100] == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(100)]
            assert batches[100] == b"alone" and await client.execute_all([]) == []
            assert await client.execute_all([("ECHO", "one")]) == [b"one"]
            with pytest.raises(RedisReplyError, match="unknown command"):
                await client.execute("NOSUCHCOMMAND")
            with pytest.raises(RedisReplyError, match="unknown command"):  # the batch's first error
                await client.execute_all([("ECHO", "a"), ("NOSUCHCOMMAND",), ("ECHO", "b")])
            assert await client.execute("ECHO", "still fine") == b"still fine"
        finally:
            await client.close()

    asyncio.run(main())


def test_a_server_that_stops_answering_fails_the_waiters_and_the_next_call_reconnects():
    async def main():
        answering = True
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while data := await reader.read(1024):
                if answering:
                    writer.write(b"+PONG\r\n" * data.count(b"PING"))
                    await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = MultiplexedRedis(f"redis://127.0.0.1:{port}", timeout_seconds=0.4)
        try:
            assert await client.execute("PING") == b"PONG"
            answering = False
            started = time.monotonic()
            results = await asyncio.gather(*(client.execute("PING") for _ in range(3)), return_exceptions=True)
            waited = time.monotonic() - started
            assert all(isinstance(r, RedisUnavailableError) for r in results)
            assert 0.4 <= waited < 1.0  # the timeout, plus at most one watchdog period
            answering = True
            assert await client.execute("PING") == b"PONG"
            assert connections == 2
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@cache.internal:6380/2", "redis://:***@cache.internal:6380/2"),
    ("rediss://app:s3cret@cache.internal/0", "rediss://app:***@cache.internal/0"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_unavailable_messages_never_carry_the_password(url, shown):
    # the message of a RedisUnavailableError is part of the 503 a client receives
    assert without_password(url) == shown
