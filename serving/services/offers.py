"""Next best offers from the current snapshot, within contact caps and budgets. No web framework here.

Showing an offer is an impression: it uses the customer's contact cap (catalogue ``contact``), the
per-customer repeat cap of that offer (``repeat_after_days``) and needs budget left, all checked and used
in one atomic step of the limits store. An offer whose caps are exhausted is skipped and the next best
one is tried, so a capped request answers quickly with fewer (or no) offers and names what was capped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import orjson

from feature_store import Acquired, Claim, Event, Increment, LimitsStore, Recording, StoreError
from feature_store.base import AsyncOnlineStoreReader
from recsys.offer_profiles import OFFER_PROFILES_KEY, TOP_ITEMS_KEY, OfferProfiles, chunk_key, holdable
from recsys.offers import (
    CATALOGUE_KEY,
    OFFERS_NAMESPACE,
    UNKNOWN_SEGMENT,
    Catalogue,
    Offer,
    OfferDecision,
    count_eligible_held,
    count_eligible_records,
    needs_recommendations,
    outcome_fields,
    outcomes_from_fields,
    rank_offers,
)
from recsys.records import (
    META,
    PROFILES,
    RECOMMENDATIONS,
    CustomerProfile,
    first_ranked_item,
)
from serving.services.clock import now_iso
from serving.snapshots import NoSnapshotError, SnapshotCache, SnapshotView

log = logging.getLogger("recsys.serving")

DAY = 86_400.0
#: after a failed load of a snapshot's offer profiles, decisions read profiles from the store this long
#: before the load is tried again
PROFILES_RETRY_SECONDS = 30.0
DECISIONS_STREAM = "offer_decisions"
EVENTS_STREAM = "offer_events"
EventType = Literal["impression", "redemption", "dismissal"]


class NoCatalogueError(LookupError):
    """The current snapshot carries no offer catalogue and no fallback file is configured."""


class UnknownCustomerError(LookupError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no profile in the current snapshot")


class UnknownOfferError(LookupError):
    def __init__(self, offer_id: str, version: str) -> None:
        super().__init__(f"offer {offer_id!r} is not in the current catalogue (version {version})")


class BudgetExhaustedError(RuntimeError):
    def __init__(self, offer_id: str, limit: int) -> None:
        super().__init__(f"offer {offer_id!r} has used its budget of {limit} redemptions")


@dataclass(frozen=True)
class OfferEvent:
    event_id: str
    type: EventType
    customer_id: str


def contact_claim(catalogue: Catalogue, customer_id: str) -> Claim:
    return Claim(f"contact:{customer_id}", catalogue.contact.max_offers, catalogue.contact.window_days * DAY)


def repeat_claim(offer: Offer, customer_id: str) -> Claim:
    return Claim(f"repeat:{customer_id}:{offer.id}", 1, offer.repeat_after_days * DAY)


def budget_claim(offer: Offer, amount: int) -> Claim | None:
    limit = offer.redemption_limit
    return None if limit is None else Claim(budget_key(offer), limit, None, amount)


def spend_claim(offer: Offer) -> Claim | None:
    """One impression's share of the offer's money budget, used when the offer is shown."""
    limit = offer.impression_limit
    return None if limit is None else Claim(spend_key(offer), limit, None, 1)


def budget_key(offer: Offer) -> str:
    """The limits key counting the offer's redemptions."""
    return f"budget:{offer.id}"


def spend_key(offer: Offer) -> str:
    """The limits key counting the impressions charged to the offer's money budget."""
    return f"spend:{offer.id}"


def outcomes_key(offer_id: str) -> str:
    return f"outcomes:{offer_id}"


