"""Django's Redis cache backend, with one redis-py client per connection pool.

django.core.cache.backends.redis builds a new `redis.Redis` object for every cache call, and
its constructor copies redis-py's table of response callbacks: measured under `make bench`
that costs about as much CPU as the command's round trip to Redis, on every rate-limit check,
revocation lookup and session read. A `redis.Redis` client is thread-safe (it checks a
connection out of the pool per command) and the pools are already kept per process, so one
client per pool is enough. Everything else is Django's backend unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # Django's private helpers are not in its type stubs
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(write)
            client = self._clients.setdefault(index, django_client._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
