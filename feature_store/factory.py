"""Pick an online store from a URL: redis://, rediss:// and unix:// mean Redis, sqlite:/// a file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from feature_store.base import AsyncOnlineStoreReader, OnlineStore

DEFAULT_URL = "sqlite:///var/feature_store.sqlite"
REDIS_SCHEMES = ("redis", "rediss", "unix")
ACCEPTED = "redis://, rediss://, unix:// or sqlite:///path/to/file.sqlite"


def store_backend(url: str | None) -> tuple[str, str | Path]:
    """("redis", url) or ("sqlite", path); a relative SQLite path is relative to the working directory."""
    url = url or DEFAULT_URL
    scheme = urlsplit(url).scheme.lower()
    if scheme in REDIS_SCHEMES:
        return "redis", url
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        # sqlite:///var/x.sqlite is relative, sqlite:////tmp/x.sqlite absolute (SQLAlchemy's convention).
        return "sqlite", Path(url[len("sqlite:///") :])
    raise ValueError(f"unsupported online store URL {url!r}: expected {ACCEPTED}")


def open_store(url: str | None, *, prefix: str = "recsys", **options) -> OnlineStore:
    """Open the store a URL names; ``options`` go to the backend's constructor (e.g. ``retain``)."""
    kind, target = store_backend(url)
    if kind == "redis":
        from feature_store.redis_store import RedisOnlineStore

        return RedisOnlineStore(str(target), prefix=prefix, **options)
    from feature_store.sqlite_store import SqliteOnlineStore

    return SqliteOnlineStore(target, prefix=prefix, **options)


def open_async_reader(url: str | None, *, prefix: str = "recsys") -> AsyncOnlineStoreReader:
    kind, target = store_backend(url)
    if kind == "redis":
        from feature_store.redis_store import AsyncRedisReader

        return AsyncRedisReader(str(target), prefix=prefix)
    from feature_store.sqlite_store import AsyncSqliteReader

    return AsyncSqliteReader(target, prefix=prefix)
