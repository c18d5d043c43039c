"""Atomic counters with limits, idempotency markers, outcome counters and a bounded event log.

The contract knows nothing of what is counted. A :class:`Claim` is "key ``key`` may be used at most
``limit`` times per window of ``ttl_seconds``" (the window starts at the key's first use; no TTL means
it never resets, as for a budget). :meth:`LimitsStore.try_acquire` checks every claim and uses all of
them or none, in one atomic step, so concurrent callers can never push a key past its limit.
:meth:`LimitsStore.acquire_first` does the same for several alternative groups of claims in order,
stopping after ``max_groups`` succeed, still in one atomic step (and one round trip on Redis); a
:class:`Recording` given with it adds counters for the groups acquired and appends an event naming them
in that same step, so a decision and its record can never disagree.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

#: How long an idempotency marker is kept when the caller gives no TTL (replays after that count again).
DEFAULT_MARKER_TTL_SECONDS = 30 * 86_400
DEFAULT_LIMITS_URL = "sqlite:///var/limits.sqlite"


@dataclass(frozen=True)
class Claim:
    key: str
    limit: int
    ttl_seconds: float | None = None
    amount: int = 1  # 0 checks that the key is below its limit without using any of it

    def __post_init__(self) -> None:
        if self.limit < 0 or self.amount < 0:
            raise ValueError(f"claim on {self.key!r}: limit and amount must be >= 0")
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise ValueError(f"claim on {self.key!r}: ttl_seconds must be positive or None")


class Acquired(StrEnum):
    ACQUIRED = "acquired"
    LIMITED = "limited"  # some claim was at its limit: nothing was used
    DUPLICATE = "duplicate"  # the idempotency marker was already set: nothing was used

    def __bool__(self) -> bool:
        return self is Acquired.ACQUIRED


@dataclass(frozen=True)
class Increment:
    """Add ``amount`` to field ``field`` of the counter hash ``key``."""

    key: str
    field: str
    amount: int = 1


@dataclass(frozen=True)
class Event:
    """Append ``fields`` to ``stream``, keeping about its last ``maxlen`` entries."""

    stream: str
    fields: Mapping[str, str]
    maxlen: int = 1_000_000


@dataclass(frozen=True)
class Recording:
    """What an :meth:`LimitsStore.acquire_first` call records in its atomic step: ``increments[i]`` when
    group ``i`` is acquired, and ``event`` (unless the call was a duplicate) with one more field,
    ``acquired``: the indices of the acquired groups, comma-separated ("" when none)."""

    increments: Sequence[Sequence[Increment]] = ()
    event: Event | None = None


class LimitsStore(abc.ABC):
    """Asynchronous, since the web service calls it on every offer request."""

    @abc.abstractmethod
    async def acquire_first(self, groups: Sequence[Sequence[Claim]], max_groups: int = 1, *,
                            shared: Sequence[Claim] = (), recording: Recording | None = None,
                            once: str | None = None,
                            once_ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> Acquired | list[int]:
        """Try each group of claims in order and use the first ``max_groups`` that fit; return their
        indices. ``shared`` claims belong to every group (sent once; when one is at its limit no later
        group is tried). With ``once``, return :attr:`Acquired.DUPLICATE` when that marker is already
        set, and set it when at least one group was acquired (or when there are no groups)."""

    async def try_acquire(self, claims: Sequence[Claim], *, once: str | None = None,
                          once_ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> Acquired:
        result = await self.acquire_first([claims], 1, once=once, once_ttl_seconds=once_ttl_seconds)
        if isinstance(result, Acquired):
            return result
        return Acquired.ACQUIRED if result else Acquired.LIMITED

    async def mark_once(self, key: str, ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> bool:
        """Set an idempotency marker; False when it was already set."""
        return await self.try_acquire([], once=key, once_ttl_seconds=ttl_seconds) is Acquired.ACQUIRED

    @abc.abstractmethod
    async def used(self, keys: Sequence[str]) -> list[int]:
        """How much of each claim key is used in its current window (0 for a missing or expired key)."""

    @abc.abstractmethod
    async def counters(self, keys: Sequence[str]) -> list[dict[str, int]]:
        """The fields of each counter hash ({} for a missing one)."""

    @abc.abstractmethod
    async def read_events(self, stream: str, count: int = 100, after: str | None = None
                          ) -> list[tuple[str, dict[str, str]]]:
        """The oldest ``count`` retained events of a stream (those after the event id ``after`` when
        given), oldest first, with their ids: pass the last id back as ``after`` to read on."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


def default_limits_url(store_url: str | None) -> str:
    """Where the limits live unless configured: the snapshot store when it is Redis (caps must be shared
    by every worker), else the embedded file."""
    from feature_store.factory import REDIS_SCHEMES

    if urlsplit(store_url or "").scheme.lower() in REDIS_SCHEMES:
        return str(store_url)
    return DEFAULT_LIMITS_URL


def open_limits(url: str | None, *, prefix: str = "recsys") -> LimitsStore:
    """redis://, rediss:// or unix:// for Redis; sqlite:///path for the embedded store."""
    from feature_store.factory import store_backend

    kind, target = store_backend(url or DEFAULT_LIMITS_URL)
    if kind == "redis":
        from feature_store.limits_redis import RedisLimitsStore

        return RedisLimitsStore(str(target), prefix=prefix)
    from feature_store.limits_sqlite import SqliteLimitsStore

    return SqliteLimitsStore(target, prefix=prefix)


def check_groups(groups: Sequence[Sequence[Claim]], max_groups: int, shared: Sequence[Claim] = (),
                 recording: Recording | None = None) -> None:
    if max_groups < 1:
        raise ValueError(f"max_groups must be at least 1, got {max_groups}")
    for group in [shared, *groups]:
        for claim in group:
            if not isinstance(claim, Claim):
                raise TypeError(f"claims must be Claim instances, got {type(claim).__name__}")
    if recording is not None:
        if recording.increments and len(recording.increments) != len(groups):
            raise ValueError(f"recording has increments for {len(recording.increments)} groups, "
                             f"the call has {len(groups)}")
        if recording.event is not None and "acquired" in recording.event.fields:
            raise ValueError("recording event: the field 'acquired' is set by the store")