class OfferService:
    def __init__(self, reader: AsyncOnlineStoreReader, snapshots: SnapshotCache, limits: LimitsStore, *,
                 fallback_catalogue: Catalogue | None = None, seed: int | None = None,
                 outcomes_refresh_seconds: float = 1.0, event_log_max: int = 1_000_000,
                 profiles_in_memory: bool = True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.reader, self.snapshots, self.limits = reader, snapshots, limits
        self.fallback_catalogue = fallback_catalogue
        self.rng = np.random.default_rng(seed)
        self.outcomes_refresh_seconds = outcomes_refresh_seconds
        self.event_log_max = event_log_max
        self.clock = clock
        self._catalogues: dict[str, Catalogue | None] = {}
        self._outcomes: tuple[float, str, dict] = (float("-inf"), "", {})
        self._beliefs: dict = {}  # posteriors of the current outcome table, filled as customers need them
        self._previews: dict[tuple[str, str], dict] = {}
        self._parts: tuple[str, dict[str, tuple[Offer, Claim | None, str]]] = ("", {})
        self.profiles_in_memory = profiles_in_memory
        # the offer profiles of one snapshot (None while loading, or for a snapshot that has none)
        self._profiles: tuple[str, OfferProfiles | None] = ("", None)
        self._profiles_task: asyncio.Task | None = None
        self._profiles_failed: tuple[str, float] = ("", float("-inf"))  # a snapshot whose load failed, retry time

    async def catalogue(self, view: SnapshotView) -> Catalogue:
        if view.snapshot_id not in self._catalogues:
            raw = await self.reader.get(view.snapshot_id, OFFERS_NAMESPACE, CATALOGUE_KEY)
            # Snapshots are immutable, so each one's catalogue is decoded (and re-validated) once.
            self._catalogues = {k: v for k, v in list(self._catalogues.items())[-2:]}
            self._catalogues[view.snapshot_id] = None if raw is None else Catalogue.from_bytes(raw)
        catalogue = self._catalogues[view.snapshot_id] or self.fallback_catalogue
        if catalogue is None:
            raise NoCatalogueError(f"snapshot {view.snapshot_id} carries no offer catalogue; publish one "
                                   "with the snapshot or set RECSYS_SERVING_OFFER_CATALOGUE_PATH")
        return catalogue

    async def for_customer(self, customer_id: str, k: int) -> dict:
        view = await self.snapshots.current()
        catalogue = await self.catalogue(view)
        profile, top_item = await self._customer(view, customer_id, needs_recommendations(catalogue))
        outcomes = await self._outcome_table(catalogue)
        ranked = rank_offers(catalogue, profile, self.clock(), outcomes=outcomes, rng=self.rng,
                             recommended_item=top_item, beliefs=self._beliefs)
        segment = profile.segment or UNKNOWN_SEGMENT
        chosen, capped = await self._show(catalogue, view, customer_id, segment, ranked, k)
        return {
            "customer_id": customer_id,
            "segment": segment,
            "policy": "thompson_sampling",
            "offers": [{"rank": i + 1, **d.to_dict()} for i, d in enumerate(chosen)],
            "capped": capped,
            "eligible": len(ranked),
            "snapshot_id": view.snapshot_id,
            "catalogue_version": catalogue.version,
        }

    async def _show(self, catalogue: Catalogue, view: SnapshotView, customer_id: str, segment: str,
                    ranked: list[OfferDecision], k: int) -> tuple[list[OfferDecision], list[str]]:
        """Acquire the caps of the best k offers that fit, counting their impressions and logging the
        decision (every eligible offer, in rank order, and which were shown) in the same atomic step."""
        parts = self._offer_parts(catalogue)
        impressions = outcome_fields(segment)[0]
        groups, increments = [], []
        for decision in ranked:
            offer, budgets, counter_key = parts[decision.offer_id]
            groups.append((repeat_claim(offer, customer_id), *budgets))
            increments.append((Increment(counter_key, impressions),))
        # One JSON field rather than a field per value: typed values for analysis, and a short call.
        decision = orjson.dumps({
            "customer_id": customer_id, "segment": segment, "at": now_iso(), "k": k,
            "snapshot_id": view.snapshot_id, "catalogue_version": catalogue.version,
            "candidates": [{"offer_id": d.offer_id, "p_redeem": d.p_redeem, "expected_value": d.expected_value}
                           for d in ranked]}).decode()
        acquired = await self.limits.acquire_first(
            groups, max_groups=k, shared=(contact_claim(catalogue, customer_id),),
            recording=Recording(increments, Event(DECISIONS_STREAM, {"decision": decision}, self.event_log_max)))
        assert isinstance(acquired, list)  # no idempotency marker was asked for
        # Offers after the k-th acquired one were never tried; those before it that were skipped were capped.
        tried = len(ranked) if len(acquired) < k else acquired[-1] + 1
        taken = set(acquired)
        return [ranked[i] for i in acquired], [ranked[i].offer_id for i in range(tried) if i not in taken]

    async def _customer(self, view: SnapshotView, customer_id: str,
                        top_item: bool) -> tuple[CustomerProfile, str | None]:
        """The customer's profile and, when ``top_item``, their top recommended item: from the offer
        profiles held in memory once they are loaded, else read from the store."""
        table = self._offer_profiles(view)
        if table is not None and holdable(customer_id):
            row = table.row(customer_id)
            if row is None:  # the table holds every profile of the snapshot
                raise UnknownCustomerError(customer_id)
            profile, item = table.profile(row)
            return profile, view.catalog.item_ids[item] if top_item and item >= 0 else None
        lookups = [(PROFILES, customer_id)] + ([(RECOMMENDATIONS, customer_id)] if top_item else [])
        raw_profile, *raw_record = await self.reader.get_each(view.snapshot_id, lookups)
        if raw_profile is None:
            raise UnknownCustomerError(customer_id)
        return CustomerProfile.from_bytes(raw_profile), _top_item(view, raw_record[0]) if raw_record else None

    def _offer_profiles(self, view: SnapshotView) -> OfferProfiles | None:
        """The current snapshot's offer profiles once loaded; the first call for a snapshot starts
        loading them in the background."""
        if not self.profiles_in_memory:
            return None
        snapshot_id, table = self._profiles
        if snapshot_id == view.snapshot_id:
            return table
        failed, retry_at = self._profiles_failed
        if (failed == view.snapshot_id and time.monotonic() < retry_at) or not _has_offer_profiles(view):
            return None
        # the previous snapshot's table is released now: until the new one is loaded, profiles are read
        self._profiles = (view.snapshot_id, None)
        if self._profiles_task is not None:
            self._profiles_task.cancel()
        self._profiles_task = asyncio.create_task(self._load_offer_profiles(view))
        return None

    async def warm_up(self) -> OfferProfiles | None:
        """Load the current snapshot's catalogue and offer profiles now rather than on the first decision
        (a starting worker); the profiles, or None when there is no snapshot or it has none."""
        try:
            view = await self.snapshots.current()
            await self.catalogue(view)
        except (NoSnapshotError, NoCatalogueError, StoreError):
            return None  # the first decision tries again
        self._offer_profiles(view)
        if self._profiles_task is not None:
            await asyncio.wait([self._profiles_task])  # the load reports its own failure
        return self._offer_profiles(view)

    async def _load_offer_profiles(self, view: SnapshotView) -> None:
        counts = view.manifest.metadata
        try:
            keys = {kind: [chunk_key(kind, i) for i in range(int(counts[kind]["chunks"]))]
                    for kind in (OFFER_PROFILES_KEY, TOP_ITEMS_KEY)}
            chunks = {kind: await self.reader.get_many(view.snapshot_id, META, names) for kind, names in keys.items()}
            if any(chunk is None for parts in chunks.values() for chunk in parts):
                raise StoreError("a chunk named by the manifest is missing")
            table = await asyncio.to_thread(OfferProfiles.from_chunks, chunks[OFFER_PROFILES_KEY],
                                            chunks[TOP_ITEMS_KEY])
        # whatever stops the load (an outage, a missing or corrupt chunk), decisions go on reading profiles
        except Exception as exc:
            log.warning("offer profiles of snapshot %s not loaded, reading profiles per decision for %.0f s: %s",
                        view.snapshot_id, PROFILES_RETRY_SECONDS, exc)
            self._profiles_failed = (view.snapshot_id, time.monotonic() + PROFILES_RETRY_SECONDS)
            if self._profiles[0] == view.snapshot_id:
                self._profiles = ("", None)
            return
        if self._profiles[0] == view.snapshot_id:
            self._profiles = (view.snapshot_id, table)

    def _offer_parts(self, catalogue: Catalogue) -> dict[str, tuple[Offer, tuple[Claim, ...], str]]:
        """Per offer of the catalogue: the offer, its budget claims for an impression (redemptions left,
        checked; money, used) and its outcome counter key."""
        version, parts = self._parts
        if version != catalogue.version:
            parts = {o.id: (o, tuple(c for c in (budget_claim(o, amount=0), spend_claim(o)) if c is not None),
                            outcomes_key(o.id)) for o in catalogue.offers}
            self._parts = (catalogue.version, parts)
        return parts

    async def record_event(self, offer_id: str, event: OfferEvent) -> dict:
        view = await self.snapshots.current()
        catalogue = await self.catalogue(view)
        if offer_id not in catalogue:
            raise UnknownOfferError(offer_id, catalogue.version)
        offer = catalogue[offer_id]
        # The segment is read before anything is written: if the snapshot store fails here, nothing has
        # been counted and the client's retry counts the event once.
        # Nobody without a profile is shown an offer: such an event (UnknownCustomerError) must not spend
        # a budget or teach the posteriors of a segment nobody is in.
        profile, _ = await self._customer(view, event.customer_id, top_item=False)
        segment = profile.segment or UNKNOWN_SEGMENT
        impressions, redemptions = outcome_fields(segment)
        field = {"impression": impressions, "redemption": redemptions}.get(event.type, f"{segment}|dismissals")
        claims = []
        if event.type == "redemption" and (budget := budget_claim(offer, amount=1)) is not None:
            claims.append(budget)
        log = {"type": event.type, "event_id": event.event_id, "offer_id": offer_id,
               "customer_id": event.customer_id, "segment": segment, "at": now_iso(),
               "snapshot_id": view.snapshot_id, "catalogue_version": catalogue.version}
        # Idempotency marker, budget, outcome counter and log entry in one atomic step: the marker is never
        # set without the count it stands for. A redemption refused for budget is logged with acquired="".
        outcome = await self.limits.acquire_first(
            [claims], 1, once=f"event:{event.event_id}",
            recording=Recording([(Increment(outcomes_key(offer_id), field),)],
                                Event(EVENTS_STREAM, log, self.event_log_max)))
        body = {"event_id": event.event_id, "offer_id": offer_id, "type": event.type,
                "duplicate": outcome is Acquired.DUPLICATE}
        if outcome is Acquired.DUPLICATE:
            return body
        if not outcome:
            raise BudgetExhaustedError(offer_id, offer.redemption_limit or 0)
        return {**body, "segment": segment}

    async def preview(self) -> dict:
        """Customers of the current snapshot eligible for each offer (computed once per snapshot, and again
        when an offer's validity window opens or closes)."""
        view = await self.snapshots.current()
        catalogue = await self.catalogue(view)
        now = self.clock()
        # counted again when an offer's validity window opens or closes: eligibility depends on it
        valid = frozenset(o.id for o in catalogue.offers if o.validity.contains(now))
        cache_key = (view.snapshot_id, catalogue.version, valid)
        if cache_key not in self._previews:
            held = self._offer_profiles(view)
            if held is not None and len(held) == view.manifest.counts.get(PROFILES):
                # every profile is held (none was left out for its id): counted without a store read
                customers, counts = len(held), dict(await asyncio.to_thread(count_eligible_held, catalogue,
                                                                            held, now))
            else:
                customers, counts = await self._count_stored(view, catalogue, now)
            self._previews = {cache_key: {"customers": customers, "eligible": counts, "computed_at": now_iso()}}
        offers = catalogue.offers
        used = await self.limits.used([key_of(o) for key_of in (budget_key, spend_key) for o in offers])
        redeemed, shown = used[:len(offers)], used[len(offers):]
        preview = self._previews[cache_key]
        return {"snapshot_id": view.snapshot_id, "catalogue_version": catalogue.version, **preview,
                "offers": [{"offer_id": o.id, "name": o.name, "type": o.type.value,
                            "eligible_customers": preview["eligible"][o.id],
                            "redemption_limit": o.redemption_limit, "redemptions_used": r,
                            "impression_limit": o.impression_limit, "budget_impressions_used": i}
                           for o, r, i in zip(offers, redeemed, shown, strict=True)]}

    async def _count_stored(self, view: SnapshotView, catalogue: Catalogue,
                            now: datetime) -> tuple[int, dict[str, int]]:
        """Customers of the snapshot and those eligible for each offer, read from the store in batches."""
        counts = dict.fromkeys((o.id for o in catalogue.offers), 0)
        customers = 0
        bundles = needs_recommendations(catalogue)  # a bundle needs the customer's top recommendation
        async for batch in self.reader.iter_namespace(view.snapshot_id, PROFILES):
            customers += len(batch)
            records = await self.reader.get_many(view.snapshot_id, RECOMMENDATIONS,
                                                 [customer_id for customer_id, _ in batch]) if bundles else None
            part = await asyncio.to_thread(count_eligible_records, catalogue, batch, now, records)
            for offer_id, n in part.items():
                counts[offer_id] += n
        return customers, counts

    async def _outcome_table(self, catalogue: Catalogue) -> dict:
        checked_at, version, table = self._outcomes
        if version == catalogue.version and time.monotonic() - checked_at < self.outcomes_refresh_seconds:
            return table
        fields = await self.limits.counters([outcomes_key(o.id) for o in catalogue.offers])
        table = {}
        for offer, counts in zip(catalogue.offers, fields, strict=True):
            table.update(outcomes_from_fields(offer.id, counts))
        self._outcomes = (time.monotonic(), catalogue.version, table)
        self._beliefs = {}
        return table

    async def close(self) -> None:
        if self._profiles_task is not None:
            self._profiles_task.cancel()
        await self.limits.close()


def _has_offer_profiles(view: SnapshotView) -> bool:
    """Whether the snapshot was published with offer profiles (older ones were not)."""
    metadata = view.manifest.metadata
    return all(isinstance(metadata.get(kind), dict) and "chunks" in metadata[kind]
               for kind in (OFFER_PROFILES_KEY, TOP_ITEMS_KEY))


def _top_item(view: SnapshotView, raw: bytes | None) -> str | None:
    """The customer's first recommendation, which bundle offers carry."""
    row = first_ranked_item(raw) if raw else None
    return view.catalog.item_ids[row] if row is not None else None
