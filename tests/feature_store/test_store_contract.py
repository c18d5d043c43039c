"""The online store contract, written once and run against every backend (Redis and SQLite)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from feature_store import (
    NoPreviousSnapshotError,
    OnlineStore,
    SnapshotNotFoundError,
    SnapshotStateError,
    StoreError,
    open_async_reader,
    open_store,
)
from feature_store.keys import KeyScheme
from tests.conftest import redis_url

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    kind: str
    url: str
    prefix: str
    opened: list[OnlineStore] = field(default_factory=list)

    def make(self, **options) -> OnlineStore:
        store = open_store(self.url, prefix=self.prefix, **options)
        self.opened.append(store)
        return store

    def reader(self):
        return open_async_reader(self.url, prefix=self.prefix)

    def assert_retired(self, snapshot_id: str, expire_seconds: int = 600) -> None:
        """A snapshot pushed out of retention stays readable for ``expire_seconds``, since a worker may serve
        it until its next refresh: Redis keeps it under a TTL, SQLite marks it retired."""
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            keys = list(client.scan_iter(match=KeyScheme(self.prefix).snapshot_pattern(snapshot_id), count=10_000))
            assert keys, "the retired snapshot vanished instead of expiring"
            assert all(0 < client.ttl(key) <= expire_seconds for key in keys)
            client.close()
        else:
            assert self.entry_count(snapshot_id) > 0

    def stored_keys(self, snapshot_id: str) -> int:
        if self.kind == "sqlite":
            return self.entry_count(snapshot_id)
        import redis

        client = redis.Redis.from_url(self.url)
        keys = list(client.scan_iter(match=KeyScheme(self.prefix).snapshot_pattern(snapshot_id), count=10_000))
        client.close()
        return len(keys)

    def entry_count(self, snapshot_id: str) -> int:
        with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
            return conn.execute(
                f'SELECT count(*) FROM "{self.prefix}_entries" WHERE snapshot_id = ?', (snapshot_id,)
            ).fetchone()[0]


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "sqlite"])
def backend(request, tmp_path):
    if request.param == "redis":
        b = Backend("redis", redis_url(), request.getfixturevalue("redis_prefix"))
    else:
        b = Backend("sqlite", f"sqlite:///{tmp_path / 'store.sqlite'}", "recsys")
    yield b
    for store in b.opened:
        store.close()


def publish(store: OnlineStore, n: int = 50, tag: str = "", metadata: dict | None = None) -> str:
    with store.begin_snapshot() as writer:
        keys = [f"c{i}" for i in range(n)]
        writer.write("rec", keys, [f"rec-{k}{tag}".encode() for k in keys])
        writer.write("similar", keys[: n // 2], [f"sim-{k}{tag}".encode() for k in keys[: n // 2]])
        return writer.commit(metadata).snapshot_id


def test_write_commit_read(backend):
    store = backend.make()
    assert store.current_snapshot_id() is None and store.current_manifest() is None
    assert store.ping()
    sid = publish(store, metadata={"model": "als", "version": 3})
    assert store.current_snapshot_id() == sid
    manifest = store.current_manifest()
    assert manifest.snapshot_id == sid and manifest.metadata == {"model": "als", "version": 3}
    assert store.get_manifest(sid) == manifest
    assert store.get(sid, "rec", "c7") == b"rec-c7"
    assert store.get(sid, "rec", "nobody") is None
    assert store.get(sid, "other", "c7") is None
    assert store.get_many(sid, "similar", ["c1", "c40", "c2", "c1"]) == [b"sim-c1", None, b"sim-c2", b"sim-c1"]
    assert store.get_many(sid, "rec", []) == []


def test_manifest_counts_distinct_keys_per_namespace(backend):
    store = backend.make()
    with store.begin_snapshot() as writer:
        writer.write("rec", ["a", "b"], [b"1", b"2"])
        writer.write("rec", ["a", "c"], [b"3", b"4"])
        writer.write("similar", ["x"], [b"5"])
        writer.write("empty", [], [])
        manifest = writer.commit()
    assert manifest.counts == {"rec": 3, "similar": 1, "empty": 0}
    assert store.get_manifest(manifest.snapshot_id).counts == manifest.counts
    assert store.get(manifest.snapshot_id, "rec", "a") == b"3"


def test_uncommitted_snapshot_is_invisible(backend):
    store = backend.make()
    first = publish(store)
    writer = store.begin_snapshot()
    writer.write("rec", ["c1"], [b"new"])
    assert store.current_snapshot_id() == first
    assert store.get_manifest(writer.snapshot_id) is None
    assert [m.snapshot_id for m in store.list_snapshots()] == [first]
    with pytest.raises(SnapshotNotFoundError):
        store.get(writer.snapshot_id, "rec", "c1")
    writer.abort()
    assert store.current_snapshot_id() == first
    assert store.get(first, "rec", "c1") == b"rec-c1"
    with pytest.raises(SnapshotStateError):
        writer.write("rec", ["c1"], [b"again"])
    with pytest.raises(SnapshotStateError):
        writer.commit()


def test_exception_inside_writer_context_aborts(backend):
    store = backend.make()
    first = publish(store)
    with pytest.raises(RuntimeError, match="model failed"), store.begin_snapshot() as writer:
        writer.write("rec", ["c1"], [b"half-written"])
        raise RuntimeError("model failed")
    assert store.current_snapshot_id() == first
    assert [m.snapshot_id for m in store.list_snapshots()] == [first]
    assert store.get(first, "rec", "c1") == b"rec-c1"
    with pytest.raises(SnapshotStateError):
        writer.commit()


def test_commit_twice_is_refused(backend):
    store = backend.make()
    writer = store.begin_snapshot()
    writer.write("rec", ["a"], [b"1"])
    writer.commit()
    with pytest.raises(SnapshotStateError):
        writer.commit()
    with pytest.raises(SnapshotStateError):
        writer.abort()


def test_malformed_writes_are_rejected(backend):
    store = backend.make()
    with store.begin_snapshot() as writer:
        with pytest.raises(ValueError, match="2 keys but 1 values"):
            writer.write("rec", ["a", "b"], [b"1"])
        with pytest.raises(TypeError, match="bytes"):
            writer.write("rec", ["a"], ["not bytes"])
        with pytest.raises(ValueError, match="namespace"):
            writer.write("rec:x", ["a"], [b"1"])
        writer.abort()


def test_list_snapshots_newest_first(backend):
    store = backend.make(retain=5)
    ids = [publish(store, n=5) for _ in range(3)]
    assert [m.snapshot_id for m in store.list_snapshots()] == ids[::-1]
    assert ids == sorted(ids), "snapshot ids sort by creation time"


def test_set_current_and_rollback(backend):
    store = backend.make(retain=5)
    with pytest.raises(NoPreviousSnapshotError):
        store.rollback()
    s1, s2, s3 = (publish(store, n=5, tag=f"-{i}") for i in range(3))
    assert store.rollback().snapshot_id == s2
    assert store.current_snapshot_id() == s2
    assert store.rollback().snapshot_id == s1
    with pytest.raises(NoPreviousSnapshotError):
        store.rollback()
    assert store.set_current(s3).snapshot_id == s3
    assert store.get(store.current_snapshot_id(), "rec", "c1") == b"rec-c1-2"
    with pytest.raises(SnapshotNotFoundError):
        store.set_current("20000101T000000.000000Z-dead")
    assert store.current_snapshot_id() == s3


def test_retention_retires_snapshots_beyond_retain(backend):
    store = backend.make(retain=2)
    s1, s2 = publish(store, n=20), publish(store, n=20)
    assert [m.snapshot_id for m in store.list_snapshots()] == [s2, s1]
    s3 = publish(store, n=20)
    assert [m.snapshot_id for m in store.list_snapshots()] == [s3, s2]
    backend.assert_retired(s1)
    assert store.get(s1, "rec", "c3") == b"rec-c3"  # a worker that has not refreshed yet still reads it
    with pytest.raises(SnapshotNotFoundError):
        store.set_current(s1)
    assert store.get(s2, "rec", "c3") == b"rec-c3"


def test_retired_snapshots_are_removed_after_their_grace_period(backend):
    store = backend.make(retain=1, expire_seconds=1)
    s1 = publish(store, n=20)
    publish(store, n=20)
    assert backend.stored_keys(s1) > 0  # retired, within its grace period
    time.sleep(1.2)
    publish(store, n=20)  # Redis let it expire; SQLite deletes it at the next retention pass
    assert backend.stored_keys(s1) == 0


def test_iter_namespace_returns_everything(backend):
    store = backend.make()
    sid = publish(store, n=2_500)
    batches = list(store.iter_namespace(sid, "rec", batch_size=1_000))
    assert all(0 < len(batch) <= 1_000 for batch in batches)
    items = [item for batch in batches for item in batch]
    assert len(items) == 2_500
    assert dict(items) == {f"c{i}": f"rec-c{i}".encode() for i in range(2_500)}
    assert list(store.iter_namespace(sid, "absent")) == []


def test_async_reader_agrees_with_sync_store(backend):
    store = backend.make()
    sid = publish(store, n=300)

    async def read_all():
        reader = backend.reader()
        try:
            assert await reader.ping()
            current = await reader.current_snapshot_id()
            manifest = await reader.get_manifest(current)
            one = await reader.get(current, "rec", "c9")
            many = await reader.get_many(current, "similar", ["c1", "c299", "c0"])
            items = [item async for batch in reader.iter_namespace(current, "rec", batch_size=64) for item in batch]
            with pytest.raises(SnapshotNotFoundError):
                await reader.get("20000101T000000.000000Z-dead", "rec", "c1")
            return current, manifest, one, many, items
        finally:
            await reader.close()

    current, manifest, one, many, items = asyncio.run(read_all())
    assert current == sid
    assert manifest == store.get_manifest(sid)
    assert one == store.get(sid, "rec", "c9")
    assert many == store.get_many(sid, "similar", ["c1", "c299", "c0"])
    assert sorted(items) == sorted(item for batch in store.iter_namespace(sid, "rec") for item in batch)


KILLED_WRITER = """
import sys
from feature_store import open_store

