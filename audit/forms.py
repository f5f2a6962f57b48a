"""The filters shared by the reports page, the CSV export and the audit API."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import validate_email
from django.utils import timezone

from audit.events import EventType, Outcome

_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]*)?$")
_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
_DATETIME_MAX_LENGTH = 40  # "2026-11-24T21:00:00.000000+00:00" and some room; longer is not a date


@dataclass(frozen=True)
class EventFilters:
    since: datetime | None = None
    until: datetime | None = None
    type: str = ""
    user: str = ""
    ip: str = ""
    country: str = ""
    outcome: str = ""
    client: str = ""  # an OAuth client id: the provider's events carry it in their details

    def as_details(self) -> dict[str, Any]:
        """For the audit row of an export (no secrets here)."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "type": self.type,
            "user": self.user,
            "ip": self.ip,
            "country": self.country,
            "outcome": self.outcome,
            "client": self.client,
        }


def parse_datetime_value(value: str) -> datetime | None:
    """ISO 8601 (with or without zone; naive means UTC) or the datetime-local format."""
    value = value.strip()
    if not value:
        return None
    if len(value) > _DATETIME_MAX_LENGTH or "\x00" in value:
        raise forms.ValidationError("Enter a date and time like 2026-11-24T21:00 (UTC).")
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 (made aware below)
                break
            except ValueError:
                continue
    if parsed is None:
        raise forms.ValidationError("Enter a date and time like 2026-11-24T21:00 (UTC).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 and 9999-12-31T23:59-01:00 have no UTC time
        raise forms.ValidationError("That date is out of range.") from exc


class _DateTimeField(forms.CharField):
    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        return parse_datetime_value(str(value or ""))


class EventFilterForm(forms.Form):
    since = _DateTimeField(required=False, label="From (UTC)", help_text="e.g. 2026-11-24T00:00")
    until = _DateTimeField(required=False, label="Until (UTC)")
    type = forms.CharField(
        required=False,
        max_length=64,
        label="Event type",
        help_text='Exact, e.g. "auth.login_failed", or an area such as "mfa."',
    )
    user = forms.CharField(required=False, max_length=254, label="User (email or id)")
    ip = forms.GenericIPAddressField(required=False, label="IP address")
    country = forms.CharField(required=False, max_length=2, min_length=2, label="Country (ISO code)")
    outcome = forms.ChoiceField(required=False, choices=[("", "Any"), *Outcome.choices], label="Outcome")
    client = forms.RegexField(
        required=False,
        max_length=100,
        regex=r"^[A-Za-z0-9._~-]+$",
        label="App (OAuth client id)",
        error_messages={"invalid": "Client ids are letters, digits and . _ ~ -"},
    )

    def __init__(self, *args: Any, default_hours: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_hours = default_hours
        for name in ("since", "until"):
            self.fields[name].widget.attrs["placeholder"] = "YYYY-MM-DDTHH:MM"
        self.fields["type"].widget.attrs["list"] = "event-types"
        self.fields["country"].widget.attrs["autocapitalize"] = "characters"

    def clean_type(self) -> str:
        value = (self.cleaned_data.get("type") or "").strip().lower()
        if value and not _TYPE.match(value):
            raise forms.ValidationError("Event types look like area.what, e.g. auth.login_failed.")
        return value

    def clean_user(self) -> str:
        value = (self.cleaned_data.get("user") or "").strip().lower()
        if value and user_lookup_value(value)[0] == "email":
            try:
                validate_email(value)
            except forms.ValidationError as exc:
                raise forms.ValidationError("Enter an email address or a user id (UUID).") from exc
        return value

    def clean_country(self) -> str:
        value = (self.cleaned_data.get("country") or "").strip().upper()
        if value and not value.isalpha():
            raise forms.ValidationError("Use a two-letter country code, e.g. NL.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range is before its start.")
        return data

    def filters(self) -> EventFilters:
        """The effective filters (the default range applies when no start is given)."""
        data = self.cleaned_data
        since = data.get("since")
        if since is None and self.default_hours:
            since = (data.get("until") or timezone.now()) - timedelta(hours=self.default_hours)
        return EventFilters(
            since=since,
            until=data.get("until"),
            type=data.get("type") or "",
            user=data.get("user") or "",
            ip=data.get("ip") or "",
            country=data.get("country") or "",
            outcome=data.get("outcome") or "",
            client=data.get("client") or "",
        )


class EventQueryForm(EventFilterForm):
    """The audit API's query string: the filters, the page size and the cursor (decoded by the paginator)."""

    limit = forms.IntegerField(required=False, min_value=1, max_value=1000)
    cursor = forms.CharField(required=False, max_length=512)


_DATE_ONLY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class _DateField(_DateTimeField):
    """A date from the browser's date picker (YYYY-MM-DD, UTC); a full date and time is accepted too
    (links and bookmarks). `end_of_day` makes a date mean the end of that day (the range includes it)."""

    widget = forms.DateInput(attrs={"type": "date"})

    def __init__(self, *args: Any, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.end_of_day = end_of_day

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = str(value or "").strip()
        parsed = parse_datetime_value(text)
        if parsed is not None and self.end_of_day and _DATE_ONLY.match(text):
            try:
                parsed = parsed + timedelta(days=1)
            except OverflowError as exc:
                raise forms.ValidationError("That date is out of range.") from exc
        return parsed


def event_type_choices() -> list[tuple[str, Any]]:
    """Every event type, and every area (all its types), for the reports' list."""
    areas = sorted({value.split(".", 1)[0] + "." for value in EventType.values})
    return [
        ("", "Any"),
        ("Areas", [(area, f"{area}… (every {area[:-1]} event)") for area in areas]),
        ("Event types", sorted(((value, f"{value} ({label})") for value, label in EventType.choices))),
    ]


class ReportsFilterForm(EventFilterForm):
    """The reports' filters on the web: dates from a date picker, the event type from a list."""

    since = _DateField(required=False, label="From (UTC)", help_text="From the start of this day")
    until = _DateField(required=False, label="Until (UTC)", help_text="To the end of this day", end_of_day=True)
    # a list instead of free text
    type = forms.ChoiceField(  # type: ignore[assignment]
        required=False, label="Event type", choices=event_type_choices
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("since", "until"):
            self.fields[name].widget.attrs.pop("placeholder", None)
        self.fields["type"].widget.attrs.pop("list", None)


def reports_form(data: Any, *, default_hours: int | None = None) -> EventFilterForm:
    hours = settings.REPORTS_DEFAULT_HOURS if default_hours is None else default_hours
    return ReportsFilterForm(data, default_hours=hours or None)


def user_lookup_value(value: str) -> tuple[str, str]:
    """("public_id", uuid) when the value is a UUID, else ("email", value)."""
    try:
        return "public_id", str(uuid.UUID(value))
    except ValueError:
        return "email", value


EVENT_TYPE_CHOICES = sorted(EventType.values)
