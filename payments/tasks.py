"""Celery tasks of the payments app."""

from __future__ import annotations

from celery import shared_task

from payments import services


@shared_task(name="payments.tasks.payments_expire_pending")
def payments_expire_pending() -> int:
    """Beat (every minute): pending payments whose step-up window ended become expired, audited;
    idempotency keys older than PAYMENT_IDEMPOTENCY_KEY_HOURS are forgotten."""
    expired = services.payments_expire_pending()
    services.idempotency_prune()
    return expired


@shared_task(name="payments.tasks.standing_orders_run")
def standing_orders_run() -> int:
    """Beat (every 15 minutes): due standing orders run once each (RTS Art. 14: later executions
    of an authorised series need no SCA; refusals are audited and the order moves on)."""
    return services.standing_orders_run()
