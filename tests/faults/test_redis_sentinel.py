"""Redis behind Sentinel (core/redis_sentinel.py): the cache finds the primary, and follows a failover.

A private primary, a replica of it and one Sentinel run on loopback ports of their own; the
cache is configured the way settings do it when REDIS_SENTINELS is set. After a forced failover
(SENTINEL FAILOVER), the same cache object writes to the promoted replica, and a web login
still works on it.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from tests.faults.conftest import WORKER_OFFSET, wait_port

pytestmark = [pytest.mark.slow]

PRIMARY, REPLICA, SENTINEL = 6393 + WORKER_OFFSET, 6394 + WORKER_OFFSET, 26393 + WORKER_OFFSET


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis_lib.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError("condition not met")


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[None]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    # --dir: a replica's full sync writes an RDB file even with --save "" (not into the checkout).
    common = [
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        str(tmp_path),
    ]
    procs = [_start([exe, "--port", str(PRIMARY), *common])]
    wait_port(PRIMARY, up=True)
    procs.append(_start([exe, "--port", str(REPLICA), "--replicaof", "127.0.0.1", str(PRIMARY), *common]))
    wait_port(REPLICA, up=True)
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {SENTINEL}\nbind 127.0.0.1\nprotected-mode no\ndir {tmp_path}\n"
        f"sentinel monitor bp-test 127.0.0.1 {PRIMARY} 1\n"
        f"sentinel known-replica bp-test 127.0.0.1 {REPLICA}\n"
        "sentinel down-after-milliseconds bp-test 1000\nsentinel failover-timeout bp-test 5000\n"
    )
    procs.append(_start([exe, str(conf), "--sentinel"]))
    wait_port(SENTINEL, up=True)
    sentinel = redis_lib.Redis(port=SENTINEL)
    # The Sentinel knows the replica before a failover can pick it.
    _wait(lambda: any(r["port"] == REPLICA for r in sentinel.sentinel_slaves("bp-test")))
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def cache_on_sentinel(settings: Any, sentinel_setup: None) -> Any:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://primary/0"
    caches["default"]["OPTIONS"] = {
        **caches["default"].get("OPTIONS", {}),
        "pool_class": "core.redis_sentinel.SentinelPool",
    }
    settings.REDIS_SENTINELS = f"127.0.0.1:{SENTINEL}"
    settings.REDIS_SENTINEL_SERVICE = "bp-test"
    settings.CACHES = caches
    from django.core.cache import cache

    return cache


def test_the_cache_follows_the_primary_through_a_failover(cache_on_sentinel: Any, user: Any, password: str) -> None:
    from django.test import Client

    cache = cache_on_sentinel
    cache.set("where", "before", timeout=60)
    assert cache.get("where") == "before"
    primary, replica = redis_lib.Redis(port=PRIMARY), redis_lib.Redis(port=REPLICA)
    assert primary.keys("*where")  # written to the primary
    _wait(lambda: bool(replica.keys("*where")))  # and replicated

    redis_lib.Redis(port=SENTINEL).execute_command("SENTINEL", "FAILOVER", "bp-test")
    _wait(lambda: replica.info("replication")["role"] == "master")
    _wait(
        lambda: (
            redis_lib.Redis(port=SENTINEL).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "bp-test")[1]
            == str(REPLICA).encode()
        )
    )

    def written_to_new_primary() -> bool:
        try:
            cache.set("where", "after", timeout=60)
        except redis_lib.RedisError:
            return False  # a pooled connection to the old primary fails once, then reconnects
        return cache.get("where") == "after" and any(
            b"after" in (replica.get(k) or b"") for k in replica.keys("*where")
        )

    _wait(written_to_new_primary)
    web = Client(REMOTE_ADDR="203.0.113.60")
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
