"""Embedded backend: one SQLite file in WAL mode, shared by a publishing and a serving process.

Entries of a snapshot are written in one transaction per :meth:`SnapshotWriter.write` call, under a
``snapshots`` row marked uncommitted; commit flips the flag and the one-row pointer in one transaction.
A publisher killed midway therefore leaves an uncommitted row and its entries, which the next
``begin_snapshot`` deletes once they are older than ``pending_ttl_seconds``. Snapshots pushed out of
retention are retired, still readable for ``expire_seconds`` as on Redis, then deleted by a later commit.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

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
from feature_store.keys import new_snapshot_id, validate_name

# Many rows share a page with 16 KiB pages, which keeps the WITHOUT ROWID tree shallow for ~200 B values.
_PAGE_SIZE = 16_384
# SQLite caps the number of bound parameters per statement (32766 since 3.32).
_MAX_PARAMS = 32_000


class _Tables:
    """Table names under a prefix, so that two stores can share one file as two Redis prefixes can."""

    def __init__(self, prefix: str) -> None:
        validate_name("prefix", prefix)
        self.entries = f'"{prefix}_entries"'
        self.snapshots = f'"{prefix}_snapshots"'
        self.pointer = f'"{prefix}_pointer"'

    def schema(self) -> str:
        return f"""
            CREATE TABLE IF NOT EXISTS {self.snapshots} (
                id TEXT PRIMARY KEY,
                started_at REAL NOT NULL,
                created_at REAL,
                manifest TEXT,
                committed INTEGER NOT NULL DEFAULT 0,
                retired_at REAL
            );
            CREATE TABLE IF NOT EXISTS {self.entries} (
                snapshot_id TEXT NOT NULL,
                namespace TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (snapshot_id, namespace, key)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS {self.pointer} (
                id INTEGER PRIMARY KEY CHECK (id = 0),
                snapshot_id TEXT
            );
            INSERT OR IGNORE INTO {self.pointer} (id, snapshot_id) VALUES (0, NULL);
        """

    def add_missing_columns(self, conn: sqlite3.Connection) -> None:
        # a file written before snapshots were retired with a grace period lacks the column
        if "retired_at" not in {row[1] for row in conn.execute(f"PRAGMA table_info({self.snapshots})")}:
            try:
                conn.execute(f"ALTER TABLE {self.snapshots} ADD COLUMN retired_at REAL")
            except sqlite3.OperationalError as exc:  # another connection added it first
                if "duplicate column" not in str(exc):
                    raise


#: ``committed`` of a snapshot past retention: readable until deleted, neither listed nor a rollback target
_RETIRED = 2


def _enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch the file to WAL once; the switch needs the file to itself and ignores the busy timeout."""
    for _ in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    raise StoreError("could not switch the SQLite file to WAL mode: another process keeps it busy")


class _Connections:
    """One connection per thread (sqlite3 connections are not safe to share), all closed together."""

    def __init__(self, path: Path, tables: _Tables) -> None:
        self.path = path
        self._tables = tables
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schema_ready = False

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
            _enable_wal(conn)
            # WAL with synchronous=NORMAL is durable against process crashes; only an OS crash can lose
            # the last commits, and a lost publish can be republished.
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._lock:
                # Creating the schema takes the write lock: only the first connection does, so a worker
                # thread opening its connection never waits behind a publisher's write transaction.
                if not self._schema_ready:
                    conn.executescript(f"BEGIN IMMEDIATE; {self._tables.schema()} COMMIT;")
                    self._tables.add_missing_columns(conn)
                    self._schema_ready = True
                self._all.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _parse_manifest(raw: str | None) -> Manifest | None:
    return None if raw is None else Manifest.from_dict(json.loads(raw))


class _SqliteReads:
    """The read queries, shared by the sync store and the async reader."""

    def __init__(self, connections: _Connections, tables: _Tables) -> None:
        self.connections = connections
        self.t = tables
        self.manifests = ManifestCache()

    def current_snapshot_id(self) -> str | None:
        row = self.connections.get().execute(f"SELECT snapshot_id FROM {self.t.pointer} WHERE id = 0").fetchone()
        return None if row is None else row[0]

    def get_manifest(self, snapshot_id: str) -> Manifest | None:
        manifest = self.manifests.get(snapshot_id)
        if manifest is None:
            row = (
                self.connections.get()
                .execute(f"SELECT manifest FROM {self.t.snapshots} WHERE id = ? AND committed IN (1, {_RETIRED})",
                         (snapshot_id,))
                .fetchone()
            )
            manifest = None if row is None else _parse_manifest(row[0])
            if manifest is not None:
                self.manifests.put(manifest)
        return manifest

    def require(self, snapshot_id: str) -> None:
        if self.get_manifest(snapshot_id) is None:
            raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not committed or was removed")

    def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None:
        self.require(snapshot_id)
        row = (
            self.connections.get()
            .execute(
                f"SELECT value FROM {self.t.entries} WHERE snapshot_id = ? AND namespace = ? AND key = ?",
                (snapshot_id, namespace, key),
            )
            .fetchone()
        )
        return None if row is None else row[0]

    def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        self.require(snapshot_id)
        found: dict[str, bytes] = {}
        conn = self.connections.get()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _MAX_PARAMS - 2):
            chunk = unique[start : start + _MAX_PARAMS - 2]
            marks = ",".join("?" * len(chunk))
            found.update(
                conn.execute(
                    f"SELECT key, value FROM {self.t.entries} "
                    f"WHERE snapshot_id = ? AND namespace = ? AND key IN ({marks})",
                    (snapshot_id, namespace, *chunk),
                )
            )
        return [found.get(key) for key in keys]

    def page(self, snapshot_id: str, namespace: str, after: str | None, size: int) -> list[tuple[str, bytes]]:
        """One page of a namespace in key order, resuming after ``after`` (keyset pagination)."""
        self.require(snapshot_id)
        query = f"SELECT key, value FROM {self.t.entries} WHERE snapshot_id = ? AND namespace = ?"
        params: tuple = (snapshot_id, namespace)
        if after is not None:
            query, params = query + " AND key > ?", (*params, after)
        return self.connections.get().execute(query + " ORDER BY key LIMIT ?", (*params, size)).fetchall()

    def ping(self) -> bool:
        try:
            return self.connections.get().execute("SELECT 1").fetchone() == (1,)
        except sqlite3.Error:
            return False


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class SqliteOnlineStore(OnlineStore):
    def __init__(
        self,
        path: str | Path,
        *,
        prefix: str = "recsys",
        retain: int = 3,
        pending_ttl_seconds: float = 86_400,
        expire_seconds: float = 600,
    ) -> None:
        if retain < 1:
            raise ValueError(f"retain must be >= 1, got {retain}")
        if pending_ttl_seconds < 0 or expire_seconds < 0:
            raise ValueError(f"pending_ttl_seconds and expire_seconds must be >= 0, got {pending_ttl_seconds} "
                             f"and {expire_seconds}")
        self.path = _resolve(path)
        self.retain = retain
        self.pending_ttl_seconds = pending_ttl_seconds
        self.expire_seconds = expire_seconds
        self.tables = _Tables(prefix)
        self.connections = _Connections(self.path, self.tables)
        self._reads = _SqliteReads(self.connections, self.tables)

    def begin_snapshot(self, snapshot_id: str | None = None) -> SnapshotWriter:
        snapshot_id = validate_name("snapshot id", snapshot_id or new_snapshot_id())
        t = self.tables
        conn = self.connections.get()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._delete_snapshots(conn, "committed = 0 AND started_at <= ?", (now - self.pending_ttl_seconds,))
            try:
                conn.execute(f"INSERT INTO {t.snapshots} (id, started_at) VALUES (?, ?)", (snapshot_id, now))
            except sqlite3.IntegrityError:
                raise StoreError(f"snapshot {snapshot_id} already exists") from None
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return SqliteSnapshotWriter(self, snapshot_id)

    def _delete_snapshots(self, conn: sqlite3.Connection, condition: str, params: tuple) -> None:
        """Delete the snapshots matching ``condition``, with their entries, in the caller's transaction."""
        t = self.tables
        ids = conn.execute(f"SELECT id FROM {t.snapshots} WHERE {condition}", params).fetchall()
        conn.executemany(f"DELETE FROM {t.entries} WHERE snapshot_id = ?", ids)
        conn.executemany(f"DELETE FROM {t.snapshots} WHERE id = ?", ids)

    def _apply_retention(self, conn: sqlite3.Connection) -> None:
        """Retire snapshots beyond ``retain`` (never the current one): unlisted and no longer a rollback
        target, but still readable for ``expire_seconds``, as on Redis, so that a worker still serving
        one until its next refresh keeps answering from it. Retired ones past that are deleted."""
        t = self.tables
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = self._reads.current_snapshot_id()
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM {t.snapshots} WHERE committed = 1 ORDER BY created_at DESC, id DESC"
                )
            ]
            for sid in ids[self.retain :]:
                if sid != current:
                    conn.execute(f"UPDATE {t.snapshots} SET committed = {_RETIRED}, retired_at = ? WHERE id = ?",
                                 (now, sid))
            self._delete_snapshots(conn, f"committed = {_RETIRED} AND retired_at <= ?", (now - self.expire_seconds,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def current_snapshot_id(self) -> str | None:
        return self._reads.current_snapshot_id()

    def get_manifest(self, snapshot_id: str) -> Manifest | None:
        return self._reads.get_manifest(snapshot_id)

    def list_snapshots(self) -> list[Manifest]:
        rows = self.connections.get().execute(
            f"SELECT manifest FROM {self.tables.snapshots} WHERE committed = 1 ORDER BY created_at DESC, id DESC"
        )
        return [_parse_manifest(raw) for (raw,) in rows]

    def set_current(self, snapshot_id: str) -> Manifest:
        t = self.tables
        conn = self.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT manifest FROM {t.snapshots} WHERE id = ? AND committed = 1", (snapshot_id,)
            ).fetchone()
            if row is None:
                raise SnapshotNotFoundError(f"snapshot {snapshot_id} is not a retained committed snapshot")
            conn.execute(f"UPDATE {t.pointer} SET snapshot_id = ? WHERE id = 0", (snapshot_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return _parse_manifest(row[0])

    def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None:
        return self._reads.get(snapshot_id, namespace, key)

    def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        return self._reads.get_many(snapshot_id, namespace, keys)

    def iter_namespace(
        self, snapshot_id: str, namespace: str, batch_size: int = 10_000
    ) -> Iterator[list[tuple[str, bytes]]]:
        after = None
        while True:
            page = self._reads.page(snapshot_id, namespace, after, batch_size)
            if not page:
                return
            yield page
            after = page[-1][0]

    def ping(self) -> bool:
        return self._reads.ping()

    def close(self) -> None:
        self.connections.close()


class SqliteSnapshotWriter(SnapshotWriter):
    def __init__(self, store: SqliteOnlineStore, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        self._store = store
        self._state = "open"
        self._namespaces: set[str] = set()

    def _check_open(self) -> None:
        if self._state != "open":
            raise SnapshotStateError(f"snapshot {self.snapshot_id} was already {self._state}")

    def write(self, namespace: str, keys: Sequence[str], values: Sequence[bytes]) -> None:
        self._check_open()
        check_batch(namespace, keys, values)
        self._namespaces.add(namespace)
        conn = self._store.connections.get()
        sid = self.snapshot_id
        # Rows in key order go to the B-tree's right edge instead of splitting pages all over it.
        order = sorted(range(len(keys)), key=keys.__getitem__)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT OR REPLACE INTO {self._store.tables.entries} (snapshot_id, namespace, key, value) "
                "VALUES (?, ?, ?, ?)",
                zip(repeat(sid), repeat(namespace), map(keys.__getitem__, order), map(values.__getitem__, order)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def commit(self, metadata: Mapping[str, Any] | None = None) -> Manifest:
        self._check_open()
        store = self._store
        t = store.tables
        conn = store.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(f"SELECT 1 FROM {t.snapshots} WHERE id = ?", (self.snapshot_id,)).fetchone() is None:
                raise StoreError(f"snapshot {self.snapshot_id} was removed as stale before it was committed")
            counts = dict.fromkeys(sorted(self._namespaces), 0)
            counts.update(
                conn.execute(
                    f"SELECT namespace, count(*) FROM {t.entries} WHERE snapshot_id = ? GROUP BY namespace",
                    (self.snapshot_id,),
                )
            )
            manifest, stamp = Manifest.made_now(self.snapshot_id, counts, metadata, {"backend": "sqlite"})
            conn.execute(
                f"UPDATE {t.snapshots} SET committed = 1, created_at = ?, manifest = ? WHERE id = ?",
                (stamp, json.dumps(manifest.to_dict(), sort_keys=True), self.snapshot_id),
            )
            conn.execute(f"UPDATE {t.pointer} SET snapshot_id = ? WHERE id = 0", (self.snapshot_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._state = "committed"
        store._apply_retention(conn)
        return manifest

    def abort(self) -> None:
        if self._state == "aborted":
            return
        self._check_open()
        self._state = "aborted"
        t = self._store.tables
        conn = self._store.connections.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM {t.entries} WHERE snapshot_id = ?", (self.snapshot_id,))
            conn.execute(f"DELETE FROM {t.snapshots} WHERE id = ? AND committed = 0", (self.snapshot_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._state == "open":
            self.abort()


class AsyncSqliteReader(AsyncOnlineStoreReader):
    """Reads in worker threads (each with its own connection) so the event loop never waits on disk."""

    def __init__(self, path: str | Path, *, prefix: str = "recsys") -> None:
        self.path = _resolve(path)
        tables = _Tables(prefix)
        self._connections = _Connections(self.path, tables)
        self._reads = _SqliteReads(self._connections, tables)

    async def current_snapshot_id(self) -> str | None:
        return await asyncio.to_thread(self._reads.current_snapshot_id)

    async def get_manifest(self, snapshot_id: str) -> Manifest | None:
        cached = self._reads.manifests.get(snapshot_id)
        return cached if cached is not None else await asyncio.to_thread(self._reads.get_manifest, snapshot_id)

    async def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None:
        return await asyncio.to_thread(self._reads.get, snapshot_id, namespace, key)

    async def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]:
        return await asyncio.to_thread(self._reads.get_many, snapshot_id, namespace, list(keys))

    async def iter_namespace(self, snapshot_id: str, namespace: str, batch_size: int = 10_000):
        after = None
        while True:
            page = await asyncio.to_thread(self._reads.page, snapshot_id, namespace, after, batch_size)
            if not page:
                return
            yield page
            after = page[-1][0]

    async def ping(self) -> bool:
        return await asyncio.to_thread(self._reads.ping)

    async def close(self) -> None:
        self._connections.close()
