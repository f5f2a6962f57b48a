from __future__ import annotations

import re
import secrets
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Command(BaseCommand):
    help = "Creates a customer. The password is read from stdin when piped, else generated and shown once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--verified", action="store_true", help="mark the email address as verified")
        parser.add_argument("--phone", default="", help="phone number in E.164 form, e.g. +447700900123")
        parser.add_argument("--name", default="", help="full name")

    def handle(self, *args: Any, **options: Any) -> None:
        phone = options["phone"].strip()
        if phone and not E164.match(phone):
            raise CommandError("--phone must be in E.164 form, e.g. +447700900123")
        generated = False
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() and not sys.stdin.closed else ""
        if not password:
            password = "-".join(secrets.token_urlsafe(6) for _ in range(4))
            generated = True
        try:
            user = services.user_create(
                email=options["email"],
                password=password,
                full_name=options["name"],
                phone=phone,
                email_verified=options["verified"],
            )
        except services.AccountError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError("password refused: " + " ".join(exc.messages)) from exc
        self.stdout.write(f"Created customer {user.email} ({user.public_id})")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
