from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import services as account_services
from accounts.models import User
from mfa import services as mfa_services
from payments import services as payment_services

PERSONAS = [
    # (email, password, name, role)
    ("customer@example.com", "demo-customer-passphrase", "Alex Customer", "customer"),
    ("admin@example.com", "demo-admin-passphrase!", "Sam Admin", "admin"),
    ("analyst@example.com", "demo-analyst-passphrase", "Robin Analyst", "security"),
]


class Command(BaseCommand):
    help = "Creates demo personas (a customer with two funded accounts, an admin, a security analyst)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.SETTINGS_MODULE.endswith(".prod") or not (
            settings.DEBUG or settings.SETTINGS_MODULE.endswith(".test")
        ):
            raise CommandError("seed_demo is refused under production settings")
        with transaction.atomic():
            for email, password, name, role in PERSONAS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = account_services.user_create(
                        email=email, password=password, full_name=name, email_verified=True
                    )
                if role != "customer":
                    user.groups.clear()
                    user.is_staff = True
                    user.is_superuser = role == "admin"
                    user.save(update_fields=["is_staff", "is_superuser"])
                group = Group.objects.filter(name=role).first()
                if group is not None:
                    user.groups.add(group)
                if role == "customer" and not user.bank_accounts.exists():
                    payment_services.account_open(
                        owner=user, currency="EUR", name="Everyday account", opening_balance="25000.00"
                    )
                    payment_services.account_open(
                        owner=user, currency="EUR", name="Savings", opening_balance="50000.00"
                    )
            # Staff must sign in with a strong factor: give the admin and the analyst a TOTP.
            totp_devices = {
                email: mfa_services.totp_enrol_seeded(user=User.objects.get(email=email))
                for email, _password, _name, role in PERSONAS
                if role != "customer"
            }
        if not options["quiet"]:
            self.stdout.write("Demo logins (local use only):")
            for email, password, _name, role in PERSONAS:
                self.stdout.write(f"  {role:<9} {email:<24} {password}")
            self.stdout.write("")
            self.stdout.write(
                "Staff sign in with an authenticator app (TOTP). Add these to one, or compute a code with"
            )
            self.stdout.write("  python -c \"import pyotp; print(pyotp.TOTP('<secret>').now())\"")
            for email, device in totp_devices.items():
                self.stdout.write(f"  {email:<24} secret {device.base32_secret}")
                self.stdout.write(f"  {'':<24} {device.config_url(issuer=settings.MFA_TOTP_ISSUER)}")
