"""A minimal asyncio Redis client for the serving hot path: one connection per worker, multiplexed.

Redis answers the commands of one connection in order, so every request of a worker can share a
single connection: commands are written back to back and each caller awaits the reply at its place
in the queue. Compared with a pooled ``redis.asyncio`` client this skips per-command pool checkout,
retry wrappers and argument encoding in Python, which on a two-core machine is the difference
between Redis and the web framework dominating a request's cost. Used only for single reads
(``GET``/``HGET``); pipelines, scans and writes go through redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hiredis
import redis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from feature_store.base import StoreError, StoreUnavailableError


class RedisUnavailableError(StoreUnavailableError):
    """The connection to Redis failed, closed or timed out."""


class RedisReplyError(StoreError):
    """Redis answered a command with an error (``NOSCRIPT``, ``WRONGTYPE``, ...)."""


async def reporting_unavailable(awaitable: Awaitable[Any], url: str) -> Any:
    """Await a redis-py call, reporting connection trouble as :class:`RedisUnavailableError` (which the
    service answers with 503) under ``url`` without its password, since the message reaches clients."""
    try:
        return await awaitable
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailableError(f"Redis at {without_password(url)} is unavailable: {exc}") from exc


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _Protocol(asyncio.Protocol):
    """One connection; replies are matched to waiters by order.

    A single watchdog per connection, instead of a timer per command, fails every waiter once the
    oldest has waited ``timeout_seconds`` (checked four times per timeout): a stalled connection holds
    every later reply hostage, so it is dropped and the next command reconnects."""

    def __init__(self, timeout_seconds: float) -> None:
        self._reader = hiredis.Reader()
        # (future, deadline, number of replies it waits for): a batch of commands has one future
        self._waiters: deque[tuple[asyncio.Future, float, int]] = deque()
        self._batch: list = []  # replies received so far for the batch at the head
        self._outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timeout_seconds = timeout_seconds
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._watch()

    def _watch(self) -> None:
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        if self._waiters and self._waiters[0][1] <= loop.time():
            self.fail(RedisUnavailableError("Redis did not answer in time"))
            self.close()
            return
        self._watchdog = loop.call_later(self.timeout_seconds / 4, self._watch)

    def fail(self, exc: Exception) -> None:
        self._batch = []
        while self._waiters:
            waiter = self._waiters.popleft()[0]
            if not waiter.done():
                waiter.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter, _, expected = self._waiters[0]
            if expected > 1:
                self._batch.append(reply)
                if len(self._batch) < expected:
                    continue
                reply, self._batch = self._batch, []
                reply = next((r for r in reply if isinstance(r, hiredis.ReplyError)), reply)
            self._waiters.popleft()
            if waiter.done():  # its caller timed out or was cancelled; the reply is simply dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RedisReplyError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.fail(RedisUnavailableError(f"connection to Redis lost: {exc or 'closed'}"))

    def send(self, packed: bytes, loop: asyncio.AbstractEventLoop, replies: int = 1) -> asyncio.Future:
        """Queue ``packed`` (one command, or ``replies`` commands whose replies come back as a list)."""
        if self.closed or self.transport is None:
            raise RedisUnavailableError("connection to Redis is closed")
        waiter = loop.create_future()
        self._waiters.append((waiter, loop.time() + self.timeout_seconds, replies))
        # Commands issued in one turn of the event loop leave in one write: under load that is one
        # system call for many requests instead of one each.
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(packed)
        return waiter

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(outgoing))

    def close(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None:
            self.transport.close()


class MultiplexedRedis:
    """``await client.execute("HGET", key, field)`` over one shared connection, reconnecting on demand."""

    def __init__(self, url: str, timeout_seconds: float = 2.0) -> None:
        self._options: dict[str, Any] = parse_url(url)
        self.timeout_seconds = timeout_seconds
        self._protocol: _Protocol | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._options
        if options.get("connection_class") is UnixDomainSocketConnection:
            _, protocol = await loop.create_unix_connection(lambda: _Protocol(self.timeout_seconds),
                                                            options["path"])
        else:
            tls = ssl.create_default_context() if options.get("connection_class") is SSLConnection else None
            _, protocol = await loop.create_connection(lambda: _Protocol(self.timeout_seconds),
                                                       options.get("host", "localhost"),
                                                       int(options.get("port", 6379)), ssl=tls)
        setup = []
        if options.get("password"):
            auth = [options["username"], options["password"]] if options.get("username") else [options["password"]]
            setup.append(("AUTH", *auth))
        if int(options.get("db", 0)):
            setup.append(("SELECT", str(options["db"])))
        for command in setup:
            await protocol.send(hiredis.pack_command(command), loop)
        return protocol

    async def _protocol_ready(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        async with self._lock:
            if self._protocol is None or self._protocol.closed:
                try:
                    self._protocol = await asyncio.wait_for(self._connect(), self.timeout_seconds)
                except (OSError, TimeoutError) as exc:
                    raise RedisUnavailableError(f"cannot connect to Redis: {exc}") from exc
            return self._protocol

    async def execute(self, *args: str | bytes | int | float) -> Any:
        protocol = await self._protocol_ready()
        return await protocol.send(hiredis.pack_command(args), asyncio.get_running_loop())

    async def execute_all(self, commands: list[tuple]) -> list[Any]:
        """Several commands in one write; their replies in order (the first error is raised)."""
        if not commands:
            return []
        protocol = await self._protocol_ready()
        loop = asyncio.get_running_loop()
        if len(commands) == 1:
            return [await protocol.send(hiredis.pack_command(commands[0]), loop)]
        packed = b"".join([hiredis.pack_command(command) for command in commands])
        return await protocol.send(packed, loop, replies=len(commands))

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
