from __future__ import annotations

from celery import shared_task

from audit import chain, partitions


@shared_task
def audit_seal() -> int:
    """Beat task: seals settled audit events into hash-chain checkpoints."""
    return chain.seal_pending()


@shared_task
def audit_verify() -> bool:
    """Beat task: verifies the chain from the last verified checkpoint and records the result
    (shown on the reports page)."""
    return chain.verify().ok


@shared_task
def audit_verify_full() -> bool:
    """Beat task (daily): recomputes the whole chain, which also finds an old event altered after
    an incremental run had passed it."""
    return chain.verify(full=True).ok


@shared_task
def audit_partitions_ensure() -> list[str]:
    """Beat task (daily): creates the audit log's monthly partitions ahead of time (PostgreSQL)."""
    return partitions.ensure_partitions()
