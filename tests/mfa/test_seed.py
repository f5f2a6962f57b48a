from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pyotp
from django.core.management import call_command
from django.test import Client


def test_seeded_admin_signs_in_to_the_admin_with_the_printed_totp(capsys: Any, client: Client) -> None:
    call_command("seed_demo")
    out = capsys.readouterr().out
    uris = re.findall(r"(otpauth://\S+)", out)
    assert len(uris) == 2
    call_command("seed_demo")
    assert re.findall(r"(otpauth://\S+)", capsys.readouterr().out) == uris  # same secrets on a re-run
    admin_uri = next(u for u in uris if "admin%40example.com" in u or "admin@example.com" in unquote(u))
    totp = pyotp.parse_uri(unquote(admin_uri))
    assert isinstance(totp, pyotp.TOTP)
    response = client.post("/accounts/login/", {"email": "admin@example.com", "password": "demo-admin-passphrase!"})
    assert response["Location"] == "/accounts/login/mfa/"
    response = client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
