"""Recommendation answers from the current snapshot, with their provenance. No web framework here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from feature_store import AsyncOnlineStoreReader, StoreUnavailableError
from recsys.records import RANKED_DTYPE, RECOMMENDATIONS, SIMILAR, decode_customer_record, decode_ranked
from recsys.rules import RuleFilter, RuleSet
from serving.snapshots import SnapshotCache, SnapshotView

log = logging.getLogger("recsys.serving")

PERSONALISED = "personalised"
FALLBACK = "fallback"
SIMILAR_ITEMS = "similar_items"
POPULAR_LIST = "popular"
BASKET_COMPLEMENTS = "basket_complements"


class UnknownItemError(LookupError):
    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id!r} is not in the current snapshot's catalogue")
        self.item_id = item_id


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    score: float
    source: str


@dataclass(frozen=True)
class RankedAnswer:
    """A list and where it came from: ``source`` is the answer's kind, each item names its generator."""

    items: list[RankedItem]
    source: str
    snapshot: SnapshotView
    fallback_reason: str | None = None
    extra: dict = field(default_factory=dict)

    def to_body(self, **subject) -> dict:
        return {
            **subject,
            "source": self.source,
            "fallback_reason": self.fallback_reason,
            "items": [{"item_id": i.item_id, "score": i.score, "source": i.source} for i in self.items],
            "snapshot_id": self.snapshot.snapshot_id,
            "model": self.snapshot.model,
            "rules": [],
            **self.extra,
        }


class RecommendationService:
    def __init__(self, reader: AsyncOnlineStoreReader, snapshots: SnapshotCache,
                 fallback_chain: Sequence[str] = ("popular",)) -> None:
        self.reader = reader
        self.snapshots = snapshots
        self.fallback_chain = tuple(fallback_chain)

    async def for_customer(self, customer_id: str, k: int, rules: RuleSet | None = None) -> RankedAnswer:
        view = await self.snapshots.current()
        try:
            raw = await self.reader.get(view.snapshot_id, RECOMMENDATIONS, customer_id)
        except StoreUnavailableError as exc:
            log.warning("store unavailable, answering %s from the fallback: %s", customer_id, exc)
            return self._unavailable(view, k, rules)
        active = rules.active if rules is not None else []
        if active:
            return await self._with_rules(view, customer_id, raw, k, rules, active)
        if raw is None:
            items = self._fallback(view, k, RuleFilter(RuleSet(), view.catalog.categories, view.catalog.item_ids))
            return RankedAnswer(items, FALLBACK, view, fallback_reason="unknown_customer")
        ranked = decode_customer_record(raw, view.record_format).ranked
        items = _items(view, ranked[:k])
        personal = len(items)
        if personal < k:
            # Too few personal items: fill from the fallback chain rather than answer short.
            rule_filter = RuleFilter(RuleSet(), view.catalog.categories, view.catalog.item_ids)
            for row in ranked["item"][:k].tolist():
                rule_filter.admit(row)
            items += self._fallback(view, k - len(items), rule_filter)
        return _answer(items, personal, PERSONALISED, "no_personal_items", view)

    async def _with_rules(self, view: SnapshotView, customer_id: str, raw: bytes | None, k: int, rules: RuleSet,
                          active: list[str]) -> RankedAnswer:
        record = decode_customer_record(raw, view.record_format) if raw is not None else None
        ranked = None
        if record is not None:
            # the filter drops the bought items of either list
            ranked = record.first_purchase_order() if rules.exclude_purchased else record.ranked
        bought = () if record is None else record.bought
        rule_filter = RuleFilter(rules, view.catalog.categories, view.catalog.item_ids, bought)
        items = _admitted(view, ranked, rule_filter, k) if ranked is not None else []
        personal = len(items)
        items += self._fallback(view, k - len(items), rule_filter)
        if raw is None:
            return RankedAnswer(items, FALLBACK, view, fallback_reason="unknown_customer", extra={"rules": active})
        return _answer(items, personal, PERSONALISED, "no_personal_items", view, extra={"rules": active})

    async def similar(self, item_id: str, k: int) -> RankedAnswer:
        """Items like ``item_id``; a short list (an item nothing was bought with) is filled from the
        fallback chain, and while the store is unreachable the fallback answers alone. The item itself is
        never answered."""
        view = await self.snapshots.current()
        if item_id not in view.item_index:
            raise UnknownItemError(item_id)
        itself = [view.item_index[item_id]]
        try:
            raw = await self.reader.get(view.snapshot_id, SIMILAR, item_id)
        except StoreUnavailableError as exc:
            log.warning("store unavailable, answering items similar to %s from the fallback: %s", item_id, exc)
            return self._unavailable(view, k, None, itself)
        rule_filter = RuleFilter(RuleSet(), view.catalog.categories, view.catalog.item_ids, excluded_rows=itself)
        items = _admitted(view, decode_ranked(raw), rule_filter, k) if raw is not None else []
        similar = len(items)
        items += self._fallback(view, k - len(items), rule_filter)
        return _answer(items, similar, SIMILAR_ITEMS, "no_similar_items", view)

    async def complements(self, basket: Sequence[str], k: int, rules: RuleSet | None = None,
                          customer_id: str | None = None) -> RankedAnswer:
        """Items bought with a basket's items: each candidate scores the sum of its similarity to every
        basket item, so an item that goes with several of them comes first (ties: catalogue order). The
        basket's own items are never answered; unknown ones are named and skipped; short answers are
        filled from the fallback chain. ``exclude_purchased`` needs ``customer_id``."""
        view = await self.snapshots.current()
        known = [item for item in dict.fromkeys(basket) if item in view.item_index]
        unknown = [item for item in dict.fromkeys(basket) if item not in view.item_index]
        rules = rules or RuleSet()
        if rules.exclude_purchased and customer_id is None:
            rules = rules.override(exclude_purchased=False)  # nobody's purchases to exclude: not claimed
        lookups = [(SIMILAR, item) for item in known] + ([(RECOMMENDATIONS, customer_id)]
                                                          if rules.exclude_purchased else [])
        extra = {"basket": known, "unknown_items": unknown}
        in_basket = [view.item_index[item] for item in known]
        try:
            raws = await self.reader.get_each(view.snapshot_id, lookups) if lookups else []
        except StoreUnavailableError as exc:
            log.warning("store unavailable, answering a basket from the fallback: %s", exc)
            return self._unavailable(view, k, rules, in_basket, extra)
        bought: Sequence[int] = ()
        if rules.exclude_purchased:
            record = raws.pop()
            bought = decode_customer_record(record, view.record_format).bought if record is not None else ()
        rule_filter = RuleFilter(rules, view.catalog.categories, view.catalog.item_ids, bought, in_basket)
        items = _admitted(view, _summed(raws), rule_filter, k)
        complements = len(items)
        items += self._fallback(view, k - len(items), rule_filter)
        extra = {"rules": rules.active, **extra}
        if not known:
            return RankedAnswer(items, FALLBACK, view, fallback_reason="no_known_items", extra=extra)
        return _answer(items, complements, BASKET_COMPLEMENTS, "no_complements", view, extra=extra)

    async def popular(self, k: int, kind: str = "popular") -> RankedAnswer:
        view = await self.snapshots.current()
        ranked = view.popular.get(kind)
        items = _items(view, ranked[:k]) if ranked is not None else []
        return RankedAnswer(items, POPULAR_LIST, view, extra={"kind": kind})

    def _unavailable(self, view: SnapshotView, k: int, rules: RuleSet | None, excluded_rows: Sequence[int] = (),
                     extra: dict | None = None) -> RankedAnswer:
        """A storefront must always get a list: the popular one held in memory, marked as such. The
        purchases are in the record that could not be read, so exclude_purchased cannot be applied, and
        the answer must not claim it was."""
        applied = (rules or RuleSet()).override(exclude_purchased=False)
        rule_filter = RuleFilter(applied, view.catalog.categories, view.catalog.item_ids, excluded_rows=excluded_rows)
        return RankedAnswer(self._fallback(view, k, rule_filter), FALLBACK, view, fallback_reason="store_unavailable",
                            extra={"rules": applied.active, **(extra or {})})

    def _fallback(self, view: SnapshotView, k: int, rule_filter: RuleFilter) -> list[RankedItem]:
        """Up to ``k`` items from the fallback chain, in order, that pass ``rule_filter``."""
        chosen: list[RankedItem] = []
        for kind in self.fallback_chain:
            if len(chosen) >= k:
                break
            ranked = view.popular.get(kind)
            if ranked is not None:
                chosen += _admitted(view, ranked, rule_filter, k - len(chosen))
        return chosen


