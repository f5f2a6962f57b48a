"""Strong customer authentication (SCA) for payments: the one place that decides whether a payment
needs it, or which exemption of the RTS (Delegated Regulation (EU) 2018/389) lifts it.

`decide()` runs an ordered list of rules once per payment, under the customer's `ScaState` row
lock (so concurrent payments of one customer are decided one after the other). The first rule
that answers wins; each answer names the article it relied on, and the caller audits it
(`payment.sca_decided`). Any exception while evaluating means SCA (fail-safe).

Rules, in order (`SECURITY_PROFILE=default` / `psd2`):

1. Art. 14 recurring: a later execution of a standing order whose terms are those the customer
   authorised with SCA (both profiles).
2. Art. 15 own accounts: payee account held by the same customer at this bank (both profiles).
3. Threshold and splitting: the amount, plus what went out without SCA since the customer's last
   SCA within SCA_CUMULATIVE_WINDOW_HOURS, above STEP_UP_THRESHOLD: SCA (both profiles).
4. Art. 13 trusted beneficiary (both profiles; below the threshold by rule 3).
5. default: unusual payments (transaction monitoring, Art. 2) need SCA; the rest do not.
   psd2: a high risk score (Art. 2) needs SCA; then Art. 16 low value, Art. 18 transaction risk
   analysis; anything else needs SCA (PSD2 Art. 97(1)(b)).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from accounts.models import User
from payments.models import BankAccount, Beneficiary, Payment, ScaState, StandingOrder

logger = logging.getLogger(__name__)

OWN_ACCOUNTS = "own_accounts"
TRUSTED_BENEFICIARY = "trusted_beneficiary"
RECURRING = "recurring"
LOW_VALUE = "low_value"
TRA = "transaction_risk_analysis"
EXEMPTIONS = (OWN_ACCOUNTS, TRUSTED_BENEFICIARY, RECURRING, LOW_VALUE, TRA)
ARTICLES = {
    TRUSTED_BENEFICIARY: "RTS Art. 13",
    RECURRING: "RTS Art. 14",
    OWN_ACCOUNTS: "RTS Art. 15",
    LOW_VALUE: "RTS Art. 16",
    TRA: "RTS Art. 18",
}
# Payments that move money out of the customer's reach without SCA: they count toward the
# threshold (splitting) and the Art. 16 counters. Own-account transfers and authorised series do not.
NOT_COUNTED = (OWN_ACCOUNTS, RECURRING)
EUR = "EUR"


def psd2() -> bool:
    return str(settings.SECURITY_PROFILE) == "psd2"


@dataclass(frozen=True)
class ScaDecision:
    """Whether SCA applies, or the exemption (and RTS article) that lifted it."""

    required: bool
    exemption: str | None
    article: str
    reasons: tuple[str, ...] = ()
    risk_score: int | None = None
    risk_factors: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        """Counts toward the threshold and the low-value counters (paid out without SCA)."""
        return not self.required and self.exemption not in NOT_COUNTED

    def as_details(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "exemption": self.exemption,
            "article": self.article,
            "reasons": list(self.reasons),
            "risk_score": self.risk_score,
            "risk_factors": list(self.risk_factors),
            "rules": list(self.trace),
            "profile": str(settings.SECURITY_PROFILE),
        }


@dataclass
class PaymentFacts:
    """What the rules look at. `state` is the customer's locked ScaState row.

    `load()` reads, in one statement after the locks, everything the rules and the daily limit
    need from the payment history (PostgreSQL); without it each fact is queried when a rule
    first asks for it. Either way a fact is read once per payment."""

    user: User
    account: BankAccount
    amount: Decimal
    currency: str
    payee_iban: str
    payee_account: BankAccount | None
    beneficiary: Beneficiary | None
    state: ScaState
    device: str = "unknown"  # "known" | "new" | "unknown"
    country: str = ""
    standing_order: StandingOrder | None = None
    now: datetime = field(default_factory=timezone.now)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return "loaded" in self._cache

    def window_since(self) -> datetime:
        return window_since(self.state, self.now)

    def day_start(self) -> datetime:
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0)

    def load(self) -> None:
        """One round trip for the facts (PostgreSQL; elsewhere they stay lazy)."""
        if connection.vendor != "postgresql" or self.loaded:
            return
        _load_facts(self)

    def day_total(self) -> Decimal:
        """Today's completed and pending payments out of the account (the daily limit)."""
        if "day_total" not in self._cache:
            total = Payment.objects.filter(
                from_account=self.account,
                status__in=[Payment.Status.COMPLETED, Payment.Status.PENDING_STEP_UP],
                created_at__gte=self.day_start(),
            ).aggregate(total=Sum("amount"))["total"]
            self._cache["day_total"] = Decimal(total or 0)
        return Decimal(self._cache["day_total"])

    def window_total(self) -> Decimal:
        """Paid out without SCA since the last SCA, within the window (same currency)."""
        if "window_total" not in self._cache:
            total = (
                Payment.objects.filter(
                    owner=self.user,
                    sca_required=False,
                    status=Payment.Status.COMPLETED,
                    currency=self.currency,
                    created_at__gte=self.window_since(),
                )
                .exclude(sca_exemption__in=NOT_COUNTED)
                .aggregate(total=Sum("amount"))["total"]
            )
            self._cache["window_total"] = Decimal(total or 0)
        return Decimal(self._cache["window_total"])

    def recent_amounts(self) -> list[Decimal]:
        """The account's last 20 completed payments (the typical amount)."""
        if "recent" not in self._cache:
            self._cache["recent"] = list(
                Payment.objects.filter(from_account=self.account, status=Payment.Status.COMPLETED)
                .order_by("-created_at")
                .values_list("amount", flat=True)[:20]
            )
        return list(self._cache["recent"])

    def paid_before(self) -> bool:
        if "paid_before" not in self._cache:
            self._cache["paid_before"] = Payment.objects.filter(
                owner=self.user, payee_iban=self.payee_iban, status=Payment.Status.COMPLETED
            ).exists()
        return bool(self._cache["paid_before"])

    def saved_payee(self) -> Beneficiary | None:
        """The customer's saved beneficiary with this IBAN (the one given if it has it, else looked up)."""
        if self.beneficiary is not None and self.beneficiary.iban == self.payee_iban:
            return self.beneficiary
        if "saved_payee" not in self._cache:
            self._cache["saved_payee"] = Beneficiary.objects.filter(owner=self.user, iban=self.payee_iban).first()
        found = self._cache["saved_payee"]
        return found if isinstance(found, Beneficiary) else None

    def completed_count(self) -> int:
        """The customer's completed payments, counted up to PAYMENT_UNUSUAL_MIN_HISTORY (the risk
        factor asks only whether the history is shorter): a few index entries, however long it is."""
        if "history" not in self._cache:
            cap = int(settings.PAYMENT_UNUSUAL_MIN_HISTORY)
            self._cache["history"] = Payment.objects.filter(owner=self.user, status=Payment.Status.COMPLETED)[
                :cap
            ].count()
        return int(self._cache["history"])

    def recent_payee_ibans(self) -> list[str]:
        """The payee IBANs of the customer's 50 latest completed payments."""
        if "payee_ibans" not in self._cache:
            self._cache["payee_ibans"] = list(
                Payment.objects.filter(owner=self.user, status=Payment.Status.COMPLETED)
                .order_by("-created_at")
                .values_list("payee_iban", flat=True)[:50]
            )
        return list(self._cache["payee_ibans"])

    def last_hour_count(self) -> int:
        if "velocity" not in self._cache:
            hour_ago = self.now - timedelta(hours=1)
            self._cache["velocity"] = Payment.objects.filter(owner=self.user, created_at__gte=hour_ago).count()
        return int(self._cache["velocity"])

    def risk(self) -> tuple[int, tuple[str, ...]]:
        if "risk" not in self._cache:
            self._cache["risk"] = risk_assessment(self)
        score, factors = self._cache["risk"]
        return int(score), tuple(factors)