url, prefix = sys.argv[1:3]
options = {"write_batch_values": 500} if url.startswith("redis") else {}
writer = open_store(url, prefix=prefix, **options).begin_snapshot()
print(writer.snapshot_id, flush=True)
written = 0
while True:
    keys = [f"c{i}" for i in range(written, written + 500)]
    writer.write("rec", keys, [b"from the killed publish"] * 500)
    written += 500
    if written == 2_000:
        print("written", flush=True)
"""


def test_publish_killed_midway_leaves_previous_snapshot(backend):
    store = backend.make()
    first = publish(store, n=3_000)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, backend.url, backend.prefix],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pending = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "written"
        time.sleep(0.05)  # let it die in the middle of a batch rather than between two
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()

    assert store.current_snapshot_id() == first
    assert [m.snapshot_id for m in store.list_snapshots()] == [first]
    assert store.get_manifest(pending) is None
    items = dict(item for batch in store.iter_namespace(first, "rec") for item in batch)
    assert items == {f"c{i}": f"rec-c{i}".encode() for i in range(3_000)}

    if backend.kind == "redis":
        import redis

        client = redis.Redis.from_url(backend.url)
        leftovers = list(client.scan_iter(match=KeyScheme(backend.prefix).snapshot_pattern(pending), count=10_000))
        assert leftovers, "the killed writer should have written some buckets"
        assert all(client.ttl(key) > 0 for key in leftovers), "leftovers of a killed publish must expire"
        client.close()
    else:
        assert backend.entry_count(pending) > 0
        # The next publish sweeps away uncommitted leftovers older than pending_ttl_seconds.
        backend.make(pending_ttl_seconds=0).begin_snapshot().abort()
        assert backend.entry_count(pending) == 0
        assert store.get(first, "rec", "c1") == b"rec-c1"


def test_reader_never_mixes_two_snapshots(backend):
    writer_store = backend.make(retain=10)
    reader_store = backend.make()
    keys = [f"c{i}" for i in range(200)]
    done = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def read_repeatedly():
        while not done.is_set():
            sid = reader_store.current_snapshot_id()
            if sid is None:
                continue
            values = reader_store.get_many(sid, "rec", keys[:20]) + [reader_store.get(sid, "similar", "c7")]
            owners = {None if v is None else v.decode().split("|")[0] for v in values}
            if owners != {sid}:
                problems.append(f"read under {sid} saw {owners}")
            seen.add(sid)

    def values_for(sid: str, namespace: str) -> list[bytes]:
        return [f"{sid}|{namespace}|{k}".encode() for k in keys]

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for _ in range(5):
            with writer_store.begin_snapshot() as writer:
                writer.write("rec", keys, values_for(writer.snapshot_id, "rec"))
                time.sleep(0.02)  # a reader that peeked at an uncommitted snapshot would get caught here
                writer.write("similar", keys, values_for(writer.snapshot_id, "similar"))
                writer.commit()
            time.sleep(0.03)
    finally:
        done.set()
        reader.join(timeout=10)
    assert not problems, problems[:5]
    assert len(seen) >= 2, "the reader should have seen the current snapshot change"


def test_a_sqlite_file_from_before_retirement_gains_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the snapshots table as earlier versions created it
        conn.execute('CREATE TABLE "shop_snapshots" (id TEXT PRIMARY KEY, started_at REAL NOT NULL, '
                     'created_at REAL, manifest TEXT, committed INTEGER NOT NULL DEFAULT 0)')
    store = open_store(f"sqlite:///{path}", prefix="shop", retain=1)
    s1 = publish(store, n=5)
    publish(store, n=5)
    assert store.get(s1, "rec", "c3") == b"rec-c3"
    store.close()


def test_one_writer_per_snapshot_id(backend):
    store = backend.make()
    first = store.begin_snapshot("run-42")
    first.write("rec", ["a"], [b"first"])
    # a second writer under the same id would mix its entries into the first's, or abort them away
    with pytest.raises(StoreError):
        store.begin_snapshot("run-42")
    first.abort()
    again = store.begin_snapshot("run-42")  # an aborted id is free again
    again.write("rec", ["b"], [b"again"])
    again.commit()
    with pytest.raises(StoreError, match="already exists"):
        store.begin_snapshot("run-42")
    assert store.get("run-42", "rec", "b") == b"again" and store.get("run-42", "rec", "a") is None


def test_concurrent_publishes_leave_the_current_snapshot_the_newest(backend):
    store = backend.make(retain=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: publish(store, n=200), range(12)))
    # the last commit is current and the one retained, whatever order the publishers raced in
    assert [m.snapshot_id for m in store.list_snapshots()] == [store.current_snapshot_id()]


def test_a_write_that_fails_keeps_nothing_of_its_batch(backend):
    store = backend.make()
    with store.begin_snapshot() as writer:
        with pytest.raises(UnicodeEncodeError):
            writer.write("rec", ["a", "b\ud800", "c"], [b"1", b"2", b"3"])  # a lone surrogate: not UTF-8
        writer.write("rec", ["z"], [b"26"])
        manifest = writer.commit()
    assert manifest.counts == {"rec": 1}
    assert store.get(manifest.snapshot_id, "rec", "a") is None


def test_a_sqlite_reader_thread_never_waits_for_a_publishers_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_store(url, prefix="shop")
    snapshot = publish(store, n=5)
    writer = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a publisher in the middle of a write transaction
    answers = []
    reading = threading.Thread(target=lambda: answers.append(store.get(snapshot, "rec", "c3")))
    reading.start()  # a new thread opens its own connection
    reading.join(timeout=20)  # the busy timeout is 30 s: a reader stuck behind the lock is still waiting
    finished = not reading.is_alive()
    writer.execute("ROLLBACK")
    reading.join()
    writer.close()
    store.close()
    assert finished and answers == [b"rec-c3"]
