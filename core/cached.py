"""Read-through caches in Redis that an invalidation makes stale at once, on every node.

A cached value is stored with the *generation* of what it was read from: each subject (a user,
say) has a generation key holding a random token, and every change to the subject writes a new
token (`invalidate`). A reader fetches the value and the generation in one MGET and accepts the
value only when its tag equals the current generation; otherwise it reads PostgreSQL and stores
the answer tagged with the generation it saw *before* that read.

Why tags rather than a DELETE: a reader that read the old row just before a change committed,
and writes it back just after the change's DELETE, would otherwise keep the old row in the cache
until its TTL. With tags, the change writes a new generation twice (when it happens, and again
when its transaction commits), so any value read before the commit carries an older tag and is
never accepted. A value tagged with the committed generation was read after the commit.

Losing Redis loses values and generations together: everything is read from PostgreSQL again.
A generation key outlives every value it can tag (GENERATION_TTL > any value TTL), so an
expired generation can never make an old value valid again.

One round trip per request (`prefetch`): a bearer request needs the revocation entries of its
login, its user row, the throttle's counters and, on some views, values such as the /me factor
fields. Once the token is verified, the keys of all of them are known, so they are read (and the
counters incremented) in one pipelined round trip; the reads later in the same request (`read_many`,
`Cached.get`, `take_counter`) take their answer from it instead of asking Redis again. Each
prefetched answer is used at most once, and only within the request that fetched it
(`request_scope`, entered by core.middleware.RequestContextMiddleware): a prefetch is an earlier
read of the same keys, never a value another request saw. An increment that no check used (the
request was refused before its throttle ran) is taken back when the request ends.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.db import transaction

logger = logging.getLogger(__name__)

GENERATION_TTL = 24 * 60 * 60
_NONE = "-"  # the generation of a subject that never changed (or whose key expired)
MISSING = object()
# tag -> the Cached values keyed by a user's primary key that views with this tag read
# (a view's `prefetch_tags`): fetched with the rest of a bearer request's keys.
_TAGGED: dict[str, list[Cached]] = {}


class Cached:
    """Values of kind `name` per subject of `group` (e.g. Cached("me", group="mfa")).

    `prefetch_tags`: for values keyed by a user's primary key, the view tags (a view's
    `prefetch_tags` attribute) on which they are read with the request's other keys.
    """

    def __init__(self, name: str, *, group: str, ttl: int, prefetch_tags: Iterable[str] = ()) -> None:
        self.name = name
        self.group = group
        self.ttl = ttl
        for tag in prefetch_tags:
            _TAGGED.setdefault(tag, []).append(self)

    def keys(self, ident: Any) -> tuple[str, str]:
        """The value's key and its generation's key (what `get` reads, e.g. for `prefetch`)."""
        return f"c:{self.name}:{ident}", generation_key(self.group, ident)

    _keys = keys

    def get(self, ident: Any) -> tuple[Any, str]:
        """(the value or MISSING, the generation to tag a fresh value with)."""
        value_key, gen_key = self._keys(ident)
        found = read_many([value_key, gen_key])
        generation = str(found.get(gen_key) or _NONE)
        entry = found.get(value_key)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
            return entry[1], generation
        return MISSING, generation

    def put(self, ident: Any, generation: str, value: Any) -> None:
        cache.set(self._keys(ident)[0], (generation, value), timeout=self.ttl)


def generation_key(group: str, ident: Any) -> str:
    return f"gen:{group}:{ident}"


def regenerate(*keys: str) -> None:
    """A new generation under each key: one SET, or one command for several (a script on Redis,
    ~40 us of CPU less than a pipeline of SETs; set_many elsewhere)."""
    if len(keys) == 1:
        cache.set(keys[0], secrets.token_hex(8), timeout=GENERATION_TTL)
        return
    if not keys:
        return
    backend = _redis_backend()
    if backend is None:
        cache.set_many({key: secrets.token_hex(8) for key in keys}, timeout=GENERATION_TTL)
        return
    client = backend._cache.get_client(None, write=True)
    dumps = backend._cache._serializer.dumps
    _script(client, "_portal_regenerate_script", _REGENERATE_SCRIPT)(
        keys=[backend.make_key(key) for key in keys],
        args=[*(dumps(secrets.token_hex(8)) for _ in keys), GENERATION_TTL],
    )


def invalidate(group: str, ident: Any) -> None:
    """Every cached value of this subject is stale from now on, and again once the change commits.

    A Redis error on the first write propagates (core.failsafe: 503) and rolls the change back; one
    on the commit-time write is logged, as in `invalidate_at_commit`: the change has committed."""
    regenerate(generation_key(group, ident))
    if transaction.get_connection().in_atomic_block:
        invalidate_at_commit(group, [ident])


def invalidate_at_commit(group: str, idents: Iterable[Any]) -> None:
    """Every cached value of these subjects is stale once the change commits (at once outside a
    transaction): one round trip for all of them, for changes on a hot write path.

    The commit-time generation is the one that keeps stale values out: a value read before the
    commit is tagged with a generation older than it, so no reader accepts it afterwards. What
    `invalidate`'s early write adds is only that readers *during* the transaction miss too; they
    would read the uncommitted state's predecessor from PostgreSQL anyway.

    An unreachable Redis at commit does not fail the request: the change has committed, so a 503
    would tell the client something false (a payment that went through "failed"), and Django would
    skip the transaction's later on_commit callbacks. It is logged instead, and the values tagged
    with the old generation stay readable for at most their TTL: the same bound as after a Redis
    failover that lost the last generation. Outside a transaction the error propagates as any other
    (core.failsafe: 503), before anything has been done with the answer."""
    keys = [generation_key(group, ident) for ident in dict.fromkeys(idents) if ident is not None]
    if not keys:
        return
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(partial(regenerate_after_commit, group, keys))
    else:
        regenerate(*keys)


def regenerate_after_commit(group: str, keys: list[str]) -> None:
    """`regenerate` as an on_commit callback: an unreachable Redis is logged, not raised."""
    from core.failsafe import is_unavailable

    try:
        regenerate(*keys)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        logger.warning(
            "cache generations of %d %s subject(s) not renewed after a commit (%s): their cached values "
            "may lag for at most their TTL",
            len(keys),
            group,
            exc.__class__.__name__,
        )


# --- One round trip per request ---------------------------------------------------------------

_ABSENT = object()  # prefetched: not in Redis


class _Scope:
    __slots__ = ("counters", "notes", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}  # key -> value, or _ABSENT
        self.counters: dict[str, int] = {}  # key -> its value after the INCR
        self.notes: dict[str, Any] = {}


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("core_cached_scope", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """Prefetched answers live for one request (core.middleware.RequestContextMiddleware)."""
    scope = _Scope()
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        if scope.counters:
            _take_back(list(scope.counters))


def _take_back(keys: list[str]) -> None:
    """Undoes increments no check used: the request was refused before its throttle counted it."""
    try:
        client = cache._cache.get_client(None, write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.decr(cache.make_key(key))
        pipe.execute()
    except Exception:  # the count stays one higher (stricter), never lower
        logger.warning("could not take back %d prefetched increments", len(keys), exc_info=True)


def _redis_backend() -> Any:
    """The default cache when it is Django's Redis backend (its client has `get_client`), else None."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    client = getattr(backend, "_cache", None)
    return backend if client is not None and hasattr(client, "get_client") else None


