from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from payments import services


class Command(BaseCommand):
    help = "Opens a bank account for a customer, funds it through the ledger and prints its IBAN."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--currency", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--opening-balance", default="0.00")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=options["email"].strip().lower()).first()
        if user is None:
            raise CommandError(f"no customer with email {options['email']}")
        try:
            account = services.account_open(
                owner=user,
                currency=options["currency"],
                name=options["name"],
                opening_balance=options["opening_balance"],
            )
        except services.PaymentError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(account.iban)
