"""The security reports read from a replica when one is configured (core/db_router.py), nothing else does.

The "replica" here is a second connection to the test database (what a streaming replica of
it would hold), configured the way settings do it when DATABASE_REPLICA_URL is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from core.db_router import ReportsReplicaRouter, reports_replica

ROUTED: list[tuple[str, str | None]] = []


class SpyRouter(ReportsReplicaRouter):
    """The real router, recording where each read went."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        alias = super().db_for_read(model, **hints)
        ROUTED.append((model._meta.label, alias))
        return alias


@pytest.fixture
def replica(settings: Any) -> Iterator[str]:
    # The replica alias is the test database itself (what a streaming replica of it would hold);
    # which reads the router sends there is what is checked.
    settings.REPORTS_REPLICA_ALIAS = "default"
    settings.DATABASE_ROUTERS = ["tests.audit.test_reports_replica.SpyRouter"]
    ROUTED.clear()
    yield "default"
    ROUTED.clear()


def test_off_by_default(settings: Any) -> None:
    assert settings.REPORTS_REPLICA_ALIAS == "" and settings.DATABASE_ROUTERS == []
    router = ReportsReplicaRouter()
    with reports_replica():
        assert router.db_for_read(AuditEvent) is None


@pytest.mark.django_db(transaction=True)
def test_only_report_reads_outside_a_transaction_go_to_the_replica(replica: str) -> None:
    router = ReportsReplicaRouter()
    assert router.db_for_read(AuditEvent) is None  # not a report
    with reports_replica():
        assert router.db_for_read(AuditEvent) == replica
        assert router.db_for_write(AuditEvent) == "default"
        with transaction.atomic():  # a transaction on the primary reads its own writes
            assert router.db_for_read(AuditEvent) is None
    assert router.db_for_read(AuditEvent) is None
    assert router.allow_migrate("default", "audit") and not router.allow_migrate("replica", "audit")


@pytest.mark.django_db(transaction=True)
def test_the_reports_page_reads_from_the_replica(
    replica: str, make_role_user: Callable[..., User], role_client: Callable[[User], Client]
) -> None:
    analyst = make_role_user("security")
    client = role_client(analyst)
    ROUTED.clear()
    assert client.get("/reports/").status_code == 200
    to_replica = {label for label, alias in ROUTED if alias == replica}
    assert "audit.AuditEvent" in to_replica
    # The login and permission checks (before the view) stay on the primary.
    assert ("accounts.User", None) in ROUTED and "accounts.User" not in to_replica
    ROUTED.clear()
    assert client.get("/security/").status_code == 200  # not a report: nothing goes to the replica
    assert all(alias is None for _label, alias in ROUTED)
