from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]

PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "DJANGO_SECRET_KEY": "x" * 24 + "-prod-like-secret-key-for-the-deploy-check-0123456789",
    "FIELD_ENCRYPTION_KEY": "field-encryption-key-for-the-deploy-check",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bank_portal",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "EMAIL_URL": "smtp://127.0.0.1:1025",
    "ALLOWED_HOSTS": "portal.bank.test",
    "PUBLIC_BASE_URL": "https://portal.bank.test",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PROD_ENV and not k.startswith("JWT_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _prod_env() -> dict[str, str]:
    env = dict(PROD_ENV)
    key_file = ROOT / "tests" / "core" / "prod_check_jwt_key.pem"
    if not key_file.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_file.write_bytes(pem)
    env["JWT_PRIVATE_KEY_FILE"] = str(key_file)
    return env


@pytest.mark.slow
def test_check_deploy_under_prod_reports_nothing():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_prod_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_prod_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in _prod_env().items() if k != "DJANGO_SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_seed_demo_is_refused_under_prod():
    result = _manage("seed_demo", env=_prod_env())
    assert result.returncode != 0
    assert "refused under production settings" in result.stderr


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def test_healthz_names_the_failing_part(client, monkeypatch):
    from django.core.cache.backends.redis import RedisCache

    # A real Redis client pointed at a port where nothing listens.
    monkeypatch.setattr("core.views.cache", RedisCache("redis://127.0.0.1:1/0", {}))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/healthz"])
def test_security_headers_on_every_page(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_scripts(client, user, login):
    import re

    login(client, user)
    for path in ("/", "/security/", "/accounts/password/change/"):
        html = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert " style=" not in html and " onclick=" not in html, path


def test_create_customer_and_open_account_commands(capsys, monkeypatch):
    import io

    from accounts.models import User
    from payments.selectors import ledger_inconsistencies

    monkeypatch.setattr("sys.stdin", io.StringIO("a long piped-in passphrase\n"))
    call_command("create_customer", "Jo@Example.com", "--verified", "--phone", "+447700900123")
    user = User.objects.get(email="jo@example.com")
    assert user.email_verified and user.phone == "+447700900123"
    assert user.check_password("a long piped-in passphrase")
    assert user.groups.filter(name="customer").exists()
    call_command("open_account", "--email", "jo@example.com", "--currency", "EUR", "--opening-balance", "50000.00")
    iban = capsys.readouterr().out.strip().splitlines()[-1]
    account = user.bank_accounts.get()
    assert account.iban == iban and str(account.balance) == "50000.00"
    assert ledger_inconsistencies() == []


def test_seed_demo_creates_personas(capsys):
    from accounts.models import User

    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "customer@example.com" in out and "analyst@example.com" in out and "admin@example.com" in out
    customer = User.objects.get(email="customer@example.com")
    assert customer.bank_accounts.count() == 2
    assert User.objects.get(email="analyst@example.com").groups.filter(name="security").exists()
