from __future__ import annotations

from celery import shared_task

from audit import chain


@shared_task
def audit_seal() -> int:
    """Beat task: seals settled audit events into hash-chain checkpoints."""
    return chain.seal_pending()


@shared_task
def audit_verify() -> bool:
    """Beat task: recomputes the chain and records the result (shown on the reports page)."""
    return chain.verify().ok