# KEYS: the counters, then the keys to read; ARGV: the number of counters, then each one's ttl.
# Answers: each counter's value after its INCR, then (when there are keys) the MGET of the keys.
_PREFETCH_SCRIPT = """
local counters = tonumber(ARGV[1])
local out = {}
for i = 1, counters do
  out[i] = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
end
if #KEYS > counters then
  out[counters + 1] = redis.call('MGET', unpack(KEYS, counters + 1, #KEYS))
end
return out
"""


# KEYS: generation keys; ARGV: each one's new value (serialized as the cache would), then the TTL.
_REGENERATE_SCRIPT = """
local ttl = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i], 'EX', ttl)
end
return #KEYS
"""


def _script(client: Any, attribute: str, source: str) -> Any:
    """A script's redis-py Script object for this client, made once (each Script hashes its source
    and was 4 % of a bearer read's samples when built per request). EVALSHA, loaded on NOSCRIPT."""
    script = getattr(client, attribute, None)
    if script is None:
        script = client.register_script(source)
        setattr(client, attribute, script)
    return script


def prefetch(keys: Iterable[str], *, incr: Iterable[tuple[str, int]] = ()) -> bool:
    """Reads `keys` and increments each `incr` counter (key, ttl in seconds) in one round trip, for
    the reads of this request that follow. False (nothing done) outside a request or without Redis.
    Redis errors propagate, as the reads they replace would."""
    scope = _scope.get()
    backend = _redis_backend() if scope is not None else None
    if scope is None or backend is None:
        return False
    wanted = [key for key in dict.fromkeys(keys) if key not in scope.values]
    counters = [(key, ttl) for key, ttl in dict(incr).items() if key not in scope.counters]
    if not wanted and not counters:
        return True
    make_key = backend.make_key
    full = [make_key(key) for key in wanted]
    redis_client = backend._cache
    client = redis_client.get_client(None, write=True)
    if counters:
        # One command (a script): INCR + EXPIRE of each counter, then MGET of the keys. A pipeline
        # of the same commands is one round trip too, but costs redis-py ~40 us more CPU.
        answers = _script(client, "_portal_prefetch_script", _PREFETCH_SCRIPT)(
            keys=[*(make_key(key) for key, _ in counters), *full],
            args=[len(counters), *(ttl for _, ttl in counters)],
        )
        for index, (key, _) in enumerate(counters):
            scope.counters[key] = int(answers[index])
        raw = answers[len(counters)] if full else []
    else:
        raw = client.mget(full)
    loads = redis_client._serializer.loads
    values = scope.values
    for key, value in zip(wanted, raw, strict=True):
        values[key] = _ABSENT if value is None else loads(value)
    return True


def read_many(keys: list[str]) -> dict[str, Any]:
    """cache.get_many(keys), answered by this request's prefetch where it has the key (once)."""
    scope = _scope.get()
    if scope is None or not scope.values:
        return cache.get_many(keys)  # type: ignore[no-any-return]
    found: dict[str, Any] = {}
    missing = []
    for key in keys:
        value = scope.values.pop(key, MISSING)
        if value is MISSING:
            missing.append(key)
        elif value is not _ABSENT:
            found[key] = value
    if missing:
        found.update(cache.get_many(missing))
    return found


def take_counter(key: str) -> int | None:
    """The prefetched INCR of this counter (it is then this request's to keep), or None."""
    scope = _scope.get()
    return None if scope is None else scope.counters.pop(key, None)


def note(name: str, value: Any) -> None:
    """Keeps a fact for later in this request (e.g. the time a prefetched counter was counted)."""
    scope = _scope.get()
    if scope is not None:
        scope.notes[name] = value


def take_note(name: str) -> Any:
    scope = _scope.get()
    return None if scope is None else scope.notes.pop(name, None)


def tagged_keys(tags: Iterable[str], user_pk: Any) -> list[str]:
    """The keys of the values registered under these view tags, for this user's primary key."""
    out: list[str] = []
    for tag in tags:
        for cached in _TAGGED.get(tag, ()):
            out.extend(cached.keys(user_pk))
    return out
