"""Reads of the audit log: a user's activity, the reports' filters, chart series, suspicious activity."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, DecimalField, Max, Min, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.utils import timezone

from audit.events import EventType, Outcome
from audit.forms import EventFilters, user_lookup_value
from audit.models import AuditCheckpoint, AuditEvent, ChainVerification

FAILED = (Outcome.FAILURE, Outcome.DENIED)


def events_for_user(*, user: Any, limit: int = 20) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(user=user).order_by("-occurred_at", "-id")[:limit]


def filter_events(
    qs: QuerySet[AuditEvent] | None = None, *, filters: EventFilters, include_type: bool = True
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all() if qs is None else qs
    if filters.since:
        qs = qs.filter(occurred_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(occurred_at__lt=filters.until)
    if include_type and filters.type:
        qs = qs.filter(type__startswith=filters.type) if filters.type.endswith(".") else qs.filter(type=filters.type)
    if filters.user:
        kind, value = user_lookup_value(filters.user)
        lookup = {"user__public_id": value} if kind == "public_id" else {"user__email__iexact": value}
        qs = qs.filter(**lookup)
    if filters.ip:
        qs = qs.filter(ip=filters.ip)
    if filters.country:
        qs = qs.filter(country=filters.country)
    if filters.outcome:
        qs = qs.filter(outcome=filters.outcome)
    if filters.client:
        qs = qs.filter(details__client_id=filters.client)
    return qs


# --- Chart series --------------------------------------------------------------------------------


@dataclass
class TimeSeries:
    labels: list[datetime]
    series: list[tuple[str, list[int]]]
    bucket: str  # "hour" or "day"

    @property
    def total(self) -> int:
        return sum(sum(values) for _, values in self.series)


def _range(filters: EventFilters) -> tuple[datetime, datetime]:
    until = filters.until or timezone.now()
    since = filters.since or until - timedelta(hours=settings.REPORTS_DEFAULT_HOURS)
    return since, until


def _buckets(since: datetime, until: datetime) -> tuple[str, list[datetime]]:
    span = until - since
    if span <= timedelta(hours=72):
        step, start = timedelta(hours=1), since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bucket = "hour"
    else:
        step = timedelta(days=1)
        start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        bucket = "day"
    labels: list[datetime] = []
    current = start
    while current < until and len(labels) < 400:
        labels.append(current)
        current += step
    return bucket, labels


def time_series(*, filters: EventFilters, series: Iterable[tuple[str, Q]]) -> TimeSeries:
    """Counts per hour (or per day for long ranges) of each named condition, zeros filled in."""
    since, until = _range(filters)
    bucket, labels = _buckets(since, until)
    trunc = TruncHour if bucket == "hour" else TruncDay
    base = filter_events(filters=filters, include_type=False).filter(occurred_at__gte=since, occurred_at__lt=until)
    index = {label: i for i, label in enumerate(labels)}
    result: list[tuple[str, list[int]]] = []
    for name, condition in series:
        values = [0] * len(labels)
        rows = (
            base.filter(condition)
            .annotate(bucket=trunc("occurred_at", tzinfo=UTC))
            .values("bucket")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            i = index.get(row["bucket"])
            if i is not None:
                values[i] = row["n"]
        result.append((name, values))
    return TimeSeries(labels=labels, series=result, bucket=bucket)


def _type(value: str) -> Q:
    return Q(type=value)


def charts_data(*, filters: EventFilters) -> dict[str, Any]:
    """The reports' charts. Event types of other areas are matched by string, so a type nobody
    writes yet simply shows nothing."""
    failed_logins = time_series(
        filters=filters,
        series=[("Failed logins", _type(EventType.LOGIN_FAILED)), ("Lockouts", _type(EventType.LOCKOUT))],
    )
    mfa_failures = time_series(
        filters=filters, series=[("MFA failures", Q(type__startswith="mfa.", outcome__in=FAILED))]
    )
    step_ups = time_series(
        filters=filters,
        series=[
            ("Step-ups passed", Q(type__contains="step_up", type__endswith="passed")),
            ("Step-ups failed", Q(type__contains="step_up", type__endswith="failed")),
        ],
    )
    new_devices = time_series(filters=filters, series=[("New-device logins", Q(type__contains="new_device"))])
    since, until = _range(filters)
    countries = list(
        filter_events(filters=filters, include_type=False)
        .filter(occurred_at__gte=since, occurred_at__lt=until, type=EventType.LOGIN_SUCCEEDED)
        .values("country")
        .annotate(n=Count("id"))
        .order_by("-n", "country")[:12]
    )
    return {
        "failed_logins": failed_logins,
        "mfa_failures": mfa_failures,
        "step_ups": step_ups,
        "new_devices": new_devices,
        "countries": [(row["country"] or "unknown", row["n"]) for row in countries],
    }


# --- Suspicious activity -------------------------------------------------------------------------


def suspicious_activity(*, filters: EventFilters, limit: int = 50) -> dict[str, Any]:
    since, until = _range(filters)
    base = (
        filter_events(filters=filters, include_type=False)
        .filter(occurred_at__gte=since, occurred_at__lt=until)
        .select_related("user")
        .order_by("-occurred_at", "-id")
    )
    threshold = settings.REPORTS_IP_MANY_ACCOUNTS
    failing_ips = list(
        base.filter(type=EventType.LOGIN_FAILED)
        .exclude(ip__isnull=True)
        .values("ip")
        .annotate(
            accounts=Count("user", distinct=True),
            failures=Count("id"),
            unknown=Count("id", filter=Q(user__isnull=True)),
            first=Min("occurred_at"),
            last=Max("occurred_at"),
        )
        .filter(Q(accounts__gte=threshold) | Q(unknown__gte=threshold))
        .order_by("-accounts", "-failures")[:limit]
    )
    return {
        "impossible_travel": list(base.filter(type__contains="impossible_travel")[:limit]),
        "token_reuse": list(base.filter(type__contains="reuse")[:limit]),
        "lockouts": list(base.filter(type=EventType.LOCKOUT)[:limit]),
        "failing_ips": failing_ips,
        "ip_flagged": list(base.filter(type__contains="failing_many_accounts")[:limit]),
        "threshold": threshold,
    }


# --- The chain ---------------------------------------------------------------------------------------


def chain_status() -> dict[str, Any]:
    latest = ChainVerification.objects.order_by("-ran_at", "-id").first()
    last_ok = ChainVerification.objects.filter(ok=True).order_by("-ran_at", "-id").first()
    last_checkpoint = AuditCheckpoint.objects.order_by("-seq").only("seq", "created_at", "last_event_id").first()
    return {"latest": latest, "last_ok": last_ok, "last_checkpoint": last_checkpoint}


# --- CSV export ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    ("occurred_at", "occurred_at"),
    ("event_id", "public_id"),
    ("type", "type"),
    ("outcome", "outcome"),
    ("user_id", "user__public_id"),
    ("user_email", "user__email"),
    ("actor_id", "actor__public_id"),
    ("actor_email", "actor__email"),
    ("ip", "ip"),
    ("country", "country"),
    ("ua_family", "ua_family"),
    ("reason", "reason"),
    ("request_id", "request_id"),
    ("details", "details"),
)


def export_rows(*, filters: EventFilters, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Rows in time order, read in keyset pages of `chunk_size`: each page is the next rows after
    the (occurred_at, id) of the last one sent, a short query on the occurred_at index of the
    partitions it touches. Memory stays flat whatever the range, and no cursor is held open for
    the whole download, so the export streams the same way through PgBouncer in transaction mode
    (DISABLE_SERVER_SIDE_CURSORS, where .iterator() would fetch the whole result at once)."""
    base = filter_events(filters=filters)
    columns = [field for _, field in CSV_COLUMNS]
    after: tuple[datetime, int] | None = None
    while True:
        qs = base
        if after is not None:
            moment, last_id = after
            qs = qs.filter(occurred_at__gte=moment).filter(Q(occurred_at__gt=moment) | Q(id__gt=last_id))
        page = list(qs.order_by("occurred_at", "id").values_list("occurred_at", "id", *columns)[:chunk_size])
        for row in page:
            yield row[2:]
        if len(page) < chunk_size:
            return
        after = (page[-1][0], page[-1][1])