_BENEFICIARY_COLUMNS: tuple[str, ...] = ()
# Identifiers ({pay}, {ben}) are filled from model metadata; every value is a parameter.
_FACTS = (
    '(SELECT COALESCE(SUM("amount"), 0) FROM "{pay}" WHERE "from_account_id" = %s '
    'AND "status" IN (%s, %s) AND "created_at" >= %s), '
    '(SELECT COALESCE(SUM("amount"), 0) FROM "{pay}" WHERE "owner_id" = %s AND NOT "sca_required" '
    'AND "status" = %s AND "currency" = %s AND "created_at" >= %s AND NOT ("sca_exemption" IN (%s, %s))), '
    'ARRAY(SELECT "amount" FROM "{pay}" WHERE "from_account_id" = %s AND "status" = %s '
    'ORDER BY "created_at" DESC LIMIT 20), '
    'EXISTS(SELECT 1 FROM "{pay}" WHERE "owner_id" = %s AND "payee_iban" = %s AND "status" = %s)'
)
_FACTS_PSD2 = (
    ', (SELECT count(*) FROM (SELECT 1 FROM "{pay}" WHERE "owner_id" = %s AND "status" = %s LIMIT %s) AS h), '
    'ARRAY(SELECT "payee_iban" FROM "{pay}" WHERE "owner_id" = %s AND "status" = %s '
    'ORDER BY "created_at" DESC LIMIT 50), '
    '(SELECT count(*) FROM "{pay}" WHERE "owner_id" = %s AND "created_at" >= %s)'
)


