"""Which backend a URL picks, and how a wrong URL or option fails."""

from __future__ import annotations

import asyncio

import pytest

from feature_store import open_async_reader, open_store
from feature_store.redis_store import AsyncRedisReader, RedisOnlineStore
from feature_store.sqlite_store import AsyncSqliteReader, SqliteOnlineStore


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://cache.example:6380/1", "unix:///tmp/r.sock"])
def test_redis_urls_open_redis_without_connecting(url):
    store = open_store(url, prefix="shop", retain=4)
    assert isinstance(store, RedisOnlineStore)
    assert (store.url, store.keys.prefix, store.retain) == (url, "shop", 4)
    assert isinstance(open_async_reader(url), AsyncRedisReader)


def test_sqlite_url_relative_to_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/online.sqlite", retain=2)
    assert isinstance(store, SqliteOnlineStore)
    assert store.path.resolve() == (tmp_path / "data" / "online.sqlite").resolve()
    store.close()


def test_sqlite_url_with_absolute_path(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/abs.sqlite")
    assert store.path == tmp_path / "abs.sqlite"
    store.close()


def test_no_url_means_the_default_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store(None)
    with store.begin_snapshot() as writer:
        writer.write("rec", ["a"], [b"1"])
        writer.commit()
    assert (tmp_path / "var" / "feature_store.sqlite").exists()
    store.close()

    async def read():
        reader = open_async_reader(None)
        try:
            assert isinstance(reader, AsyncSqliteReader)
            return await reader.get(await reader.current_snapshot_id(), "rec", "a")
        finally:
            await reader.close()

    assert asyncio.run(read()) == b"1"


@pytest.mark.parametrize("url", ["postgres://db/x", "sqlite://", "memory", "http://localhost:6379"])
def test_unknown_url_names_itself_and_the_accepted_schemes(url):
    with pytest.raises(ValueError, match="redis://.*sqlite:///") as info:
        open_store(url)
    assert repr(url) in str(info.value)
    with pytest.raises(ValueError):
        open_async_reader(url)


def test_misspelled_option_is_not_swallowed(tmp_path):
    with pytest.raises(TypeError, match="retian"):
        open_store(f"sqlite:///{tmp_path}/x.sqlite", retian=2)
    with pytest.raises(TypeError, match="n_buckets"):
        open_store(f"sqlite:///{tmp_path}/x.sqlite", n_buckets=8)


@pytest.mark.parametrize("prefix", ["", "a:b", "has space"])
def test_prefix_must_not_break_the_key_scheme(prefix, tmp_path):
    with pytest.raises(ValueError, match="prefix"):
        open_store("redis://localhost:6379/0", prefix=prefix)
    with pytest.raises(ValueError, match="prefix"):
        open_store(f"sqlite:///{tmp_path}/x.sqlite", prefix=prefix)