def _answer(items: list[RankedItem], from_primary: int, source: str, reason: str, view: SnapshotView,
            extra: dict | None = None) -> RankedAnswer:
    """The answer of list ``source`` when its first ``from_primary`` items came from that list; when none
    did (rules or a short list left nothing), it is the fallback's answer and says why."""
    if from_primary:
        return RankedAnswer(items, source, view, extra=extra or {})
    return RankedAnswer(items, FALLBACK, view, fallback_reason=reason, extra=extra or {})


def _admitted(view: SnapshotView, ranked: np.ndarray, rule_filter: RuleFilter, k: int) -> list[RankedItem]:
    """The first ``k`` entries of ``ranked`` that pass the rules, in order."""
    keep = []
    for position, row in enumerate(ranked["item"].tolist()):
        if rule_filter.admit(row):
            keep.append(position)
            if len(keep) == k:
                break
    return _items(view, ranked[keep])


def _summed(raws: Sequence[bytes | None]) -> np.ndarray:
    """Several ranked lists as one (``RANKED_DTYPE``): each item's scores summed, named after the list
    entry that gave it the most, best first, ties by item row."""
    parts = [decode_ranked(raw) for raw in raws if raw is not None]
    if not parts:
        return np.zeros(0, dtype=RANKED_DTYPE)
    entries = np.concatenate(parts)
    items, slot = np.unique(entries["item"], return_inverse=True)
    totals = np.zeros(len(items))
    np.add.at(totals, slot, entries["score"].astype(np.float64))
    # the source of each item's largest part: entries sorted by score, the last per item wins
    by_score = np.argsort(entries["score"], kind="stable")
    source = np.zeros(len(items), dtype=entries["source"].dtype)
    source[slot[by_score]] = entries["source"][by_score]
    # ties as the answer shows the scores (six decimals): float32 parts can sum a hair apart
    order = np.lexsort((items, -np.round(totals, 6)))
    summed = np.zeros(len(items), dtype=RANKED_DTYPE)
    summed["item"], summed["score"], summed["source"] = items[order], totals[order], source[order]
    return summed


def _items(view: SnapshotView, ranked: np.ndarray) -> list[RankedItem]:
    ids, sources = view.catalog.item_ids, view.sources
    scores = ranked["score"].astype(np.float64).round(6).tolist()
    return [RankedItem(ids[item], score, sources[source] if source < len(sources) else "unknown")
            for item, score, source in zip(ranked["item"].tolist(), scores, ranked["source"].tolist(),
                                           strict=True)]
