"""GET /api/v1/audit/events — the audit log for the security group (see shared/API.md).

Bearer JWT (the API's default authentication) and the permission audit.view_reports; anyone
else gets 403 (401 without a valid token). Filters: type (exact, or an area prefix ending in
"."), user (email or public id), since/until (ISO 8601, UTC when no offset), outcome, ip,
country; limit (1 to 1000) and cursor. Every parameter is validated before it reaches a query:
a bad value (a NUL byte, a date that is not one, a user that is neither an email nor a UUID, a
forged cursor) is a 400 with the error body. Cursor pagination, newest first: stable while new
events arrive.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from audit.forms import EventQueryForm
from audit.models import AuditEvent
from audit.roles import VIEW_REPORTS
from audit.selectors import filter_events


class CanViewReports(BasePermission):
    message = "Only the security team can read the audit log."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.has_perm(VIEW_REPORTS))


class AuditEventPagination(CursorPagination):
    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int | None:
        self.page_size = settings.AUDIT_API_PAGE_SIZE
        return super().get_page_size(request)

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF's cursor, refused with a 400 unless its position is an event id (ordering is "-id")."""
        invalid = serializers.ValidationError({"cursor": ["This cursor is not valid."]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise invalid from exc
        position = str(cursor.position) if cursor is not None and cursor.position is not None else None
        if position is not None and not (position.isascii() and position.isdigit() and int(position) < 2**63):
            raise invalid
        return cursor


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]
    user_id = serializers.SerializerMethodField()
    user_email = serializers.SerializerMethodField()
    actor_id = serializers.SerializerMethodField()
    actor_email = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "occurred_at",
            "type",
            "label",
            "outcome",
            "user_id",
            "user_email",
            "actor_id",
            "actor_email",
            "ip",
            "country",
            "ua_family",
            "reason",
            "request_id",
            "details",
        )

    def get_user_id(self, obj: AuditEvent) -> str | None:
        return str(obj.user.public_id) if obj.user is not None else None

    def get_user_email(self, obj: AuditEvent) -> str | None:
        return obj.user.email if obj.user is not None else None

    def get_actor_id(self, obj: AuditEvent) -> str | None:
        return str(obj.actor.public_id) if obj.actor is not None else None

    def get_actor_email(self, obj: AuditEvent) -> str | None:
        return obj.actor.email if obj.actor is not None else None


_PARAMS = [
    OpenApiParameter(
        "type", OpenApiTypes.STR, description='Event type, e.g. "auth.login_failed", or "mfa." for an area'
    ),
    OpenApiParameter("user", OpenApiTypes.STR, description="The user's email address or public id"),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this time (inclusive), ISO 8601"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Until this time (exclusive), ISO 8601"),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=["success", "failure", "denied", "info"]),
    OpenApiParameter("ip", OpenApiTypes.STR),
    OpenApiParameter("country", OpenApiTypes.STR, description="ISO 3166 alpha-2"),
    OpenApiParameter("client", OpenApiTypes.STR, description="An app's OAuth client id (the provider's events)"),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 100, at most 1000)"),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next` or `previous` link's cursor"),
]


@extend_schema(tags=["audit"], parameters=_PARAMS, summary="Audit events (security team)")
class AuditEventListView(ListAPIView[AuditEvent]):
    permission_classes = [IsAuthenticated, CanViewReports]
    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination

    def get_queryset(self) -> QuerySet[AuditEvent]:
        form = EventQueryForm(self.request.query_params)
        if not form.is_valid():
            errors: dict[str, Any] = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
            raise serializers.ValidationError(errors)
        return filter_events(filters=form.filters()).select_related("user", "actor")
