"""The Redis key scheme and snapshot ids."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from feature_store.keys import KeyScheme, bucket_of, new_snapshot_id


def test_key_layout():
    keys = KeyScheme("recsys")
    assert keys.current == "recsys:current"
    assert keys.index == "recsys:snapshots"
    assert keys.manifest("S1") == "recsys:snap:S1:manifest"
    assert keys.bucket("S1", "rec", 17) == "recsys:snap:S1:rec:17"
    assert keys.buckets("S1", "rec", 3) == ["recsys:snap:S1:rec:0", "recsys:snap:S1:rec:1", "recsys:snap:S1:rec:2"]


def test_bucket_is_crc32_modulo_bucket_count():
    assert bucket_of("customer-42", 1024) == zlib.crc32(b"customer-42") % 1024
    assert {bucket_of(f"c{i}", 8) for i in range(1_000)} == set(range(8))


def test_snapshot_ids_sort_by_time_and_are_unique():
    early = new_snapshot_id(datetime(2026, 11, 25, 20, 30, 15, 123456, tzinfo=UTC))
    assert early.startswith("20261125T203015.123456Z-")
    later = new_snapshot_id(datetime(2026, 11, 25, 20, 30, 16, tzinfo=UTC))
    assert early < later
    assert len({new_snapshot_id() for _ in range(200)}) == 200
