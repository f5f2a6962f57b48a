"""core.cached's generations: a new one for several subjects at once, and values tagged with an older
one never accepted again."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from core import cached


def test_regenerating_several_keys_gives_each_a_new_generation_with_its_ttl() -> None:
    keys = [cached.generation_key("t-regen", n) for n in range(3)]
    cached.regenerate(*keys)
    first = cache.get_many(keys)
    assert set(first) == set(keys) and len(set(first.values())) == 3  # one new token per key
    cached.regenerate(*keys)
    second = cache.get_many(keys)
    assert all(second[key] != first[key] for key in keys)
    client = cache._cache.get_client(None, write=False)  # type: ignore[attr-defined]
    ttls = [client.ttl(cache.make_key(key)) for key in keys]
    assert all(cached.GENERATION_TTL - 5 <= ttl <= cached.GENERATION_TTL for ttl in ttls)


def test_a_value_tagged_before_invalidate_at_commit_is_refused_after_the_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    values = cached.Cached("t-list", group="t-group", ttl=60)
    for ident in (1, 2):
        _, generation = values.get(ident)
        values.put(ident, generation, f"old {ident}")
        assert values.get(ident)[0] == f"old {ident}"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cached.invalidate_at_commit("t-group", [1, 2, None, 2])
    assert [values.get(ident)[0] for ident in (1, 2)] == ["old 1", "old 2"]  # not before the commit
    assert len(callbacks) == 1  # one round trip for both subjects
    callbacks[0]()
    assert [values.get(ident)[0] for ident in (1, 2)] == [cached.MISSING, cached.MISSING]
