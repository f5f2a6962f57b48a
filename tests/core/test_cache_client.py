"""core.cache.RedisCache: Django's Redis cache, one redis-py client per connection pool."""

from __future__ import annotations

import threading

from django.core.cache import cache, caches

from core.cache import RedisCache


def test_the_default_cache_is_the_reusing_backend_and_works() -> None:
    assert isinstance(caches["default"], RedisCache)
    cache.set("bench-cache-key", {"a": 1}, timeout=30)
    assert cache.get("bench-cache-key") == {"a": 1}
    assert cache.add("bench-cache-key", 2) is False
    assert cache.get_many(["bench-cache-key", "absent"]) == {"bench-cache-key": {"a": 1}}
    cache.delete("bench-cache-key")
    assert cache.get("bench-cache-key") is None


def test_one_client_per_pool_is_reused_across_calls() -> None:
    client = caches["default"]._cache  # type: ignore[attr-defined]
    assert client.get_client(write=True) is client.get_client(write=True)
    assert client.get_client(write=False) is client.get_client(write=False)


def test_the_shared_client_serves_threads_at_once() -> None:
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    errors: list[Exception] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                key = cache.make_key(f"bench-thread-{n}-{i}")
                client.set(key, str(i), ex=30)
                assert client.get(key) == str(i).encode()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
