"""Serving benchmark: publish a snapshot of 1,000,000 synthetic customers to Redis, then drive
GET recommendations for random customers with wrk and compare with a bare FastAPI endpoint on the
same server settings, measured in the same run.

    .venv/bin/python benchmarks/serving.py [--customers 1000000] [--duration 20] [--workers 2]

Ends with four lines:
    RESULT publish_customers_per_s=... publish_s=... score_s=... customers=...
    RESULT rps=... p50_ms=... p99_ms=... bare_rps=... bare_p99_ms=... ratio=...
    RESULT offers_p99_ms=... recs_p99_ms=... offers_ratio=... offers_cpu_ratio=...
    RESULT basket_rps=... basket_p50_ms=... basket_p99_ms=... basket_ratio=...

The snapshot also holds synthetic customer profiles (with the offer profiles each worker holds in
memory) and the example offer catalogue, and the same server is driven with GET offers at the endpoint's
default k=1 (a page's offer slot) for random customers, drawn from 300,000 distinct ones so that caps
seldom bite (a capped answer is a 200 with fewer offers). The
offer caps and counters live under a throw-away limits prefix, emptied before each round and removed
after. For both endpoints it also prints the CPU time the server's processes and Redis spent per request
(on one machine, what the two compete for).

GET basket complements (three random catalogue items, k=10) is driven once after the rounds, and its
p99 compared with that of recommendations (``basket_ratio``).

The two endpoints are driven in alternating rounds (``--rounds``, default 3) and each figure is the
median over rounds: on a small shared machine one run's p99 moves by half its value from one run to the
next, and alternating keeps a slow spell of the machine from landing on one endpoint only.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from statistics import median
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import LoadResult, redis_cpu_seconds, run_wrk, server  # noqa: E402
from feature_store import open_store  # noqa: E402
from recsys.data import clean_transactions, generate_transactions  # noqa: E402
from recsys.data.interactions import build_interactions  # noqa: E402
from recsys.models.registry import create_model  # noqa: E402
from training.bundle import ModelBundle, build_catalog, history_of  # noqa: E402
from training.publish import PublishOptions, score_bundle, write_snapshot  # noqa: E402
from training.publish_customers import write_offer_profiles  # noqa: E402
from training.publish_offers import offer_catalogue_part_from_file  # noqa: E402

EXAMPLE_CATALOGUE = Path(__file__).resolve().parents[1] / "recsys" / "offers" / "example_catalogue.yaml"


def synthetic_profiles_part(customer_ids, seed: int = 11, batch: int = 100_000):
    """Profiles good enough for offer eligibility: a segment from a few, random churn, CLV and recency."""
    import numpy as np

    from recsys.records import PROFILES, CustomerProfile

    def write(writer) -> dict:
        rng = np.random.default_rng(seed)
        segments = np.array(["Champions", "Loyal Customers", "Potential Loyalists", "At Risk", "Hibernating"])
        profiles = []
        for start in range(0, len(customer_ids), batch):
            ids = customer_ids[start:start + batch]
            n = len(ids)
            seg, churn = rng.choice(segments, n).tolist(), rng.random(n).round(3).tolist()
            clv, recency = rng.gamma(2.0, 150.0, n).round(2).tolist(), rng.integers(0, 365, n).tolist()
            orders, uk = rng.integers(1, 20, n).tolist(), (rng.random(n) < 0.8).tolist()
            batch_profiles = [CustomerProfile(
                str(c), seg[i], 3, 3, 3, churn_probability=churn[i], clv=clv[i], recency_days=float(recency[i]),
                frequency=orders[i], country="United Kingdom" if uk[i] else "France") for i, c in enumerate(ids)]
            writer.write(PROFILES, ids, [p.to_bytes() for p in batch_profiles])
            profiles.extend(batch_profiles)
        return write_offer_profiles(writer, profiles)

    return write


def build_snapshot(args) -> tuple[list[str], list[str], float, float]:
    started = time.perf_counter()
    raw = generate_transactions(n_customers=args.customers, n_items=args.items, seed=7)
    cleaned = clean_transactions(raw).transactions
    data = build_interactions(cleaned)
    print(f"generated and cleaned {len(cleaned):,} lines for {data.n_customers:,} customers, "
          f"{data.n_items:,} items in {time.perf_counter() - started:.1f}s", flush=True)
    started = time.perf_counter()
    models = {
        "personal": create_model("als", factors=32, iterations=8, random_state=0).fit(data),
        "similar": create_model("item_knn", similarity="cosine").fit(data),
        "popular": create_model("popularity").fit(data),
        "trending": create_model("popularity", window_days=30).fit(data),
    }
    print(f"fitted models in {time.perf_counter() - started:.1f}s", flush=True)
    bundle = ModelBundle(data.customers, data.items, build_catalog(cleaned, data.items), history_of(data), models,
                         {"reference_time": str(data.reference_time)})
    started = time.perf_counter()
    lists = score_bundle(bundle, PublishOptions(top_n=args.top_n))
    score_s = time.perf_counter() - started
    print(f"scored {data.n_customers:,} customers in {score_s:.1f}s", flush=True)

    store = open_store(args.redis_url, prefix=args.prefix, retain=2)
    started = time.perf_counter()
    manifest = write_snapshot(lists, store, {"model": {"name": "benchmark", "version": "0"}})
    publish_s = time.perf_counter() - started
    print(f"published recommendations snapshot {manifest.snapshot_id} ({manifest.counts}) in {publish_s:.1f}s",
          flush=True)
    # The served snapshot also carries profiles and the offer catalogue, for the offers endpoint.
    started = time.perf_counter()
    manifest = write_snapshot(lists, store, {"model": {"name": "benchmark", "version": "0"}},
                              parts=[synthetic_profiles_part(list(data.customers.ids)),
                                     offer_catalogue_part_from_file(EXAMPLE_CATALOGUE)])
    store.close()
    print(f"published the full snapshot {manifest.snapshot_id} ({manifest.counts}) with customer profiles in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    return list(data.customers.ids), list(data.items.ids), score_s, publish_s


def existing_customers(args) -> list[str]:
    store = open_store(args.redis_url, prefix=args.prefix)
    snapshot_id = store.current_snapshot_id()
    if snapshot_id is None:
        sys.exit(f"--reuse: no snapshot under prefix {args.prefix!r} at {args.redis_url}")
    customers = [key for batch in store.iter_namespace(snapshot_id, "rec", 100_000) for key, _ in batch]
    store.close()
    print(f"reusing snapshot {snapshot_id} of {len(customers):,} customers", flush=True)
    return customers


def catalogue_items(args) -> list[str]:
    from recsys.records import CATALOG_KEY, META, Catalog

    store = open_store(args.redis_url, prefix=args.prefix)
    try:
        return Catalog.from_bytes(store.get(store.current_snapshot_id(), META, CATALOG_KEY)).item_ids
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--top-n", type=int, default=50)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two endpoints")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--redis-url", default=os.environ.get("RECSYS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--prefix", default="recsys-bench")
    parser.add_argument("--port", type=int, default=8911)
    parser.add_argument("--reuse", action="store_true",
                        help="serve the snapshot a previous run left under --prefix instead of building one")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    if args.reuse:
        customers, score_s, publish_s = existing_customers(args), None, None
    else:
        # Start from the same empty state every run: snapshots of earlier runs would otherwise still
        # be expiring inside Redis while this one is written.
        _drop_prefix(args.redis_url, args.prefix)
        customers, _, score_s, publish_s = build_snapshot(args)
    rng = random.Random(3)
    paths = [f"/v1/customers/{rng.choice(customers)}/recommendations?k=10" for _ in range(100_000)]
    offer_customers = rng.sample(customers, min(300_000, len(customers)))
    offer_paths = [f"/v1/customers/{customer}/offers" for customer in offer_customers]
    items = catalogue_items(args)
    basket_paths = ["/v1/baskets/complements?k=10&" + "&".join(f"items={quote(i)}" for i in rng.sample(items, 3))
                    for _ in range(20_000)]
    limits_prefix = f"{args.prefix}-offers-{os.getpid()}"
    env = {"RECSYS_SERVING_STORE_URL": args.redis_url, "RECSYS_SERVING_STORE_PREFIX": args.prefix,
           "RECSYS_SERVING_LIMITS_PREFIX": limits_prefix}
    with server("serving.app:create_app", args.port, args.workers, env, ready_path="/health/ready") as running:
        run_wrk(running.url, paths[:2000], args.connections, 3)  # warm-up
        run_wrk(running.url, offer_paths[-2000:], args.connections, 3)
        recs_rounds, offers_rounds = [], []
        for round_ in range(1, args.rounds + 1):
            recs_rounds.append(measured_load(running, args.redis_url, paths, args))
            _drop_prefix(args.redis_url, limits_prefix)
            offers_rounds.append(measured_load(running, args.redis_url, offer_paths, args))
            print(f"round {round_}: recommendations p99 {recs_rounds[-1][0].p99_ms:.2f} ms, "
                  f"offers p99 {offers_rounds[-1][0].p99_ms:.2f} ms", flush=True)
        run_wrk(running.url, basket_paths[:2000], args.connections, 3)
        basket = run_wrk(running.url, basket_paths, args.connections, args.duration)
    _drop_prefix(args.redis_url, limits_prefix)
    (recs, recs_cpu), (offers, offers_cpu) = median_load(recs_rounds), median_load(offers_rounds)
    with server("serving.app:create_bare_app", args.port + 1, args.workers, ready_path="/bare") as running:
        run_wrk(running.url, ["/bare"], args.connections, 3)
        bare = run_wrk(running.url, ["/bare"], args.connections, args.duration)

    print(recs.line("GET recommendations"))
    print(bare.line("GET bare constant body"))
    if recs.errors or recs.non2xx:
        print(f"WARNING: {recs.errors} socket errors and {recs.non2xx} non-2xx answers under load")
    ratio = recs.rps / bare.rps
    if publish_s is not None:
        rate = len(customers) / publish_s
        print(f"RESULT publish_customers_per_s={rate:.0f} publish_s={publish_s:.2f} score_s={score_s:.2f} "
              f"customers={len(customers)}")
    print(f"RESULT rps={recs.rps:.0f} p50_ms={recs.p50_ms:.2f} p99_ms={recs.p99_ms:.2f} bare_rps={bare.rps:.0f} "
          f"bare_p99_ms={bare.p99_ms:.2f} ratio={ratio:.2f}")
    print(offers.line("GET offers"))
    for label, (server_us, redis_us) in (("GET recommendations", recs_cpu), ("GET offers", offers_cpu)):
        print(f"{label:<28} CPU per request: server {server_us:.0f} us, Redis {redis_us:.0f} us")
    if offers.errors or offers.non2xx:
        print(f"WARNING: {offers.errors} socket errors and {offers.non2xx} non-2xx offer answers under load")
    # At saturation a closed loop's p99 follows the CPU a request costs: this ratio says how much of
    # offers_ratio is work rather than the machine's noise.
    cpu_ratio = sum(offers_cpu) / sum(recs_cpu)
    print(f"RESULT offers_p99_ms={offers.p99_ms:.2f} recs_p99_ms={recs.p99_ms:.2f} "
          f"offers_ratio={offers.p99_ms / recs.p99_ms:.2f} offers_cpu_ratio={cpu_ratio:.2f}")
    print(basket.line("GET basket complements"))
    if basket.errors or basket.non2xx:
        print(f"WARNING: {basket.errors} socket errors and {basket.non2xx} non-2xx basket answers under load")
    print(f"RESULT basket_rps={basket.rps:.0f} basket_p50_ms={basket.p50_ms:.2f} basket_p99_ms={basket.p99_ms:.2f} "
          f"basket_ratio={basket.p99_ms / recs.p99_ms:.2f}")


def median_load(rounds: list[tuple[LoadResult, tuple[float, float]]]) -> tuple[LoadResult, tuple[float, float]]:
    """Each figure's median over the rounds (errors are summed)."""
    results = [result for result, _ in rounds]
    return (LoadResult(median(r.rps for r in results), median(r.p50_ms for r in results),
                       median(r.p99_ms for r in results), sum(r.errors for r in results),
                       sum(r.non2xx for r in results)),
            (median(cpu[0] for _, cpu in rounds), median(cpu[1] for _, cpu in rounds)))


def measured_load(running, redis_url: str, paths: list[str], args) -> tuple[LoadResult, tuple[float, float]]:
    """A wrk run, with the CPU time the server's processes and Redis spent per request during it."""
    server_before, redis_before = running.cpu_seconds(), redis_cpu_seconds(redis_url)
    result = run_wrk(running.url, paths, args.connections, args.duration)
    requests = max(result.rps * args.duration, 1.0)
    return result, ((running.cpu_seconds() - server_before) / requests * 1e6,
                    (redis_cpu_seconds(redis_url) - redis_before) / requests * 1e6)


def _drop_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for keys in _chunks(list(client.scan_iter(match=f"{prefix}:*", count=10_000)), 5_000):
        client.delete(*keys)
    client.close()


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


if __name__ == "__main__":
    main()