@dataclass(frozen=True)
class FactsQuery:
    """The facts as a fragment of a SELECT: `columns` (scalar subqueries, then the saved payee's
    columns when `join` is set) and `join` (a LEFT JOIN of the saved payee); `parse` turns the
    fragment's values of a row into the facts' cache."""

    columns: str
    join: str
    column_params: list[Any]
    join_params: list[Any]
    strict: bool

    def parse(self, values: Sequence[Any]) -> dict[str, Any]:
        cache: dict[str, Any] = {
            "day_total": Decimal(values[0]),
            "window_total": Decimal(values[1]),
            "recent": [Decimal(a) for a in values[2]],
            "paid_before": bool(values[3]),
        }
        rest = list(values[4:])
        if self.strict:
            cache["history"], cache["payee_ibans"], cache["velocity"] = int(rest[0]), list(rest[1]), int(rest[2])
            rest = rest[3:]
        if self.join:
            names = list(_beneficiary_columns())
            cache["saved_payee"] = Beneficiary.from_db(connection.alias, names, rest) if rest[0] else None
        cache["loaded"] = True
        return cache


def _beneficiary_columns() -> tuple[str, ...]:
    global _BENEFICIARY_COLUMNS
    if not _BENEFICIARY_COLUMNS:
        _BENEFICIARY_COLUMNS = tuple(f.attname for f in Beneficiary._meta.concrete_fields)
    return _BENEFICIARY_COLUMNS


def window_since(state: ScaState, now: datetime) -> datetime:
    """Where the splitting window starts: SCA_CUMULATIVE_WINDOW_HOURS ago, or the last SCA if later."""
    since = now - timedelta(hours=settings.SCA_CUMULATIVE_WINDOW_HOURS)
    if state.last_sca_at and state.last_sca_at > since:
        since = state.last_sca_at
    return since