# --- Strong customer authentication (issue 16): decisions, exemptions, fraud rate per band ---------

SCA_DECIDED = "payment.sca_decided"
DECISION_LABELS = {
    "sca_required": "SCA applied",
    "not_required": "Below the threshold (default profile)",
    "own_accounts": "Exempt: own accounts",
    "trusted_beneficiary": "Exempt: trusted beneficiary",
    "recurring": "Exempt: standing order",
    "low_value": "Exempt: low value",
    "transaction_risk_analysis": "Exempt: transaction risk analysis",
}
NOT_EXEMPTIONS = ("sca_required", "not_required")


def _details_amount() -> Cast:
    return Cast(KeyTextTransform("amount", "details"), DecimalField(max_digits=18, decimal_places=2))


@dataclass(frozen=True)
class LoggedFraudRate:
    """The fraud rate of RTS Art. 19 recomputed from the audit log: the value of payments completed
    in the window and reported as fraud, over the value of every payment completed in it."""

    since: datetime
    until: datetime
    total: Decimal
    fraud: Decimal

    @property
    def percent(self) -> Decimal:
        if self.total <= 0:
            return Decimal("0")
        return (self.fraud / self.total * 100).quantize(Decimal("0.0001"))


def fraud_rate_from_log(*, until: datetime) -> LoggedFraudRate:
    since = until - timedelta(days=settings.SCA_FRAUD_WINDOW_DAYS)
    completed = AuditEvent.objects.filter(
        type="payment.completed", occurred_at__gte=since, occurred_at__lte=until, details__currency="EUR"
    ).annotate(payment_id=KeyTextTransform("payment", "details"), value=_details_amount())
    total = completed.aggregate(total=Sum("value"))["total"] or Decimal("0")
    # A fraud report comes after the completion it names, so no report before `since` can count:
    # the bound keeps the scan to the window's partitions (audit_payment_completed_id_idx finds
    # each named payment among the completed ones).
    fraud = AuditEvent.objects.filter(
        type="payment.fraud_reported", occurred_at__gte=since, occurred_at__lte=until
    ).annotate(payment_id=KeyTextTransform("payment", "details"), value=_details_amount()).filter(
        payment_id__in=completed.values("payment_id")
    ).aggregate(total=Sum("value"))["total"] or Decimal("0")
    return LoggedFraudRate(since=since, until=until, total=Decimal(total), fraud=Decimal(fraud))


