"""Segment export benchmark: publish 1,000,000 synthetic customer profiles to Redis, start the API as
production runs it, stream the CSV export of every customer (the ``all`` pseudo-segment) in chunks, and
sample the server's resident memory (the uvicorn process and its children) while it streams.

    .venv/bin/python benchmarks/segment_export.py [--customers 1000000] [--workers 1]

Ends with:
    RESULT customers=... export_s=... rows_per_s=... rss_growth_mb=... publish_s=...
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import server  # noqa: E402
from feature_store import open_store  # noqa: E402
from recsys.records import CATALOG_KEY, META, Catalog, CustomerProfile  # noqa: E402
from training.publish_customers import customer_snapshot_part  # noqa: E402

SEGMENTS = ["Champions", "Loyal", "Potential Loyalists", "Can't Lose Them", "At Risk", "Hibernating"]
REASON_FEATURES = ["recency_days", "frequency", "monetary", "tenure_days", "returns_share"]


def synthetic_profiles(n: int, seed: int = 11) -> list[CustomerProfile]:
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, len(SEGMENTS), n).tolist()
    r, f, m = (rng.integers(1, 6, n).tolist() for _ in range(3))
    cluster = rng.integers(0, 6, n).tolist()
    churn = rng.random(n).round(4).tolist()
    p_alive = rng.random(n).round(4).tolist()
    expected = rng.gamma(2.0, 0.8, n).round(3).tolist()
    clv = rng.lognormal(4.0, 1.2, n).round(2).tolist()
    recency = rng.integers(0, 365, n).astype(float).tolist()
    frequency = rng.integers(1, 40, n).tolist()
    monetary = rng.lognormal(5.0, 1.0, n).round(2).tolist()
    reason_values = rng.random((n, 3)).round(3).tolist()
    feature = rng.integers(0, len(REASON_FEATURES), (n, 3)).tolist()
    return [
        CustomerProfile(
            f"C{i:07d}", SEGMENTS[segment[i]], r[i], f[i], m[i], cluster[i], f"cluster {cluster[i]}", churn[i],
            [{"feature": REASON_FEATURES[feature[i][j]], "value": reason_values[i][j],
              "contribution": round(0.3 - 0.1 * j, 2)} for j in range(3)],
            p_alive[i], expected[i], clv[i], recency[i], frequency[i], monetary[i], "United Kingdom")
        for i in range(n)
    ]


def publish(profiles: list[CustomerProfile], redis_url: str, prefix: str) -> tuple[str, float]:
    segments = [{"name": name, "definition": f"synthetic {name}", "revenue_share": 1 / len(SEGMENTS)}
                for name in SEGMENTS]
    store = open_store(redis_url, prefix=prefix, retain=1)
    started = time.perf_counter()
    part = customer_snapshot_part(profiles, segments, [{"id": i, "name": f"cluster {i}"} for i in range(6)])
    with store.begin_snapshot() as writer:
        # The API serves a snapshot only with a catalogue; the export never reads it.
        writer.write(META, [CATALOG_KEY], [Catalog([], [], [], []).to_bytes()])
        metadata = part(writer)
        manifest = writer.commit({"model": {"name": "benchmark", "version": "0"}, **metadata})
    publish_s = time.perf_counter() - started
    store.close()
    return manifest.snapshot_id, publish_s


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    total_kb, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        stack.extend(int(c) for c in children)
    return total_kb / 1024


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak = pid, every_s, 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(self.every_s)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak


def export(url: str, chunk_size: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    lines = size = 0
    with urllib.request.urlopen(f"{url}/v1/segments/all/export.csv", timeout=600) as response:
        while chunk := response.read(chunk_size):
            lines += chunk.count(b"\n")
            size += len(chunk)
    return lines - 1, size, time.perf_counter() - started


def clean(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for keys in _batched(client.scan_iter(match=f"{prefix}:*", count=10_000), 1000):
        client.delete(*keys)
    client.close()


def _batched(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-kb", type=int, default=64, help="how much the client reads at a time")
    parser.add_argument("--redis-url", default=os.environ.get("RECSYS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--prefix", default="recsys-bench-export")
    parser.add_argument("--port", type=int, default=8921)
    args = parser.parse_args()

    started = time.perf_counter()
    profiles = synthetic_profiles(args.customers)
    print(f"generated {len(profiles):,} profiles in {time.perf_counter() - started:.1f}s", flush=True)
    clean(args.redis_url, args.prefix)
    try:
        snapshot_id, publish_s = publish(profiles, args.redis_url, args.prefix)
        del profiles
        print(f"published snapshot {snapshot_id} in {publish_s:.1f}s", flush=True)
        env = {"RECSYS_SERVING_STORE_URL": args.redis_url, "RECSYS_SERVING_STORE_PREFIX": args.prefix}
        with server("serving.app:create_app", args.port, args.workers, env, ready_path="/health/ready") as running:
            url, pid = running.url, running.pid
            urllib.request.urlopen(f"{url}/v1/segments", timeout=30).read()  # warm: index read, imports done
            baseline = rss_mb(pid)
            sampler = RssSampler(pid)
            sampler.start()
            rows, size, export_s = export(url, args.chunk_kb * 1024)
            peak = sampler.stop()
        print(f"exported {rows:,} rows, {size / 1e6:.0f} MB of CSV in {export_s:.1f}s; server RSS "
              f"{baseline:.0f} MB before, {peak:.0f} MB at peak", flush=True)
        if rows != args.customers:
            print(f"WARNING: {rows:,} rows exported for {args.customers:,} customers")
    finally:
        clean(args.redis_url, args.prefix)
    print(f"RESULT customers={rows} export_s={export_s:.2f} rows_per_s={rows / export_s:.0f} "
          f"rss_growth_mb={peak - baseline:.1f} publish_s={publish_s:.2f}")


if __name__ == "__main__":
    main()
