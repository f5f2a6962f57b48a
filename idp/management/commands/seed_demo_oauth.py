"""manage.py seed_demo_oauth: the demo clients of `make run` (refused under production settings).

Idempotent: a second run updates the clients in place and resets their demo secrets, so the
printed credentials always work. The secrets are demo values, like seed_demo's passwords.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from audit.events import EventType
from idp import services
from idp.models import Client

DEMO_CUSTOMER = "customer@example.com"
CUSTOMER_SCOPES = "openid email offline_access read:accounts read:payments write:payments"

DEMO_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": "mortgage-app",
        "name": "Mortgage app",
        "secret": "demo-mortgage-app-secret-for-development-only",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant": Client.GRANT_AUTHORIZATION_CODE,
        "redirect_uris": "http://127.0.0.1:8001/oidc/callback/",
        "post_logout_redirect_uris": "http://127.0.0.1:8001/",
        "backchannel_logout_uri": "http://127.0.0.1:8001/oidc/backchannel-logout/",
        "scopes": CUSTOMER_SCOPES,
        "trusted": True,
    },
    {
        "client_id": "reporting-tool",
        "name": "Reporting tool",
        "secret": "demo-reporting-tool-secret-for-development-only",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant": Client.GRANT_AUTHORIZATION_CODE,
        "redirect_uris": "http://127.0.0.1:8002/oidc/callback/",
        "post_logout_redirect_uris": "http://127.0.0.1:8002/",
        "backchannel_logout_uri": "http://127.0.0.1:8002/oidc/backchannel-logout/",
        "scopes": "openid email read:accounts read:payments",
        "trusted": False,
    },
    {
        "client_id": "payments-reader",
        "name": "payments-reader",
        "secret": "demo-payments-reader-secret-for-development-only",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant": Client.GRANT_CLIENT_CREDENTIALS,
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "backchannel_logout_uri": "",
        "scopes": "read:payments",
        "trusted": False,
        "owner": DEMO_CUSTOMER,
    },
]


class Command(BaseCommand):
    help = "Creates (or resets) the demo OAuth clients: Mortgage app, Reporting tool, payments-reader."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SETTINGS_MODULE.endswith(".prod") or not (
            settings.DEBUG or settings.SETTINGS_MODULE.endswith(".test")
        ):
            raise CommandError("seed_demo_oauth is refused under production settings")
        lines = []
        with transaction.atomic():
            for spec in DEMO_CLIENTS:
                owner = User.objects.filter(email=spec["owner"]).first() if spec.get("owner") else None
                client = Client.objects.filter(client_id=spec["client_id"]).first()
                created = client is None
                if client is None:
                    client = Client(client_id=spec["client_id"])
                client.name = spec["name"]
                client.client_type = spec["client_type"]
                client.authorization_grant_type = spec["grant"]
                client.redirect_uris = spec["redirect_uris"]
                client.post_logout_redirect_uris = spec["post_logout_redirect_uris"]
                client.backchannel_logout_uri = spec["backchannel_logout_uri"]
                client.allowed_scopes = spec["scopes"]
                client.skip_authorization = spec["trusted"]
                client.algorithm = Client.RS256_ALGORITHM
                client.client_secret = spec["secret"]
                client.is_active = True
                if owner is not None:
                    client.user = owner
                client.full_clean(exclude=["client_secret"])
                client.save()
                services.client_audit(
                    client=client, event=EventType.OAUTH_CLIENT_CREATED if created else EventType.OAUTH_CLIENT_CHANGED
                )
                lines.append((spec, owner))
        if options["quiet"]:
            return
        self.stdout.write("Demo OAuth clients (development only):")
        for spec, owner in lines:
            self.stdout.write(f"  {spec['name']}: client_id={spec['client_id']} client_secret={spec['secret']}")
            if spec["grant"] == Client.GRANT_CLIENT_CREDENTIALS and owner is None:
                self.stdout.write(f"    (no {DEMO_CUSTOMER} yet: run seed_demo first so its tokens can read payments)")
        self.stdout.write(f"Discovery: {settings.PUBLIC_BASE_URL}/.well-known/openid-configuration")
