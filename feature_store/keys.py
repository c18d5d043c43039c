"""The Redis key scheme, in one place, and the snapshot ids every backend uses.

Layout under a prefix::

    {prefix}:current                          string: id of the current snapshot
    {prefix}:snapshots                        sorted set: committed snapshot ids, scored by commit time
    {prefix}:snap:{sid}:manifest              string: the manifest as JSON
    {prefix}:snap:{sid}:{namespace}:{bucket}  hash: key -> value, bucket = crc32(key) % n_buckets

Values live in a fixed number of hashes per namespace rather than one Redis key per entity, so that
giving a whole snapshot a TTL, or removing one, costs ``n_buckets`` commands instead of millions.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_N_BUCKETS = 1024

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def validate_name(kind: str, value: str) -> str:
    """Prefixes, snapshot ids and namespaces become parts of keys (and SQLite table names): no separators."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{kind} must be non-empty letters, digits, '_', '.' or '-', got {value!r}")
    return value


def new_snapshot_id(now: datetime | None = None) -> str:
    """A unique id that sorts by creation time, e.g. ``20261125T203015.123456Z-3f9a``."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(2)}"


def bucket_of(key: str, n_buckets: int) -> int:
    return zlib.crc32(key.encode()) % n_buckets


@dataclass(frozen=True)
class KeyScheme:
    prefix: str

    def __post_init__(self) -> None:
        validate_name("prefix", self.prefix)

    @property
    def current(self) -> str:
        return f"{self.prefix}:current"

    @property
    def index(self) -> str:
        return f"{self.prefix}:snapshots"

    def manifest(self, snapshot_id: str) -> str:
        return f"{self.prefix}:snap:{snapshot_id}:manifest"

    def writer(self, snapshot_id: str) -> str:
        """The claim of the one writer of an uncommitted snapshot."""
        return f"{self.prefix}:writing:{snapshot_id}"

    def bucket(self, snapshot_id: str, namespace: str, bucket: int) -> str:
        return f"{self.prefix}:snap:{snapshot_id}:{namespace}:{bucket}"

    def buckets(self, snapshot_id: str, namespace: str, n_buckets: int) -> list[str]:
        return [self.bucket(snapshot_id, namespace, b) for b in range(n_buckets)]

    def snapshot_pattern(self, snapshot_id: str) -> str:
        """A SCAN pattern matching every key of one snapshot (for tests and repair, never the hot path)."""
        return f"{self.prefix}:snap:{snapshot_id}:*"