def facts_query(
    *,
    user_id: object,
    account_id: object,
    currency: str,
    payee_iban: str,
    beneficiary: Beneficiary | None,
    state: ScaState,
    now: datetime,
) -> FactsQuery:
    """The daily total, the window total, the last 20 amounts, whether this payee was paid before
    and the saved beneficiary with this IBAN (and, for the PSD2 profile, the history count up to
    PAYMENT_UNUSUAL_MIN_HISTORY, the latest payees and the last hour's count): scalar subqueries,
    each on an index (migration payments/0007: index-only scans), to be read in
    one statement (alone, PaymentFacts.load, or with the accounts' lock, payments.services)."""
    completed, pending = Payment.Status.COMPLETED.value, Payment.Status.PENDING_STEP_UP.value
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    template = _FACTS
    params: list[Any] = [account_id, completed, pending, day_start]
    params += [user_id, completed, currency, window_since(state, now), *NOT_COUNTED]
    params += [account_id, completed, user_id, payee_iban, completed]
    strict = psd2()
    if strict:
        template += _FACTS_PSD2
        history_cap = int(settings.PAYMENT_UNUSUAL_MIN_HISTORY)
        params += [user_id, completed, history_cap, user_id, completed, user_id, now - timedelta(hours=1)]
    want_payee = beneficiary is None or beneficiary.iban != payee_iban
    join = ""
    join_params: list[Any] = []
    if want_payee:
        _beneficiary_columns()
        template += ", " + ", ".join(f'b."{f.column}"' for f in Beneficiary._meta.concrete_fields)
        join = f' LEFT JOIN "{Beneficiary._meta.db_table}" AS b ON b."owner_id" = %s AND b."iban" = %s'  # nosec B608
        join_params = [user_id, payee_iban]
    columns = template.format(pay=Payment._meta.db_table)
    return FactsQuery(columns=columns, join=join, column_params=params, join_params=join_params, strict=strict)


def _load_facts(facts: PaymentFacts) -> None:
    query = facts_query(
        user_id=facts.user.pk,
        account_id=facts.account.pk,
        currency=facts.currency,
        payee_iban=facts.payee_iban,
        beneficiary=facts.beneficiary,
        state=facts.state,
        now=facts.now,
    )
    sql = f"SELECT {query.columns} FROM (SELECT 1) AS one{query.join}"  # noqa: S608  # nosec B608 - identifiers from model metadata
    with connection.cursor() as cursor:
        cursor.execute(sql, query.column_params + query.join_params)
        row = cursor.fetchone()
    if row is not None:  # a SELECT of one row (a LEFT JOIN on it) always has it
        facts._cache.update(query.parse(row))


Rule = Callable[[PaymentFacts], ScaDecision | None]


def _required(reason: str, article: str, facts: PaymentFacts) -> ScaDecision:
    score, factors = facts._cache.get("risk", (None, ()))
    return ScaDecision(
        required=True, exemption=None, article=article, reasons=(reason,), risk_score=score, risk_factors=factors
    )


def _exempt(exemption: str, facts: PaymentFacts) -> ScaDecision:
    score, factors = facts._cache.get("risk", (None, ()))
    return ScaDecision(
        required=False, exemption=exemption, article=ARTICLES[exemption], risk_score=score, risk_factors=factors
    )


# --- The rules --------------------------------------------------------------------------


def standing_order_digest(order: StandingOrder) -> str:
    """What the customer authorises for a series: account, payee, amount, currency, frequency."""
    from core.crypto import keyed_hash

    value = "|".join(
        [
            str(order.id),
            str(order.from_account_id),
            order.payee_iban,
            order.payee_name,
            str(Decimal(order.amount).quantize(Decimal("0.01"))),
            order.currency,
            order.frequency,
        ]
    )
    return keyed_hash(value, purpose="payments.standing-order-binding")


def rule_recurring(facts: PaymentFacts) -> ScaDecision | None:
    """Art. 14: later executions of a series with the amount and payee the customer authorised."""
    order = facts.standing_order
    if order is None:
        return None
    from core.crypto import constant_time_equals

    if (
        order.status == StandingOrder.Status.ACTIVE
        and order.executions >= 1
        and order.authorised_digest
        and constant_time_equals(standing_order_digest(order), order.authorised_digest)
        and order.amount == facts.amount
        and order.payee_iban == facts.payee_iban
    ):
        return _exempt(RECURRING, facts)
    return None


