"""Redis backend of the limits store: one Lua script (sent by EVALSHA) checks and uses claims.

Keys under a prefix::

    {prefix}:lim:{key}      string counter of a claim, with the claim's TTL from its first use
    {prefix}:once:{key}     idempotency marker, with its TTL
    {prefix}:cnt:{key}      hash of outcome counters (HINCRBY)
    {prefix}:log:{stream}   stream of events (XADD MAXLEN ~)

A script runs without interleaving with any other command, which is what makes check-then-use atomic
across concurrent callers and server connections. (On Redis Cluster every key of one call must hash to
the same slot; this backend targets a single primary.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis.asyncio as aredis

from feature_store.keys import validate_name
from feature_store.limits import (
    DEFAULT_MARKER_TTL_SECONDS,
    Acquired,
    Claim,
    LimitsStore,
    Recording,
    check_groups,
)
from feature_store.multiplexed import MultiplexedRedis, RedisReplyError, reporting_unavailable
from feature_store.redis_retry import reconnect_once

# ARGV: marker TTL in ms (-1: no marker), max groups, whether these are all the groups (1) or only the
#   first ones (0), log maxlen (-1: no event) [number of fields, fields], number of shared claims, their
#   (limit, TTL in ms or 0, amount), number of groups, then per group: its number of claims, their
#   (limit, TTL, amount), its number of increments, their (field, amount).
# KEYS: [marker], [log stream], shared claim keys, then per group its claim keys and counter keys.
#
# The script first plans which groups to take, then writes. When it was sent only the first groups and
# they are not enough, it writes nothing and answers -2, and the caller sends every group: Lua runs
# slowly next to Redis commands (on a small machine 0.1-0.2 us per operation, and as much per argument
# received), so the usual case, where the best offers fit, stays a short call.
_ACQUIRE = """
local A, K, tonumber = ARGV, KEYS, tonumber
local k = 0
local marker_ttl = tonumber(A[1])
local marker = nil
if marker_ttl >= 0 then
  k = 1
  marker = K[1]
  if redis.call('EXISTS', marker) == 1 then return {-1} end
end
local max_groups = tonumber(A[2])
local complete = A[3] == '1'
local maxlen = tonumber(A[4])
local a = 4
local stream, fields = nil, nil
if maxlen >= 0 then
  k = k + 1
  stream = K[k]
  local n = 2 * tonumber(A[5])
  fields = {unpack(A, 6, 5 + n)}
  a = 5 + n
end
local n_shared = tonumber(A[a + 1])
-- A block of n claims whose arguments follow index ba and keys follow index bk: claim i has key
-- K[bk + i], limit A[ba + 3i - 2], TTL A[ba + 3i - 1] and amount A[ba + 3i].
local shared = {a + 1, k, n_shared}
a = a + 1 + 3 * n_shared
k = k + n_shared
local n_groups = tonumber(A[a + 1])
a = a + 1

local present, planned_use = {}, {}
local function fits(block, used, offset)
  local ba, bk = block[1], block[2]
  for i = 1, block[3] do
    local key, raw = K[bk + i], used[offset + i]
    present[key] = raw ~= false
    local amount = tonumber(A[ba + 3 * i])
    local total = tonumber(raw or '0') + (planned_use[key] or 0) + math.max(amount, 1)
    if total > tonumber(A[ba + 3 * i - 2]) then return false end
  end
  return true
end
local function plan(block)
  local ba, bk = block[1], block[2]
  for i = 1, block[3] do
    local key = K[bk + i]
    planned_use[key] = (planned_use[key] or 0) + tonumber(A[ba + 3 * i])
  end
end
local function use(block)
  local ba, bk = block[1], block[2]
  for i = 1, block[3] do
    local key, amount, ttl = K[bk + i], tonumber(A[ba + 3 * i]), tonumber(A[ba + 3 * i - 1])
    if amount > 0 then
      if ttl > 0 and not present[key] then
        redis.call('SET', key, amount, 'PX', ttl)
      else
        redis.call('INCRBY', key, amount)
        if ttl > 0 and redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ttl) end
      end
      present[key] = true
    end
  end
end

