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
from urllib.parse import urlsplit

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
    """``url`` as clients may see it: scheme, host, port and path only. The user info and the query
    string go, since redis-py takes a password from either (``?password=...``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# The TLS options of redis-py's SSLConnection that this client honours; OCSP checks are not among them.
_TLS_OPTIONS = {"ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_include_verify_flags", "ssl_exclude_verify_flags",
                "ssl_ca_certs", "ssl_ca_data", "ssl_check_hostname", "ssl_ca_path", "ssl_password",
                "ssl_min_version", "ssl_ciphers"}


def _check_tls_options(options: dict[str, Any]) -> None:
    # redis-py rejects an unknown connection argument too; a misspelt one must not weaken verification
    unknown = sorted(name for name in options if name.startswith("ssl_") and name not in _TLS_OPTIONS)
    if unknown:
        raise ValueError(f"unsupported TLS option(s) in the Redis URL: {', '.join(unknown)}")
    cert_reqs = options.get("ssl_cert_reqs", "required")
    if isinstance(cert_reqs, str) and cert_reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, not {cert_reqs!r}")


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The context redis-py's ``SSLConnection`` builds from the same options, so that the serving client
    and the publishing one accept the same servers."""
    cert_reqs = options.get("ssl_cert_reqs", "required")
    verify_mode = ssl.CERT_NONE if cert_reqs is None else _CERT_REQS.get(cert_reqs, cert_reqs)
    context = ssl.create_default_context()
    context.check_hostname = bool(options.get("ssl_check_hostname", True)) and verify_mode != ssl.CERT_NONE
    context.verify_mode = verify_mode
    for flag in options.get("ssl_include_verify_flags") or ():
        context.verify_flags |= flag
    for flag in options.get("ssl_exclude_verify_flags") or ():
        context.verify_flags &= ~flag
    if options.get("ssl_certfile") or options.get("ssl_keyfile"):
        context.load_cert_chain(certfile=options.get("ssl_certfile"), keyfile=options.get("ssl_keyfile"),
                                password=options.get("ssl_password"))
    if any(options.get(name) is not None for name in ("ssl_ca_certs", "ssl_ca_path", "ssl_ca_data")):
        context.load_verify_locations(cafile=options.get("ssl_ca_certs"), capath=options.get("ssl_ca_path"),
                                      cadata=options.get("ssl_ca_data"))
    if options.get("ssl_min_version") is not None:
        context.minimum_version = options["ssl_min_version"]
    if options.get("ssl_ciphers"):
        context.set_ciphers(options["ssl_ciphers"])
    return context


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
                # a server that now wants a password (or another one) is an outage, not a bad command
                unauthorised = str(reply).startswith(("NOAUTH", "WRONGPASS"))
                waiter.set_exception((RedisUnavailableError if unauthorised else RedisReplyError)(str(reply)))
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
    """``await client.execute("HGET", key, field)`` over one shared connection, reconnecting on demand.

    The command timeout is ``timeout_seconds`` if given, else the URL's ``socket_timeout``, else 2 s;
    connecting may take the URL's ``socket_connect_timeout`` instead, as with redis-py."""

    def __init__(self, url: str, timeout_seconds: float | None = None) -> None:
        self._options: dict[str, Any] = parse_url(url)
        options = self._options
        self._tls = options.get("connection_class") is SSLConnection
        if self._tls:
            _check_tls_options(options)
        if timeout_seconds is None:
            timeout_seconds = options.get("socket_timeout") or 2.0
        self.timeout_seconds = timeout_seconds
        self.connect_timeout_seconds = options.get("socket_connect_timeout") or self.timeout_seconds
        if options.get("connection_class") is UnixDomainSocketConnection:
            self._address = options.get("path", "")
        else:
            self._address = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
        self._protocol: _Protocol | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._options
        if options.get("connection_class") is UnixDomainSocketConnection:
            _, protocol = await loop.create_unix_connection(lambda: _Protocol(self.timeout_seconds),
                                                            options["path"])
        else:
            _, protocol = await loop.create_connection(lambda: _Protocol(self.timeout_seconds),
                                                       options.get("host", "localhost"),
                                                       int(options.get("port", 6379)),
                                                       ssl=_ssl_context(options) if self._tls else None)
        setup = []
        if options.get("password"):
            auth = [options["username"], options["password"]] if options.get("username") else [options["password"]]
            setup.append(("AUTH", *auth))
        if int(options.get("db", 0)):
            setup.append(("SELECT", str(options["db"])))
        try:
            for command in setup:
                try:
                    await protocol.send(hiredis.pack_command(command), loop)
                except (RedisReplyError, RedisUnavailableError) as exc:
                    # a rotated password or a missing database is an outage to the caller, not a bug;
                    # the message names the command only, since AUTH's arguments hold the password
                    raise RedisUnavailableError(f"Redis at {self._address}: {command[0]} failed: {exc}") from exc
        except BaseException:
            protocol.close()  # otherwise every retry leaves a half-open connection behind
            raise
        return protocol

    async def _protocol_ready(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        async with self._lock:
            if self._protocol is None or self._protocol.closed:
                try:
                    self._protocol = await asyncio.wait_for(self._connect(), self.connect_timeout_seconds)
                except RedisUnavailableError:
                    raise  # a refused AUTH or SELECT, already saying so
                except TimeoutError as exc:
                    raise RedisUnavailableError(f"cannot connect to Redis at {self._address} "
                                                f"within {self.connect_timeout_seconds} s") from exc
                except OSError as exc:
                    raise RedisUnavailableError(f"cannot connect to Redis at {self._address}: {exc}") from exc
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