def rule_own_accounts(facts: PaymentFacts) -> ScaDecision | None:
    """Art. 15: the payee account is the same customer's, at this bank."""
    payee = facts.payee_account
    if payee is not None and payee.owner_id == facts.user.pk and payee.kind == BankAccount.Kind.CUSTOMER:
        return _exempt(OWN_ACCOUNTS, facts)
    return None


def rule_threshold(facts: PaymentFacts) -> ScaDecision | None:
    """Above the threshold, alone or with what went out without SCA in the window (splitting)."""
    threshold = Decimal(settings.STEP_UP_THRESHOLD)
    if facts.amount > threshold:
        return _required("above_threshold", "PSD2 Art. 97(1)(b)", facts)
    if facts.window_total() + facts.amount > threshold:
        return _required("cumulative_above_threshold", "PSD2 Art. 97(1)(b)", facts)
    return None


def rule_trusted_beneficiary(facts: PaymentFacts) -> ScaDecision | None:
    """Art. 13: a payee the customer trusted with SCA, for the IBAN that was trusted."""
    beneficiary = facts.beneficiary if facts.beneficiary is not None else facts.saved_payee()
    if beneficiary is not None and beneficiary.is_trusted and beneficiary.trusted_iban == facts.payee_iban:
        return _exempt(TRUSTED_BENEFICIARY, facts)
    return None


def rule_unusual(facts: PaymentFacts) -> ScaDecision | None:
    """Default profile: transaction monitoring (Art. 2) asks for SCA on unusual payments."""
    reasons = unusual_reasons(facts)
    if reasons:
        return ScaDecision(required=True, exemption=None, article="RTS Art. 2", reasons=tuple(reasons))
    return None


def rule_below_threshold(facts: PaymentFacts) -> ScaDecision | None:
    """Default profile: at or below the threshold and not unusual, no SCA."""
    return ScaDecision(required=False, exemption=None, article="STEP_UP_THRESHOLD", reasons=("below_threshold",))


def rule_high_risk(facts: PaymentFacts) -> ScaDecision | None:
    """PSD2 profile: transaction monitoring (Art. 2): a high risk score allows no further exemption."""
    score, _ = facts.risk()
    if score >= settings.SCA_HIGH_RISK_SCORE:
        return _required("high_risk", "RTS Art. 2", facts)
    return None


def rule_low_value(facts: PaymentFacts) -> ScaDecision | None:
    """Art. 16: at most 30.00 EUR, and since the last SCA at most 100.00 EUR and/or 5 payments."""
    if facts.currency != EUR or facts.amount > settings.SCA_LOW_VALUE_MAX:
        return None
    state = facts.state
    amount_ok = state.amount_since_sca + facts.amount <= settings.SCA_LOW_VALUE_CUMULATIVE_MAX
    count_ok = state.count_since_sca + 1 <= settings.SCA_LOW_VALUE_COUNT_MAX
    mode = str(settings.SCA_LOW_VALUE_COUNTERS)
    allowed = {"amount": amount_ok, "count": count_ok}.get(mode, amount_ok and count_ok)
    return _exempt(LOW_VALUE, facts) if allowed else None


def rule_tra(facts: PaymentFacts) -> ScaDecision | None:
    """Art. 18: a low risk score, up to the threshold the measured fraud rate allows (Annex)."""
    if facts.currency != EUR:
        return None
    threshold = tra_threshold()
    if threshold is None or facts.amount > threshold:
        return None
    score, _ = facts.risk()
    if score >= settings.SCA_TRA_MAX_SCORE:
        return None
    return _exempt(TRA, facts)