local taken, shared_full = {}, false
for g = 1, n_groups do
  if #taken == max_groups then break end
  local group = {a + 1, k, tonumber(A[a + 1])}
  a = a + 1 + 3 * group[3]
  k = k + group[3]
  local n_inc = tonumber(A[a + 1])
  local increments = {a + 1, k, n_inc}
  a = a + 1 + 2 * n_inc
  k = k + n_inc
  local keys = {}
  for _, block in ipairs({shared, group}) do
    for i = 1, block[3] do keys[#keys + 1] = K[block[2] + i] end
  end
  local used = #keys > 0 and redis.call('MGET', unpack(keys)) or {}
  -- A shared claim at its limit belongs to every later group too: stop there.
  if not fits(shared, used, 0) then
    shared_full = true
    break
  end
  if fits(group, used, n_shared) then
    plan(shared)
    plan(group)
    taken[#taken + 1] = {g - 1, group, increments}
  end
end
if #taken < max_groups and not complete and not shared_full then return {-2} end

local acquired = {}
for _, t in ipairs(taken) do
  use(shared)
  use(t[2])
  local ia, ik = t[3][1], t[3][2]
  for i = 1, t[3][3] do
    redis.call('HINCRBY', K[ik + i], A[ia + 2 * i - 1], tonumber(A[ia + 2 * i]))
  end
  acquired[#acquired + 1] = t[1]
end
if stream then
  fields[#fields + 1] = 'acquired'
  fields[#fields + 1] = table.concat(acquired, ',')
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
if marker and (#acquired > 0 or n_groups == 0) then
  redis.call('SET', marker, '1', 'PX', marker_ttl)
end
local result = {1}
for i = 1, #acquired do result[i + 1] = acquired[i] end
return result
"""


class RedisLimitsStore(LimitsStore):
    def __init__(self, url: str, *, prefix: str = "recsys", max_connections: int = 64) -> None:
        self.prefix = validate_name("prefix", prefix)
        self._url = url
        # A blocking pool makes a burst of concurrent calls wait for a connection instead of failing.
        self._pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10,
                                                               **reconnect_once())
        self.client = aredis.Redis(connection_pool=self._pool)
        # The per-request calls (acquire, record) share one multiplexed connection, as snapshot reads do.
        self._fast = MultiplexedRedis(url)
        self._acquire_sha = hashlib.sha1(_ACQUIRE.encode()).hexdigest()

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    async def acquire_first(self, groups: Sequence[Sequence[Claim]], max_groups: int = 1, *,
                            shared: Sequence[Claim] = (), recording: Recording | None = None,
                            once: str | None = None,
                            once_ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> Acquired | list[int]:
        check_groups(groups, max_groups, shared, recording)
        if len(groups) > max_groups:
            # The best groups first: usually they fit, and a short call is a cheap one for Redis.
            result = await self._run_acquire(groups[:max_groups], max_groups, shared, recording, once,
                                             once_ttl_seconds, complete=False)
            if result[0] != -2:
                return self._acquired(result)
        result = await self._run_acquire(groups, max_groups, shared, recording, once, once_ttl_seconds,
                                         complete=True)
        return self._acquired(result)

    async def _run_acquire(self, groups: Sequence[Sequence[Claim]], max_groups: int, shared: Sequence[Claim],
                           recording: Recording | None, once: str | None, once_ttl_seconds: float,
                           complete: bool) -> list[int]:
        keys: list[str] = []
        args: list[str | int] = [_ms(once_ttl_seconds) if once is not None else -1, max_groups, int(complete)]
        if once is not None:
            keys.append(self._key("once", once))
        event = recording.event if recording is not None else None
        if event is None:
            args.append(-1)
        else:
            keys.append(self._key("log", event.stream))
            args += (event.maxlen, len(event.fields))
            for pair in event.fields.items():
                args += pair
        limit_prefix, counter_prefix = f"{self.prefix}:lim:", f"{self.prefix}:cnt:"
        _add_claims(keys, args, limit_prefix, shared)
        args.append(len(groups))
        increments = recording.increments if recording is not None and recording.increments else None
        for index, group in enumerate(groups):
            _add_claims(keys, args, limit_prefix, group)
            group_increments = increments[index] if increments is not None else ()
            args.append(len(group_increments))
            for inc in group_increments:
                keys.append(counter_prefix + inc.key)
                args += (inc.field, inc.amount)
        try:
            return await self._fast.execute("EVALSHA", self._acquire_sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self._fast.execute("EVAL", _ACQUIRE, len(keys), *keys, *args)

    @staticmethod
    def _acquired(result: list[int]) -> Acquired | list[int]:
        if result[0] == -1:
            return Acquired.DUPLICATE
        return [int(i) for i in result[1:]]

    async def used(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        values = await reporting_unavailable(self.client.mget([self._key("lim", k) for k in keys]), self._url)
        return [int(v) if v is not None else 0 for v in values]

    async def counters(self, keys: Sequence[str]) -> list[dict[str, int]]:
        if not keys:
            return []
        # Read by every serving worker once a second: the multiplexed connection keeps that refresh from
        # stalling the requests around it.
        replies = await self._fast.execute_all([("HGETALL", self._key("cnt", key)) for key in keys])
        return [{flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)} for flat in replies]

    async def read_events(self, stream: str, count: int = 100, after: str | None = None
                          ) -> list[tuple[str, dict[str, str]]]:
        start = "-" if after is None else f"({after}"  # "(" makes the bound exclusive
        entries = await reporting_unavailable(
            self.client.xrange(self._key("log", stream), min=start, count=count), self._url)
        return [(sid.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for sid, fields in entries]

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self._fast.close()
        await self.client.aclose()
        await self._pool.disconnect()


def _add_claims(keys: list[str], args: list, limit_prefix: str, claims: Sequence[Claim]) -> None:
    args.append(len(claims))
    for claim in claims:
        keys.append(limit_prefix + claim.key)
        args += (claim.limit, _ms(claim.ttl_seconds) if claim.ttl_seconds else 0, claim.amount)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
