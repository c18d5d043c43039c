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
    Event,
    Increment,
    LimitsStore,
    check_groups,
)
from feature_store.multiplexed import MultiplexedRedis, RedisReplyError

# KEYS: [marker], then every group's claim keys in order.
# ARGV: marker TTL in ms (-1: no marker), max groups, number of groups, then per group its number of
# claims followed by (limit, ttl ms or 0, amount) per claim.
_ACQUIRE = """
local k = 1
local marker_ttl = tonumber(ARGV[1])
if marker_ttl >= 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {-1} end
  k = 2
end
local max_groups = tonumber(ARGV[2])
local n_groups = tonumber(ARGV[3])
local a = 4
local acquired = {}
for g = 1, n_groups do
  local n = tonumber(ARGV[a])
  a = a + 1
  if #acquired < max_groups then
    local ok = true
    for c = 0, n - 1 do
      local used = tonumber(redis.call('GET', KEYS[k + c]) or '0')
      if used + math.max(tonumber(ARGV[a + 3 * c + 2]), 1) > tonumber(ARGV[a + 3 * c]) then
        ok = false
        break
      end
    end
    if ok then
      for c = 0, n - 1 do
        local amount = tonumber(ARGV[a + 3 * c + 2])
        if amount > 0 then
          redis.call('INCRBY', KEYS[k + c], amount)
          local ttl = tonumber(ARGV[a + 3 * c + 1])
          if ttl > 0 and redis.call('PTTL', KEYS[k + c]) < 0 then
            redis.call('PEXPIRE', KEYS[k + c], ttl)
          end
        end
      end
      acquired[#acquired + 1] = g - 1
    end
  end
  k = k + n
  a = a + 3 * n
end
if marker_ttl >= 0 and (#acquired > 0 or n_groups == 0) then
  redis.call('SET', KEYS[1], '1', 'PX', marker_ttl)
end
local result = {1}
for i = 1, #acquired do result[i + 1] = acquired[i] end
return result
"""


class RedisLimitsStore(LimitsStore):
    def __init__(self, url: str, *, prefix: str = "recsys", max_connections: int = 64) -> None:
        self.prefix = validate_name("prefix", prefix)
        # A blocking pool makes a burst of concurrent calls wait for a connection instead of failing.
        self._pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        self.client = aredis.Redis(connection_pool=self._pool)
        # The per-request calls (acquire, record) share one multiplexed connection, as snapshot reads do.
        self._fast = MultiplexedRedis(url)
        self._acquire_sha = hashlib.sha1(_ACQUIRE.encode()).hexdigest()

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    async def acquire_first(self, groups: Sequence[Sequence[Claim]], max_groups: int = 1, *,
                            once: str | None = None,
                            once_ttl_seconds: float = DEFAULT_MARKER_TTL_SECONDS) -> Acquired | list[int]:
        check_groups(groups, max_groups)
        keys: list[str] = [self._key("once", once)] if once is not None else []
        args: list[int] = [_ms(once_ttl_seconds) if once is not None else -1, max_groups, len(groups)]
        for group in groups:
            args.append(len(group))
            for claim in group:
                keys.append(self._key("lim", claim.key))
                args += [claim.limit, _ms(claim.ttl_seconds) if claim.ttl_seconds else 0, claim.amount]
        try:
            result = await self._fast.execute("EVALSHA", self._acquire_sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            result = await self._fast.execute("EVAL", _ACQUIRE, len(keys), *keys, *args)
        if result[0] == -1:
            return Acquired.DUPLICATE
        return [int(i) for i in result[1:]]

    async def used(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        values = await self.client.mget([self._key("lim", k) for k in keys])
        return [int(v) if v is not None else 0 for v in values]

    async def record(self, increments: Sequence[Increment] = (), events: Sequence[Event] = ()) -> None:
        if not increments and not events:
            return
        commands = [("HINCRBY", self._key("cnt", inc.key), inc.field, inc.amount) for inc in increments]
        for event in events:
            fields = [part for pair in event.fields.items() for part in pair]
            commands.append(("XADD", self._key("log", event.stream), "MAXLEN", "~", event.maxlen, "*", *fields))
        await self._fast.execute_all(commands)

    async def counters(self, keys: Sequence[str]) -> list[dict[str, int]]:
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._key("cnt", key))
        return [{f.decode(): int(v) for f, v in raw.items()} for raw in await pipe.execute()]

    async def read_events(self, stream: str, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        entries = await self.client.xrange(self._key("log", stream), count=count)
        return [(sid.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for sid, fields in entries]

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self._fast.close()
        await self.client.aclose()
        await self._pool.disconnect()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