def rule_sca(facts: PaymentFacts) -> ScaDecision | None:
    """PSD2 profile: no exemption applied, so SCA (PSD2 Art. 97(1)(b))."""
    return _required("psd2_sca", "PSD2 Art. 97(1)(b)", facts)


DEFAULT_RULES: tuple[Rule, ...] = (
    rule_recurring,
    rule_own_accounts,
    rule_threshold,
    rule_trusted_beneficiary,
    rule_unusual,
    rule_below_threshold,
)
PSD2_RULES: tuple[Rule, ...] = (
    rule_recurring,
    rule_own_accounts,
    rule_threshold,
    rule_trusted_beneficiary,
    rule_high_risk,
    rule_low_value,
    rule_tra,
    rule_sca,
)


def rules() -> tuple[Rule, ...]:
    return PSD2_RULES if psd2() else DEFAULT_RULES


# Rules that, once the facts are loaded, read nothing more from the database.
_QUERY_FREE_RULES = DEFAULT_RULES


def decide(facts: PaymentFacts) -> ScaDecision:
    """Runs the rules once; the first answer wins. Any failure means SCA."""
    trace: list[str] = []
    # A savepoint, so that a failing query leaves the payment's transaction usable; none is
    # needed (two round trips saved) when the rules only look at facts already loaded.
    query_free = facts.loaded and rules() == _QUERY_FREE_RULES
    try:
        with nullcontext() if query_free else transaction.atomic():
            for rule in rules():
                name = rule.__name__.removeprefix("rule_")
                decision = rule(facts)
                if decision is None:
                    trace.append(f"{name}:no")
                    continue
                trace.append(f"{name}:{'sca' if decision.required else 'exempt'}")
                return ScaDecision(
                    required=decision.required,
                    exemption=decision.exemption,
                    article=decision.article,
                    reasons=decision.reasons,
                    risk_score=decision.risk_score,
                    risk_factors=decision.risk_factors,
                    trace=tuple(trace),
                )
    except Exception:
        logger.exception("SCA evaluation failed: SCA applies")
        trace.append("error")
    return ScaDecision(
        required=True, exemption=None, article="fail-safe", reasons=("evaluation_error",), trace=tuple(trace)
    )


# --- Risk factors (Art. 18(2)-(3)) and unusual payments -----------------------------------------


def _typical_amount(facts: PaymentFacts) -> Decimal | None:
    recent = facts.recent_amounts()
    if len(recent) < settings.PAYMENT_UNUSUAL_MIN_HISTORY:
        return None
    return Decimal(median(recent))


def _paid_before(facts: PaymentFacts) -> bool:
    return facts.paid_before()


def unusual_reasons(facts: PaymentFacts) -> list[str]:
    """Over PAYMENT_UNUSUAL_FACTOR x the account's typical payment; the first payment to a
    beneficiary added in the last PAYMENT_NEW_BENEFICIARY_HOURS."""
    reasons = []
    typical = _typical_amount(facts)
    if typical is not None and facts.amount > typical * settings.PAYMENT_UNUSUAL_FACTOR:
        reasons.append("unusual_amount")
    since = facts.now - timedelta(hours=settings.PAYMENT_NEW_BENEFICIARY_HOURS)
    saved = facts.saved_payee()
    if saved is not None and saved.created_at >= since and not _paid_before(facts):
        reasons.append("new_beneficiary")
    return reasons


def _iban_country(iban: str) -> str:
    try:
        return str(IBAN(iban).country_code)
    except SchwiftyException:
        return ""


