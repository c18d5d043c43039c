"""Redis backend: snapshots as bucketed hashes (see :mod:`feature_store.keys`), one atomic switch.

Writes are buffered per hash bucket and sent as large HSETs on a non-transactional pipeline, which is
what makes hundreds of thousands of values per second possible from one Python process. Every hash of
an uncommitted snapshot carries a TTL from the moment it exists, so a publisher killed midway leaves
only garbage that expires by itself; commit removes the TTLs and switches ``current`` in one MULTI/EXEC.
"""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis
import redis.asyncio as aredis

try:
    import hiredis
except ImportError:  # redis-py packs in pure Python instead
    hiredis = None

from feature_store.base import (
    AsyncOnlineStoreReader,
    Manifest,
    ManifestCache,
    OnlineStore,
    SnapshotNotFoundError,
    SnapshotStateError,
    SnapshotWriter,
    StoreError,
    check_batch,
)
from feature_store.keys import DEFAULT_N_BUCKETS, KeyScheme, bucket_of, new_snapshot_id, validate_name
from feature_store.multiplexed import MultiplexedRedis, reporting_unavailable
from feature_store.redis_retry import reconnect_once

# Creates a bucket and gives it its TTL in one atomic step; a plain HSET followed by EXPIRE could be
# cut in two by a publisher killed mid-pipeline and leave a hash that never expires.
_CREATE_BUCKET = "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) return redis.call('EXPIRE', KEYS[1], ARGV[1])"

