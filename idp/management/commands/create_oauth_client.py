"""manage.py create_oauth_client: registers a client (shared/API.md); the secret is printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from idp import services


class Command(BaseCommand):
    help = "Registers an OAuth 2 / OpenID Connect client and prints client_id (and client_secret, once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", required=True, choices=sorted(services.KINDS))
        parser.add_argument("--grant", required=True, choices=sorted(services.GRANTS))
        parser.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris")
        parser.add_argument("--post-logout-redirect-uri", action="append", default=[], dest="post_logout_uris")
        parser.add_argument("--scopes", default="", help='Space separated, e.g. "openid email read:payments"')
        parser.add_argument("--trusted", action="store_true", help="First-party: no consent page")
        parser.add_argument("--backchannel-logout-uri", default="")
        parser.add_argument(
            "--user", default="", help="client-credentials: the customer whose data the service reads (email)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = options["scopes"] or ("openid" if options["grant"] == "authorization-code" else "")
        owner = None
        if options["user"]:
            owner = User.objects.filter(email=options["user"].strip().lower()).first()
            if owner is None:
                raise CommandError(f"no user with the email {options['user']}")
        try:
            client, secret = services.client_create(
                name=options["name"],
                kind=options["kind"],
                grant=options["grant"],
                redirect_uris=options["redirect_uris"],
                post_logout_redirect_uris=options["post_logout_uris"],
                scopes=scopes,
                trusted=options["trusted"],
                backchannel_logout_uri=options["backchannel_logout_uri"],
                owner=owner,
            )
        except services.ClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"client_id={client.client_id}")
        if secret:
            self.stdout.write(f"client_secret={secret}")