def risk_assessment(facts: PaymentFacts) -> tuple[int, list[str]]:
    """A score from the factors Art. 18(2)(c) and 18(3) name: spending pattern and history of the
    payer, payer location, payee location and a new payee, the device, abnormal patterns."""
    from risk.selectors import profile_for_user

    weights = settings.SCA_TRA_WEIGHTS
    factors: list[str] = []
    if not _paid_before(facts):
        factors.append("new_payee")
    if facts.device != "known":
        factors.append("new_device")
    typical = _typical_amount(facts)
    if typical is not None and facts.amount > typical * settings.PAYMENT_UNUSUAL_FACTOR:
        factors.append("unusual_amount")
    if facts.completed_count() < settings.PAYMENT_UNUSUAL_MIN_HISTORY:
        factors.append("short_history")
    profile = profile_for_user(user=facts.user)
    seen = {str(c).upper() for c in (profile.seen_countries if profile else [])}
    if facts.country and seen and facts.country.upper() not in seen:
        factors.append("payer_location")
    payee_country = _iban_country(facts.payee_iban)
    paid_countries = {_iban_country(facts.account.iban)} | {_iban_country(i) for i in facts.recent_payee_ibans()}
    if payee_country and payee_country not in paid_countries:
        factors.append("payee_location")
    if facts.last_hour_count() >= settings.SCA_TRA_VELOCITY_PER_HOUR:
        factors.append("velocity")
    score = sum(int(weights.get(f, 0)) for f in factors)
    return score, factors


# --- Fraud rate (Art. 19) and the TRA threshold it allows (Annex) ------------------------------


@dataclass(frozen=True)
class FraudRate:
    since: datetime
    until: datetime
    total: Decimal
    fraud: Decimal

    @property
    def percent(self) -> Decimal:
        if self.total <= 0:
            return Decimal("0")
        return (self.fraud / self.total * 100).quantize(Decimal("0.0001"))


def fraud_rate(*, until: datetime | None = None) -> FraudRate:
    """Value of remote credit transfers reported as fraud over all of them, rolling SCA_FRAUD_WINDOW_DAYS
    (every completed payment counts, with SCA or exempted, as Art. 19(1) says)."""
    end = until or timezone.now()
    start = end - timedelta(days=settings.SCA_FRAUD_WINDOW_DAYS)
    rows = Payment.objects.filter(
        status=Payment.Status.COMPLETED, currency=EUR, created_at__gte=start, created_at__lte=end
    ).aggregate(
        total=Sum("amount"),
        fraud=Sum("amount", filter=Q(fraud_reported_at__isnull=False, fraud_reported_at__lte=end)),
    )
    return FraudRate(since=start, until=end, total=Decimal(rows["total"] or 0), fraud=Decimal(rows["fraud"] or 0))


def threshold_for(rate_percent: Decimal) -> Decimal | None:
    """The highest exemption threshold value of the Annex whose reference rate the rate meets."""
    allowed = [etv for etv, reference in settings.SCA_TRA_BANDS if rate_percent <= reference]
    return max(allowed) if allowed else None


def tra_threshold(*, until: datetime | None = None) -> Decimal | None:
    """The TRA threshold the fraud rate allows now. Every fraud report re-measures it at once
    (payments.services.fraud_monitor_check); between reports the measure is reused for
    SCA_FRAUD_RATE_REFRESH_SECONDS, so a payment does not aggregate 90 days of payments."""
    if until is not None:
        return threshold_for(fraud_rate(until=until).percent)
    from payments.models import FraudMonitor

    monitor = FraudMonitor.objects.filter(id=1).first()
    fresh = timezone.now() - timedelta(seconds=settings.SCA_FRAUD_RATE_REFRESH_SECONDS)
    if monitor is not None and monitor.measured_at is not None and monitor.measured_at >= fresh:
        return monitor.allowed_threshold
    from payments.services import fraud_monitor_check

    return fraud_monitor_check()


def bands(*, until: datetime | None = None) -> list[dict[str, Any]]:
    """Each Annex band against the measured rate: open or stopped (Art. 20)."""
    rate = fraud_rate(until=until)
    return [
        {
            "threshold": etv,
            "reference_percent": reference,
            "measured_percent": rate.percent,
            "open": rate.percent <= reference,
        }
        for etv, reference in sorted(settings.SCA_TRA_BANDS)
    ]
