"""Embedded backend of the limits store: one SQLite file, for running without a Redis server.

Every check-and-use runs in a ``BEGIN IMMEDIATE`` transaction, which takes the file's write lock
before reading, so two threads or processes can never both see a key below its limit and both use
it. Expired counters and markers count as absent and are overwritten on their next use.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from feature_store.keys import validate_name
from feature_store.limits import (
    DEFAULT_MARKER_TTL_SECONDS,
    Acquired,
    Claim,
    Event,
    Increment,
    LimitsStore,
    Recording,
    check_groups,
)


class _SyncLimits:
    def __init__(self, path: Path, prefix: str) -> None:
        validate_name("prefix", prefix)
        self.path = path
        self.limits, self.once = f'"{prefix}_limits"', f'"{prefix}_once"'
        self.counts, self.events = f'"{prefix}_counts"', f'"{prefix}_events"'
        self.lengths = f'"{prefix}_event_lengths"'
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(f"""
                CREATE TABLE IF NOT EXISTS {self.limits} (key TEXT PRIMARY KEY, used INTEGER NOT NULL,
                                                          expires_at REAL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS {self.once} (key TEXT PRIMARY KEY, expires_at REAL NOT NULL)
                    WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS {self.counts} (key TEXT NOT NULL, field TEXT NOT NULL,
                                                          value INTEGER NOT NULL, PRIMARY KEY (key, field))
                    WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS {self.events} (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                                                          stream TEXT NOT NULL, body TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS "{prefix}_events_stream" ON {self.events} (stream, seq);
                CREATE TABLE IF NOT EXISTS {self.lengths} (stream TEXT PRIMARY KEY, length INTEGER NOT NULL)
                    WITHOUT ROWID;
            """)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # Another connection may be switching it right now; either way the file ends up in WAL.
                with suppress(sqlite3.OperationalError):
                    conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _used(self, conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute(f"SELECT used, expires_at FROM {self.limits} WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            return 0
        return int(row[0])

    def acquire_first(self, groups: Sequence[Sequence[Claim]], max_groups: int, shared: Sequence[Claim],
                      recording: Recording | None, once: str | None,
                      once_ttl_seconds: float) -> Acquired | list[int]:
        now = time.time()
        with self._transaction() as conn:
            if once is not None:
                row = conn.execute(f"SELECT expires_at FROM {self.once} WHERE key = ?", (once,)).fetchone()
                if row is not None and row[0] > now:
                    return Acquired.DUPLICATE
            acquired: list[int] = []
            for index, group in enumerate(groups):
                if len(acquired) == max_groups or not self._fits(conn, shared, now):
                    break
                if not self._fits(conn, group, now):
                    continue
                for claim in (*shared, *group):
                    if claim.amount > 0:
                        self._use(conn, claim, now)
                acquired.append(index)
            if recording is not None:
                increments = [inc for i in acquired for inc in recording.increments[i]] if recording.increments else []
                event = recording.event
                events = [] if event is None else [
                    Event(event.stream, {**event.fields, "acquired": ",".join(map(str, acquired))}, event.maxlen)]
                self._record(conn, increments, events)
            if once is not None and (acquired or not groups):
                conn.execute(f"INSERT OR REPLACE INTO {self.once} (key, expires_at) VALUES (?, ?)",
                             (once, now + once_ttl_seconds))
            return acquired

    def _fits(self, conn: sqlite3.Connection, claims: Sequence[Claim], now: float) -> bool:
        return all(self._used(conn, c.key, now) + max(c.amount, 1) <= c.limit for c in claims)

    def _use(self, conn: sqlite3.Connection, claim: Claim, now: float) -> None:
        expires = now + claim.ttl_seconds if claim.ttl_seconds else None
        row = conn.execute(f"SELECT expires_at FROM {self.limits} WHERE key = ?", (claim.key,)).fetchone()
        if row is None or (row[0] is not None and row[0] <= now):
            conn.execute(f"INSERT OR REPLACE INTO {self.limits} (key, used, expires_at) VALUES (?, ?, ?)",
                         (claim.key, claim.amount, expires))
        else:
            # As on Redis, the window is fixed by the first use; a TTL is only added to a key without one.
            conn.execute(f"UPDATE {self.limits} SET used = used + ?, expires_at = COALESCE(expires_at, ?) "
                         f"WHERE key = ?", (claim.amount, expires, claim.key))

    def used(self, keys: Sequence[str]) -> list[int]:
        conn, now = self._conn(), time.time()
        return [self._used(conn, key, now) for key in keys]

    def _record(self, conn: sqlite3.Connection, increments: Sequence[Increment], events: Sequence[Event]) -> None:
        conn.executemany(f"INSERT INTO {self.counts} (key, field, value) VALUES (?, ?, ?) "
                         f"ON CONFLICT (key, field) DO UPDATE SET value = value + excluded.value",
                         [(i.key, i.field, i.amount) for i in increments])
        for event in events:
            conn.execute(f"INSERT INTO {self.events} (stream, body) VALUES (?, ?)",
                         (event.stream, json.dumps(dict(event.fields))))
            self._trim(conn, event.stream, event.maxlen)

    def _trim(self, conn: sqlite3.Connection, stream: str, maxlen: int) -> None:
        """Keep about the last ``maxlen`` events of ``stream``, as Redis's MAXLEN ~ does: the oldest go in
        batches once the stream is a hundredth (at least 100 events) over. Sequence numbers are shared by
        every stream, so each stream's length is counted apart; the count only says when to trim, and each
        trim cuts by position and resets the count to what is left, so a count that drifted (a writer of
        an older version on the same file) heals at the next trim."""
        conn.execute(f"UPDATE {self.lengths} SET length = length + 1 WHERE stream = ?", (stream,))
        row = conn.execute(f"SELECT length FROM {self.lengths} WHERE stream = ?", (stream,)).fetchone()
        if row is None:  # first event of the stream, or a file written before lengths were kept
            length = conn.execute(f"SELECT COUNT(*) FROM {self.events} WHERE stream = ?", (stream,)).fetchone()[0]
            conn.execute(f"INSERT INTO {self.lengths} (stream, length) VALUES (?, ?)", (stream, length))
        else:
            length = row[0]
        if length <= maxlen + max(100, maxlen // 100):
            return
        cut = conn.execute(f"SELECT seq FROM {self.events} WHERE stream = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                           (stream, maxlen)).fetchone()
        if cut is None:
            left = conn.execute(f"SELECT COUNT(*) FROM {self.events} WHERE stream = ?", (stream,)).fetchone()[0]
        else:
            conn.execute(f"DELETE FROM {self.events} WHERE stream = ? AND seq <= ?", (stream, cut[0]))
            left = maxlen
        conn.execute(f"UPDATE {self.lengths} SET length = ? WHERE stream = ?", (left, stream))

    def counters(self, keys: Sequence[str]) -> list[dict[str, int]]:
        conn = self._conn()
        return [dict(conn.execute(f"SELECT field, value FROM {self.counts} WHERE key = ?", (key,)).fetchall())
                for key in keys]

    def read_events(self, stream: str, count: int, after: str | None = None) -> list[tuple[str, dict[str, str]]]:
        rows = self._conn().execute(
            f"SELECT seq, body FROM {self.events} WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
            (stream, _event_seq(after), count)).fetchall()
        return [(str(seq), json.loads(body)) for seq, body in rows]

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        # Connections of other threads are closed above; forget this thread's so it reconnects if reused.
        self._local = threading.local()


class SqliteLimitsStore(LimitsStore):
    """Runs each call in a worker thread so the event loop never waits on the file lock."""

    def __init__(self, path: str | Path, *, prefix: str = "recsys") -> None:
        self._sync = _SyncLimits(Path(path), prefix)

    async def acquire_first(self, groups: Sequence[Sequence[Claim]], max_groups: int = 1, *,
                            shared: Sequence[Claim] = (), recording: Recording | None = None,
                            once: str | None = None,
                            once_ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> Acquired | list[int]:
        check_groups(groups, max_groups, shared, recording)
        return await asyncio.to_thread(self._sync.acquire_first, [list(g) for g in groups], max_groups,
                                       list(shared), recording, once, once_ttl_seconds)

    async def used(self, keys: Sequence[str]) -> list[int]:
        return await asyncio.to_thread(self._sync.used, list(keys))

    async def counters(self, keys: Sequence[str]) -> list[dict[str, int]]:
        return await asyncio.to_thread(self._sync.counters, list(keys))

    async def read_events(self, stream: str, count: int = 100, after: str | None = None
                          ) -> list[tuple[str, dict[str, str]]]:
        return await asyncio.to_thread(self._sync.read_events, stream, count, after)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._sync.close()


def _event_seq(after: str | None) -> int:
    if after is None:
        return 0
    try:
        return int(after)
    except ValueError:
        raise ValueError(f"after must be an event id read from this store (a sequence number), got {after!r}") from None
