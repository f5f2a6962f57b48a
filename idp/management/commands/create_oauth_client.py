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
            "--fapi",
            action="store_true",
            help="FAPI 2.0 profile: PAR, PKCE S256, private_key_jwt, DPoP-bound tokens, ES256 (README)",
        )
        parser.add_argument("--require-par", action="store_true", help="Only pushed authorization requests")
        parser.add_argument("--jwks-uri", default="", help="private_key_jwt: where the client publishes its JWKS")
        parser.add_argument("--jwks-file", default="", help="private_key_jwt: a file holding the client's public JWKS")
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
        jwks = None
        if options["jwks_file"]:
            import json
            from pathlib import Path

            try:
                jwks = json.loads(Path(options["jwks_file"]).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--jwks-file cannot be read as JSON: {exc}") from exc
        if jwks is not None and options["jwks_uri"]:
            raise CommandError("give --jwks-uri or --jwks-file, not both")
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
                fapi=options["fapi"],
                require_par=options["require_par"],
                jwks=jwks,
                jwks_uri=options["jwks_uri"],
            )
        except services.ClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"client_id={client.client_id}")
        if secret:
            self.stdout.write(f"client_secret={secret}")
