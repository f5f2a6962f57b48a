"""docker-compose.yml and deploy/ are correct for users although Docker is not available here.

The compose file is loaded with PyYAML (anchors and merge keys resolved as Compose resolves
them) and its production profile is checked for what issue 17 promises: a TLS proxy as the only
published entry, two web replicas, one beat, PostgreSQL and Redis on an internal network with
passwords from secrets and no published port, Redis with AOF, healthchecks, the one-proxy
X-Forwarded-For contract. The Caddyfile is checked for the HTTP->HTTPS redirect and HSTS. The
entrypoint and make-secrets scripts run for real, and the environment the compose file gives
the app passes `manage.py check --deploy` under the production settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"

PROD_SERVICES = {"proxy", "migrate", "web", "worker", "beat", "db", "cache", "mailpit"}
APP_SERVICES = {"migrate", "web", "worker", "beat"}


@pytest.fixture(autouse=True)
def _db_for_all() -> None:
    """Overrides tests/conftest.py: nothing here touches PostgreSQL."""


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Overrides tests/conftest.py: nothing here touches Redis."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _services(compose: dict[str, Any], profile: str) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if profile in svc.get("profiles", [])}


def _networks(service: dict[str, Any]) -> set[str]:
    nets = service.get("networks", [])
    return set(nets if isinstance(nets, list) else nets.keys())


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ -> $."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name, "")
        if op == ":-":
            return current or arg
        if op == ":?" and not current:
            raise KeyError(f"{name}: {arg}")
        return current

    value = re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)
    return value.replace("$$", "$")


def test_every_service_belongs_to_exactly_one_profile(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert len(svc.get("profiles", [])) == 1, name
    assert set(_services(compose, "prod")) == PROD_SERVICES
    assert set(_services(compose, "dev")) == {"postgres", "redis"}


def test_only_the_proxy_is_reachable_from_outside(compose: dict[str, Any]) -> None:
    prod = _services(compose, "prod")
    assert prod["proxy"]["ports"] == ["80:80", "443:443", "443:443/udp"]
    # Mailpit's web UI on the host's loopback is the one other port, and only there.
    assert prod["mailpit"]["ports"] == ["127.0.0.1:8025:8025"]
    for name in PROD_SERVICES - {"proxy", "mailpit"}:
        assert "ports" not in prod[name], f"{name} must not publish a port"
    networks = compose["networks"]
    for internal in ("app", "data"):
        assert networks[internal]["internal"] is True
    assert _networks(prod["proxy"]) == {"edge", "app"}
    assert _networks(prod["web"]) == {"app", "data"}  # reachable only through the proxy
    assert _networks(prod["db"]) == {"data"} and _networks(prod["cache"]) == {"data"}
    # Only the worker talks to providers (Twilio, SMTP relay); beat and migrate need no way out.
    assert "egress" in _networks(prod["worker"])
    assert _networks(prod["beat"]) == {"data"} and _networks(prod["migrate"]) == {"data"}


def test_web_scales_out_and_there_is_one_beat(compose: dict[str, Any]) -> None:
    prod = _services(compose, "prod")
    assert prod["web"]["deploy"]["replicas"] >= 2
    assert prod["beat"]["deploy"]["replicas"] == 1
    assert "container_name" not in prod["web"]  # a fixed name would forbid replicas
    assert prod["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert prod["web"]["command"][0] in {"gunicorn", "granian"}


def test_data_services_need_passwords_from_secrets(compose: dict[str, Any]) -> None:
    prod = _services(compose, "prod")
    defined = compose["secrets"]
    for name, svc in prod.items():
        for secret in svc.get("secrets", []):
            assert secret in defined, (name, secret)
            assert defined[secret]["file"].startswith("./secrets/")
    db = prod["db"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_HOST_AUTH_METHOD" not in db["environment"]  # no trust
    assert "postgres_password" in db["secrets"]
    script = " ".join(prod["cache"]["command"])
    assert "requirepass" in script and "/run/secrets/redis_password" in script
    assert "--appendonly yes" in script and "--appendfsync everysec" in script
    assert "--maxmemory-policy noeviction" in script
    assert prod["cache"]["volumes"] == ["redisdata:/data"]
    for name in APP_SERVICES:
        env = prod[name]["environment"]
        assert set(prod[name]["secrets"]) >= {"django_secret_key", "field_encryption_key", "jwt_private_key"}
        # No secret value in the file: only paths to secret files.
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET_KEY|ENCRYPTION_KEY|PRIVATE_KEY|TOKEN", key) and not key.startswith("TWILIO"):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), key


def test_healthchecks_everywhere_that_others_wait_on(compose: dict[str, Any]) -> None:
    prod = _services(compose, "prod")
    for name in ("proxy", "web", "worker", "beat", "db", "cache"):
        assert prod[name]["healthcheck"]["test"], name
    assert prod["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}
    for name in APP_SERVICES:
        assert prod[name]["depends_on"]["db"] == {"condition": "service_healthy"}
        assert prod[name]["depends_on"]["cache"] == {"condition": "service_healthy"}


def test_one_proxy_one_forwarded_address(compose: dict[str, Any]) -> None:
    env = _services(compose, "prod")["web"]["environment"]
    assert env["TRUSTED_PROXY_COUNT"] == "1"
    caddy = _caddy()
    # Caddy replaces any X-Forwarded-For from the client with the one address it saw unless it
    # is told to trust upstream proxies; with none trusted, exactly one hop reaches the app.
    assert "trusted_proxies" not in caddy
    assert "header_up X-Forwarded-Proto https" in caddy


def _caddy() -> str:
    """The Caddyfile without its comments."""
    return "\n".join(line for line in CADDYFILE.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_client_ip_behind_the_proxy_is_the_peer_the_proxy_saw(settings: Any) -> None:
    from django.test import RequestFactory

    from core.net import client_ip

    settings.TRUSTED_PROXY_COUNT = 1
    # What Caddy sends: the client's own X-Forwarded-For dropped, its address alone.
    request = RequestFactory().get("/", REMOTE_ADDR="172.31.10.2", HTTP_X_FORWARDED_FOR="198.51.100.23")
    assert client_ip(request) == "198.51.100.23"


def test_caddy_redirects_http_and_sends_hsts() -> None:
    caddy = _caddy()
    http_block = re.search(r"^http://\{\$SITE_ADDRESS:localhost\} \{(.*?)^\}", caddy, re.S | re.M)
    assert http_block and "redir https://{host}{uri} permanent" in http_block.group(1)
    https_block = re.search(r"^https://\{\$SITE_ADDRESS:localhost\} \{(.*?)^\}", caddy, re.S | re.M)
    assert https_block
    body = https_block.group(1)
    hsts = re.search(r'Strict-Transport-Security "max-age=(\d+); includeSubDomains', body)
    assert hsts and int(hsts.group(1)) >= 31536000
    assert "issuer {$TLS_ISSUER:internal}" in body  # a local CA certificate for localhost by default
    assert re.search(r"@internal path /metrics", body) and "respond @internal 404" in body
    assert "dynamic a" in body and "name web" in body and "port 8000" in body


def test_developer_profile_is_what_make_test_expects(compose: dict[str, Any]) -> None:
    dev = _services(compose, "dev")
    assert dev["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    assert dev["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert dev["redis"]["ports"] == ["127.0.0.1:6379:6379"]


def test_the_image_never_holds_secrets() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "secrets/" in ignored and ".env" in ignored and ".venv/" in ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in dockerfile
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK)


def _make_secrets(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    target = tmp_path / "secrets"
    subprocess.run(["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(target)], check=True, capture_output=True)
    return target


def _app_env(compose: dict[str, Any], service: str, secrets_dir: Path) -> dict[str, str]:
    """The environment Compose gives the service, with /run/secrets/<name> mapped to the files."""
    files = {name: spec["file"].removeprefix("./secrets/") for name, spec in compose["secrets"].items()}
    env: dict[str, str] = {}
    for key, value in compose["services"][service]["environment"].items():
        text = interpolate(str(value), {})
        if text.startswith("/run/secrets/"):
            text = str(secrets_dir / files[text.removeprefix("/run/secrets/")])
        env[key] = text
    return env


def test_make_secrets_creates_every_secret_the_compose_file_names(compose: dict[str, Any], tmp_path: Path) -> None:
    secrets_dir = _make_secrets(tmp_path)
    for spec in compose["secrets"].values():
        path = secrets_dir / spec["file"].removeprefix("./secrets/")
        assert path.exists(), path
    assert (secrets_dir / "jwt_private_key.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
    # Run twice: nothing is replaced.
    before = (secrets_dir / "django_secret_key").read_text()
    _make_secrets(tmp_path)
    assert (secrets_dir / "django_secret_key").read_text() == before


def test_entrypoint_builds_the_urls_from_the_password_files(tmp_path: Path) -> None:
    (tmp_path / "pg").write_text("p@ss/word:1\n")
    (tmp_path / "redis").write_text("r#dis pw\n")
    (tmp_path / "key").write_text("the-secret-key\n")
    env = {
        "PATH": os.environ["PATH"],
        "POSTGRES_PASSWORD_FILE": str(tmp_path / "pg"),
        "POSTGRES_HOST": "db",
        "REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
        "DJANGO_SECRET_KEY_FILE": str(tmp_path / "key"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_123.db").write_bytes(b"stale")
    python_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{python_dir}:{env['PATH']}"
    result = subprocess.run(
        [
            str(ROOT / "deploy" / "entrypoint.sh"),
            "sh",
            "-c",
            'printf "%s\\n%s\\n%s\\n" "$DATABASE_URL" "$REDIS_URL" "$DJANGO_SECRET_KEY"',
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    database_url, redis_url, secret_key = result.stdout.splitlines()
    assert database_url == "postgres://portal:p%40ss%2Fword%3A1@db:5432/bank_portal"
    assert redis_url == "redis://:r%23dis%20pw@cache:6379/0"
    assert secret_key == "the-secret-key"
    assert not list((tmp_path / "prom").iterdir())  # stale multiprocess files removed

    missing = subprocess.run(
        [str(ROOT / "deploy" / "entrypoint.sh"), "true"],
        env={**env, "DJANGO_SECRET_KEY_FILE": str(tmp_path / "nope")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 64 and "DJANGO_SECRET_KEY_FILE" in missing.stderr


def test_gunicorn_config_loads() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "deploy/gunicorn.conf.py",
            "--check-config",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _through_entrypoint(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`command` run by deploy/entrypoint.sh with the compose environment and nothing else of ours
    (PATH leads to this virtualenv's Python)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    clean["PATH"] = f"{Path(sys.executable).parent}:{clean.get('PATH', '')}"
    return subprocess.run(
        [str(ROOT / "deploy" / "entrypoint.sh"), *command],
        cwd=ROOT,
        env={**clean, **env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_compose_environment_passes_the_deploy_check(compose: dict[str, Any], tmp_path: Path) -> None:
    secrets_dir = _make_secrets(tmp_path)
    env = _app_env(compose, "web", secrets_dir)
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.prod"
    result = _through_entrypoint(
        [
            sys.executable,
            "manage.py",
            "check",
            "--deploy",
            "--tag",
            "security",  # the deploy checks (the app's other checks: tests/core/test_core.py)
            "--fail-level",
            "WARNING",
        ],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "System check identified no issues" in result.stdout

    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.TRUSTED_PROXY_COUNT, s.SECURE_PROXY_SSL_HEADER, s.DATABASES['default']['HOST'], "
        "s.DATABASES['default']['USER'], bool(s.DATABASES['default']['PASSWORD']), s.CACHES['default']['LOCATION'], "
        "bool(s.METRICS_TOKEN), s.SESSION_COOKIE_NAME, s.PUBLIC_BASE_URL]))"
    )
    seen = _through_entrypoint([sys.executable, "-c", probe], env, tmp_path)
    assert seen.returncode == 0, seen.stderr[-2000:]
    proxies, proto_header, db_host, db_user, db_password, redis_url, token, cookie, base = json.loads(
        seen.stdout.strip().splitlines()[-1]
    )
    assert (proxies, proto_header) == (1, ["HTTP_X_FORWARDED_PROTO", "https"])
    assert (db_host, db_user, db_password) == ("db", "portal", True)
    redis_password = (secrets_dir / "redis_password").read_text().strip()
    assert redis_url == f"redis://:{redis_password}@cache:6379/0"
    assert token and cookie == "__Host-bp_session" and base == "https://localhost"


@pytest.mark.slow
def test_an_hs512_signing_key_can_come_from_a_file(compose: dict[str, Any], tmp_path: Path) -> None:
    """JWT_SIGNING_KEY_FILE (a Docker secret) makes the mobile tokens HS512; the RSA key stays."""
    import secrets as token_secrets

    secrets_dir = _make_secrets(tmp_path)
    key_file = tmp_path / "jwt_signing_key"
    key_file.write_text(token_secrets.token_urlsafe(64) + "\n")
    env = {**_app_env(compose, "web", secrets_dir), "JWT_SIGNING_KEY_FILE": str(key_file)}
    probe = (
        "import django; django.setup(); from accounts import tokens; ring = tokens.keyring(); "
        "print(ring.algorithm, len(ring.hmac_keys), bool(ring.public_keys))"
    )
    seen = _through_entrypoint([sys.executable, "-c", probe], env, tmp_path)
    assert seen.returncode == 0, seen.stderr[-2000:]
    assert seen.stdout.strip().splitlines()[-1] == "HS512 1 True"
