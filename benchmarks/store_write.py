"""How fast a store takes a snapshot: ``.venv/bin/python benchmarks/store_write.py --url redis://...``.

Publishes one snapshot of synthetic values under a throwaway prefix, reports values per second
(writes and commit together), then removes what it wrote. Ends with
``RESULT values_per_s=... value_size=... values=...`` (the best of the repeats).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.factory import open_store  # noqa: E402
from feature_store.keys import KeyScheme  # noqa: E402


def measure_write_throughput(
    url: str, n_values: int = 1_000_000, value_size: int = 200, batch: int = 50_000, namespace: str = "rec"
) -> float:
    """Values per second for one snapshot of ``n_values`` values of ``value_size`` bytes, commit included."""
    prefix = f"benchmark-{secrets.token_hex(4)}"
    store = open_store(url, prefix=prefix, retain=1)
    keys = [f"customer-{i}" for i in range(n_values)]
    value = os.urandom(value_size)
    try:
        started = time.perf_counter()
        with store.begin_snapshot() as writer:
            for start in range(0, n_values, batch):
                chunk = keys[start : start + batch]
                writer.write(namespace, chunk, [value] * len(chunk))
            manifest = writer.commit()
        elapsed = time.perf_counter() - started
    finally:
        _remove(store, prefix)
        store.close()
    assert manifest.counts[namespace] == n_values
    return n_values / elapsed


def _remove(store, prefix: str) -> None:
    from feature_store.redis_store import RedisOnlineStore

    if not isinstance(store, RedisOnlineStore):
        return
    keys = KeyScheme(prefix)
    doomed = [keys.current, keys.index]
    for manifest in store.list_snapshots():
        doomed.append(keys.manifest(manifest.snapshot_id))
        for namespace in manifest.counts:
            doomed += keys.buckets(manifest.snapshot_id, namespace, int(manifest.layout["n_buckets"]))
    for start in range(0, len(doomed), 1_000):
        store.client.unlink(*doomed[start : start + 1_000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL; default: a temporary SQLite file")
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50_000, help="values per write() call")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'benchmark.sqlite'}"
        rates = []
        for _ in range(args.repeat):
            rates.append(measure_write_throughput(url, args.values, args.value_size, args.batch))
            print(f"{url}: {rates[-1]:,.0f} values/s ({args.values:,} values of {args.value_size} bytes)")
    print(f"RESULT values_per_s={max(rates):.0f} value_size={args.value_size} values={args.values}")


if __name__ == "__main__":
    main()
