"""Clients in the admin: registering, changing and deleting one is audited; a new or replaced
secret is shown once, on the page after saving, and never again (only its hash is stored)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from audit.events import EventType
from idp import services
from idp.models import Client, Consent, generate_client_secret

# django-oauth-toolkit registers its own admin for the (swapped) client model; ours replaces it.
if admin.site.is_registered(Client):
    admin.site.unregister(Client)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "skip_authorization",
        "fapi",
        "is_active",
    )
    list_filter = ("client_type", "authorization_grant_type", "skip_authorization", "fapi", "require_par", "is_active")
    search_fields = ("name", "client_id")
    readonly_fields = ("client_id", "created", "updated")
    fields = (
        "name",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "redirect_uris",
        "post_logout_redirect_uris",
        "allowed_scopes",
        "skip_authorization",
        "backchannel_logout_uri",
        "fapi",
        "require_par",
        "token_endpoint_auth_method",
        "jwks",
        "jwks_uri",
        "user",
        "is_active",
        "created",
        "updated",
    )
    actions = ["rotate_secret"]

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        plaintext = ""
        if not change and obj.client_type == Client.CLIENT_CONFIDENTIAL and not obj.uses_private_key_jwt:
            plaintext = generate_client_secret()
            obj.client_secret = plaintext
        elif not change:
            obj.client_secret = ""
        obj.algorithm = Client.RS256_ALGORITHM
        super().save_model(request, obj, form, change)
        if change and not obj.is_active:
            services.client_tokens_revoke(client=obj)
        services.client_audit(
            client=obj,
            event=EventType.OAUTH_CLIENT_CHANGED if change else EventType.OAUTH_CLIENT_CREATED,
            actor=request.user,
            changed=list(form.changed_data) if change else None,
        )
        if plaintext:
            messages.warning(request, f"Client secret of {obj.name} (shown once, copy it now): {plaintext}")

    def delete_model(self, request: HttpRequest, obj: Client) -> None:
        services.client_tokens_revoke(client=obj, reason="client_deleted")
        services.client_audit(client=obj, event=EventType.OAUTH_CLIENT_DELETED, actor=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Replace the client secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> None:
        for client in queryset.filter(client_type=Client.CLIENT_CONFIDENTIAL):
            plaintext = services.client_secret_rotate(client=client, actor=request.user)
            messages.warning(request, f"New client secret of {client.name} (shown once, copy it now): {plaintext}")


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("user", "client", "scope", "created_at", "last_used_at")
    readonly_fields = ("user", "client", "scope", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
