"""Options for the serving side's redis-py clients: one immediate retry when the server has closed a
pooled connection.

Redis closes connections when it restarts or when they sit idle past its ``timeout`` setting; the next
command on such a connection fails with ``ConnectionError`` although the server answers a new one.
Only that error is retried: a timeout means a server that does not answer, and retrying it would double
every wait.
"""

from __future__ import annotations

import redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def reconnect_once() -> dict:
    """Keyword arguments for ``redis.asyncio.Redis.from_url`` or a connection pool's ``from_url``."""
    return {"retry": Retry(NoBackoff(), 1), "retry_on_error": [redis.ConnectionError]}