def _decode(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _parse_manifest(raw: bytes | None) -> Manifest | None:
    return None if raw is None else Manifest.from_dict(json.loads(raw))


def _send_all(client: redis.Redis, commands: list[tuple]) -> None:
    """Send commands back to back on one connection and read every reply.

    What a non-transactional pipeline does, without its per-argument Python work, which costs more
    than the server's own work for hashes of small values.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        if hiredis is not None:
            connection.send_packed_command([hiredis.pack_command(args) for args in commands])
        else:
            connection.send_packed_command(connection.pack_commands(commands))
        for _ in commands:
            connection.read_response()
    except BaseException:
        # Unread replies would be taken for the answers to the next command on this connection.
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def _bucket_groups(manifest: Manifest, namespace: str, batch_size: int) -> list[range]:
    """Buckets to fetch per round trip: several small ones at a time, about one batch in memory."""
    n_buckets = int(manifest.layout["n_buckets"])
    per_bucket = max(1, manifest.counts.get(namespace, 0) // n_buckets)
    step = max(1, batch_size // per_bucket)
    return [range(start, min(start + step, n_buckets)) for start in range(0, n_buckets, step)]


def _group_by_bucket(keys: Sequence[str], n_buckets: int) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(bucket_of(key, n_buckets), []).append(i)
    return groups


class RedisOnlineStore(OnlineStore):
    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "recsys",
        n_buckets: int = DEFAULT_N_BUCKETS,
        retain: int = 3,
        expire_seconds: int = 600,
        pending_ttl_seconds: int = 86_400,
        write_batch_values: int = 200_000,
    ) -> None:
        settings = dict(
            n_buckets=n_buckets,
            retain=retain,
            expire_seconds=expire_seconds,
            pending_ttl_seconds=pending_ttl_seconds,
            write_batch_values=write_batch_values,
        )
        for name, value in settings.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.url = url
        self.keys = KeyScheme(prefix)
        self.n_buckets = n_buckets
        self.retain = retain
        self.expire_seconds = expire_seconds
        self.pending_ttl_seconds = pending_ttl_seconds
        self.write_batch_values = write_batch_values
        self._client: redis.Redis | None = None
        self._manifests = ManifestCache()

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        return self._client

    # -- writing ------------------------------------------------------------------------------------

    def begin_snapshot(self, snapshot_id: str | None = None) -> SnapshotWriter:
        snapshot_id = validate_name("snapshot id", snapshot_id or new_snapshot_id())
        # One writer per id, as on SQLite: the claim lasts as long as a killed writer's buckets, so a retry
        # under the same id cannot mix with what it left. Claimed before the manifest check, since a commit
        # sets the manifest and drops its claim in one transaction.
        claim = self.keys.writer(snapshot_id)
        if not self.client.set(claim, 1, nx=True, ex=self.pending_ttl_seconds):
            raise StoreError(f"snapshot {snapshot_id} is being written by another writer, or its writer died "
                             f"less than pending_ttl_seconds ago")
        if self.client.exists(self.keys.manifest(snapshot_id)):
            self.client.delete(claim)
            raise StoreError(f"snapshot {snapshot_id} already exists")
        return RedisSnapshotWriter(self, snapshot_id)

    def _apply_retention(self) -> None:
        """Give snapshots beyond ``retain`` a TTL (never the current one) and drop them from the index.

        They expire rather than vanish so that a request that resolved one a moment ago still reads it.
        """
        keys = self.keys

        def expire_old(pipe: redis.client.Pipeline) -> None:
            current = _decode(pipe.get(keys.current))
            ids = [_decode(s) for s in pipe.zrevrange(keys.index, 0, -1)]
            victims = [sid for sid in ids[self.retain :] if sid != current]
            if not victims:
                return
            manifests = pipe.mget([keys.manifest(sid) for sid in victims])
            pipe.multi()
            for sid, raw in zip(victims, manifests, strict=True):
                manifest = _parse_manifest(raw)
                if manifest is not None:
                    n_buckets = int(manifest.layout.get("n_buckets", self.n_buckets))
                    for namespace in manifest.counts:
                        for key in keys.buckets(sid, namespace, n_buckets):
                            pipe.expire(key, self.expire_seconds)
                pipe.expire(keys.manifest(sid), self.expire_seconds)
            pipe.zrem(keys.index, *victims)

        self.client.transaction(expire_old, keys.current, keys.index)

    # -- snapshots ----------------------------------------------------------------------------------

    def current_snapshot_id(self) -> str | None:
        return _decode(self.client.get(self.keys.current))

    def get_manifest(self, snapshot_id: str) -> Manifest | None:
        manifest = self._manifests.get(snapshot_id)
        if manifest is None:
            manifest = _parse_manifest(self.client.get(self.keys.manifest(snapshot_id)))
            if manifest is not None:
                self._manifests.put(manifest)
        return manifest

    def list_snapshots(self) -> list[Manifest]:
        ids = self.client.zrevrange(self.keys.index, 0, -1)
        if not ids:
            return []
        raws = self.client.mget([self.keys.manifest(_decode(sid)) for sid in ids])
        return [m for m in map(_parse_manifest, raws) if m is not None]

    def set_current(self, snapshot_id: str) -> Manifest:
        keys = self.keys

        def point(pipe: redis.client.Pipeline) -> Manifest:
            if pipe.zscore(keys.index, snapshot_id) is None:
                raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not a retained committed snapshot")
            manifest = _parse_manifest(pipe.get(keys.manifest(snapshot_id)))
            if manifest is None:
                raise SnapshotNotFoundError(f"snapshot {snapshot_id} has no manifest")
            pipe.multi()
            pipe.set(keys.current, snapshot_id)
            return manifest

        return self.client.transaction(point, keys.index, value_from_callable=True)

    # -- reading ------------------------------------------------------------------------------------

    def _n_buckets(self, snapshot_id: str) -> int:
        manifest = self.get_manifest(snapshot_id)
        if manifest is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not committed or has expired")
        return int(manifest.layout["n_buckets"])

    def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None:
        n_buckets = self._n_buckets(snapshot_id)
        return self.client.hget(self.keys.bucket(snapshot_id, namespace, bucket_of(key, n_buckets)), key)

    def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        n_buckets = self._n_buckets(snapshot_id)
        groups = _group_by_bucket(keys, n_buckets)
        pipe = self.client.pipeline(transaction=False)
        for bucket, positions in groups.items():
            pipe.hmget(self.keys.bucket(snapshot_id, namespace, bucket), [keys[i] for i in positions])
        out: list[bytes | None] = [None] * len(keys)
        for positions, values in zip(groups.values(), pipe.execute(), strict=True):
            for i, value in zip(positions, values, strict=True):
                out[i] = value
        return out

    def iter_namespace(
        self, snapshot_id: str, namespace: str, batch_size: int = 10_000
    ) -> Iterator[list[tuple[str, bytes]]]:
        manifest = self.get_manifest(snapshot_id)
        if manifest is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not committed or has expired")
        batch: list[tuple[str, bytes]] = []
        for group in _bucket_groups(manifest, namespace, batch_size):
            pipe = self.client.pipeline(transaction=False)
            for bucket in group:
                pipe.hgetall(self.keys.bucket(snapshot_id, namespace, bucket))
            for items in pipe.execute():
                batch.extend((k.decode(), v) for k, v in items.items())
            while len(batch) >= batch_size:
                yield batch[:batch_size]
                batch = batch[batch_size:]
        if batch:
            yield batch

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class RedisSnapshotWriter(SnapshotWriter):
    def __init__(self, store: RedisOnlineStore, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._store = store
        self._keys = store.keys
        self._n_buckets = store.n_buckets
        self._started = time.monotonic()
        self._state = "open"
        # namespace -> bucket -> [field, value, field, value, ...] awaiting the next flush
        self._buffer: dict[str, dict[int, list]] = {}
        self._buffered = 0
        # namespace -> buckets that already exist in Redis (and so carry their TTL)
        self._created: dict[str, set[int]] = {}
        # One batch travels to Redis on a helper thread while the caller encodes the next one; the
        # socket calls release the GIL, so client and server work in parallel on two cores.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-writer")
        self._in_flight: Future | None = None

    def _check_open(self) -> None:
        if self._state != "open":
            raise SnapshotStateError(f"snapshot {self.snapshot_id} was already {self._state}")

    def write(self, namespace: str, keys: Sequence[str], values: Sequence[bytes]) -> None:
        self._check_open()
        check_batch(namespace, keys, values)
        # Encoded before anything is buffered: a key UTF-8 cannot hold fails the whole call, as on SQLite.
        encoded = [key.encode() for key in keys]
        self._created.setdefault(namespace, set())
        buckets = self._buffer.setdefault(namespace, {})
        n_buckets = self._n_buckets
        crc32 = zlib.crc32  # bucket_of, inlined: this loop runs once per value
        for key, raw, value in zip(keys, encoded, values, strict=True):
            b = crc32(raw) % n_buckets
            fields = buckets.get(b)
            if fields is None:
                buckets[b] = fields = []
            fields.append(key)
            fields.append(value)
        self._buffered += len(keys)
        if self._buffered >= self._store.write_batch_values:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        ttl = self._store.pending_ttl_seconds
        commands: list[tuple] = []
        for namespace, buckets in self._buffer.items():
            created = self._created[namespace]
            for b, fields in buckets.items():
                key = self._keys.bucket(self.snapshot_id, namespace, b)
                if b not in created:
                    commands.append(("EVAL", _CREATE_BUCKET, 1, key, ttl, fields[0], fields[1]))
                    created.add(b)
                    if len(fields) > 2:
                        commands.append(("HSET", key, *fields[2:]))
                else:
                    commands.append(("HSET", key, *fields))
        self._wait_in_flight()
        self._in_flight = self._sender.submit(_send_all, self._store.client, commands)
        self._buffer = {}
        self._buffered = 0

    def _wait_in_flight(self) -> None:
        """Block until the batch on its way has been answered; raise what sending it raised."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _bucket_keys(self) -> list[str]:
        return [
            self._keys.bucket(self.snapshot_id, namespace, b)
            for namespace, created in self._created.items()
            for b in sorted(created)
        ]

    def commit(self, metadata: Mapping[str, Any] | None = None) -> Manifest:
        self._check_open()
        self._flush()
        self._wait_in_flight()
        self._sender.shutdown()
        client = self._store.client
        if time.monotonic() - self._started > self._store.pending_ttl_seconds:
            self.abort()
            raise StoreError(f"snapshot {self.snapshot_id} outlived pending_ttl_seconds while being written")
        pipe = client.pipeline(transaction=False)
        for namespace, created in self._created.items():
            for b in created:
                pipe.hlen(self._keys.bucket(self.snapshot_id, namespace, b))
        lengths = iter(pipe.execute())
        counts = {}
        for namespace, created in self._created.items():
            sizes = [next(lengths) for _ in created]
            if 0 in sizes:
                self.abort()
                raise StoreError(f"part of snapshot {self.snapshot_id} expired before commit")
            counts[namespace] = sum(sizes)
        bucket_keys = self._bucket_keys()

        def switch(pipe: redis.client.Pipeline) -> Manifest:
            # Stamped inside the watched transaction: a commit landing between the stamp and EXEC makes
            # this one retry with a later stamp, so the current snapshot is always the newest listed.
            manifest, stamp = Manifest.made_now(self.snapshot_id, counts, metadata, {"n_buckets": self._n_buckets})
            pipe.multi()
            # The TTLs go in the same transaction as the switch: persisted keys without a manifest would
            # never expire if the publisher died between the two.
            for key in bucket_keys:
                pipe.persist(key)
            pipe.set(self._keys.manifest(self.snapshot_id), json.dumps(manifest.to_dict(), sort_keys=True))
            pipe.zadd(self._keys.index, {self.snapshot_id: stamp})
            pipe.set(self._keys.current, self.snapshot_id)
            pipe.delete(self._keys.writer(self.snapshot_id))
            return manifest

        manifest = client.transaction(switch, self._keys.current, self._keys.index, value_from_callable=True)
        self._state = "committed"
        self._store._apply_retention()
        return manifest

    def abort(self) -> None:
        if self._state == "aborted":
            return
        self._check_open()
        self._state = "aborted"
        self._buffer = {}
        self._buffered = 0
        # What is on its way must land before the unlink, or it would recreate buckets after it.
        with contextlib.suppress(Exception):
            self._wait_in_flight()
        self._sender.shutdown()
        keys = self._bucket_keys()
        for start in range(0, len(keys), 1000):
            self._store.client.unlink(*keys[start : start + 1000])
        self._store.client.delete(self._keys.writer(self.snapshot_id))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._state == "open":
            self.abort()


class AsyncRedisReader(AsyncOnlineStoreReader):
    """The serving side: a ``get`` for a known snapshot id is one round trip once its manifest is cached."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "recsys") -> None:
        self.url = url
        self.keys = KeyScheme(prefix)
        self._client: aredis.Redis | None = None
        self._fast = MultiplexedRedis(url)
        self._manifests = ManifestCache()

    @property
    def client(self) -> aredis.Redis:
        if self._client is None:
            self._client = aredis.Redis.from_url(self.url, **reconnect_once())
        return self._client

    async def current_snapshot_id(self) -> str | None:
        return _decode(await self._fast.execute("GET", self.keys.current))

    async def _redis(self, awaitable):
        return await reporting_unavailable(awaitable, self.url)

    async def get_manifest(self, snapshot_id: str) -> Manifest | None:
        manifest = self._manifests.get(snapshot_id)
        if manifest is None:
            manifest = _parse_manifest(await self._redis(self.client.get(self.keys.manifest(snapshot_id))))
            if manifest is not None:
                self._manifests.put(manifest)
        return manifest

    async def _n_buckets(self, snapshot_id: str) -> int:
        manifest = await self.get_manifest(snapshot_id)
        if manifest is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not committed or has expired")
        return int(manifest.layout["n_buckets"])

    async def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None:
        bucket = bucket_of(key, await self._n_buckets(snapshot_id))
        return await self._fast.execute("HGET", self.keys.bucket(snapshot_id, namespace, bucket), key)

    async def get_each(self, snapshot_id: str, lookups: Sequence[tuple[str, str]]) -> list[bytes | None]:
        n_buckets = await self._n_buckets(snapshot_id)
        return await self._fast.execute_all(
            [("HGET", self.keys.bucket(snapshot_id, namespace, bucket_of(key, n_buckets)), key)
             for namespace, key in lookups])

    async def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        n_buckets = await self._n_buckets(snapshot_id)
        groups = _group_by_bucket(keys, n_buckets)
        async with self.client.pipeline(transaction=False) as pipe:
            for bucket, positions in groups.items():
                pipe.hmget(self.keys.bucket(snapshot_id, namespace, bucket), [keys[i] for i in positions])
            results = await self._redis(pipe.execute())
        out: list[bytes | None] = [None] * len(keys)
        for positions, values in zip(groups.values(), results, strict=True):
            for i, value in zip(positions, values, strict=True):
                out[i] = value
        return out

    async def iter_namespace(self, snapshot_id: str, namespace: str, batch_size: int = 10_000):
        manifest = await self.get_manifest(snapshot_id)
        if manifest is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not committed or has expired")
        batch: list[tuple[str, bytes]] = []
        for group in _bucket_groups(manifest, namespace, batch_size):
            async with self.client.pipeline(transaction=False) as pipe:
                for bucket in group:
                    pipe.hgetall(self.keys.bucket(snapshot_id, namespace, bucket))
                results = await self._redis(pipe.execute())
            for items in results:
                batch.extend((k.decode(), v) for k, v in items.items())
            while len(batch) >= batch_size:
                yield batch[:batch_size]
                batch = batch[batch_size:]
        if batch:
            yield batch

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except redis.RedisError:
            return False

    async def close(self) -> None:
        await self._fast.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