def sca_report(*, filters: EventFilters, recent: int = 50) -> dict[str, Any]:
    """For the period: payments by SCA decision (and the RTS article each relied on), the fraud rate
    per band against the Annex reference at the end of the period, when the TRA exemption stopped,
    and the latest exemption decisions, each with its audit row's id."""
    since, until = _range(filters)
    decisions = filter_events(filters=filters, include_type=False).filter(
        type=SCA_DECIDED, occurred_at__gte=since, occurred_at__lt=until
    )
    grouped = (
        decisions.annotate(article=KeyTextTransform("article", "details"))
        .values("reason", "article")
        .annotate(count=Count("id"), amount=Sum(_details_amount()))
        .order_by("-count", "reason", "article")
    )
    rows = [
        {
            "reason": row["reason"],
            "label": DECISION_LABELS.get(row["reason"], row["reason"]),
            "article": row["article"] or "",
            "count": row["count"],
            "amount": row["amount"] or Decimal("0"),
            "exempt": row["reason"] not in NOT_EXEMPTIONS,
        }
        for row in grouped
    ]
    rate = fraud_rate_from_log(until=until)
    bands = [
        {
            "threshold": etv,
            "reference_percent": reference,
            "measured_percent": rate.percent,
            "open": rate.percent <= reference,
        }
        for etv, reference in sorted(settings.SCA_TRA_BANDS)
    ]
    suspended = list(
        AuditEvent.objects.filter(type="payment.tra_suspended", occurred_at__gte=since, occurred_at__lt=until).order_by(
            "-occurred_at"
        )[:20]
    )
    latest = list(
        decisions.exclude(reason__in=NOT_EXEMPTIONS).select_related("user").order_by("-occurred_at", "-id")[:recent]
    )
    return {
        "decisions": rows,
        "total": sum(row["count"] for row in rows),
        "exempt": sum(row["count"] for row in rows if row["exempt"]),
        "rate": rate,
        "bands": bands,
        "suspended": suspended,
        "latest": latest,
        "profile": settings.SECURITY_PROFILE,
    }
