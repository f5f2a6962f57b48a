"""Issue 16, passwords: the breached-password check (offline list, import command, optional range
API against a local fake), the zxcvbn strength validator and meter markup, and the after-login
"change your breached password" flow driven by the session flag."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import random
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from accounts import breached, passwords
from accounts.models import User
from accounts.passwords import PASSWORD_CHANGE_REQUIRED_SESSION_KEY, is_breached, require_password_change
from accounts.validators import StrengthValidator
from audit.events import EventType
from audit.models import AuditEvent

STRONG_BUT_BREACHED = "a long and unusual passphrase"  # strong by zxcvbn; "breached" in the test lists
STRONG = "another strong passphrase"
ROOT = Path(__file__).resolve().parents[2]


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


def write_list(path: Path, passwords_: list[str], *, noise: int = 0, seed: int = 1, count: int = 7) -> Path:
    """A Pwned-Passwords-style file: the given passwords plus `noise` random hashes, unsorted."""
    rng = random.Random(seed)
    lines = [f"{sha1_hex(p)}:{count}" for p in passwords_]
    lines += [f"{rng.randbytes(20).hex().upper()}:{rng.randint(1, 99)}" for _ in range(noise)]
    rng.shuffle(lines)
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


@pytest.fixture
def breached_file(tmp_path: Path) -> Iterator[Path]:
    """BREACHED_PASSWORDS_FILE holding STRONG_BUT_BREACHED among 2,000 other hashes."""
    source = write_list(tmp_path / "list.txt", [STRONG_BUT_BREACHED], noise=2000)
    out = tmp_path / "breached.bin"
    call_command("import_breached_passwords", str(source), "--output", str(out), stdout=io.StringIO())
    with override_settings(BREACHED_PASSWORDS_FILE=str(out)):
        yield out


# --- The on-disk structure ---------------------------------------------------------------------


def test_prefix_file_finds_every_listed_hash_and_nothing_else(tmp_path):
    rng = random.Random(5)
    present = [rng.randbytes(20) for _ in range(3000)]
    absent = [rng.randbytes(20) for _ in range(3000)]
    lines = [d.hex().upper().encode() + b":3\n" for d in present]
    lines += lines[:500]  # duplicates collapse
    rng.shuffle(lines)
    out = tmp_path / "b.bin"
    # Small chunks: several overlapping runs, merged.
    result = breached.build(lines, out, chunk_records=256)
    assert result.runs > 1 and result.records == 3000 and result.lines == 3500
    view = breached.PrefixFile(out)
    assert view.count == 3000 and view.width == 8
    assert out.stat().st_size == breached.HEADER.size + 3000 * 8
    assert all(view.contains_digest(d) for d in present)
    assert not any(view.contains_digest(d) for d in absent)
    body = out.read_bytes()[breached.HEADER.size :]
    records = [body[i : i + 8] for i in range(0, len(body), 8)]
    assert records == sorted(set(records))


def test_sorted_input_is_concatenated_and_min_count_filters(tmp_path):
    rng = random.Random(6)
    digests = sorted(rng.randbytes(20) for _ in range(1000))
    lines = [d.hex().upper().encode() + (b":1\n" if i % 2 else b":5\n") for i, d in enumerate(digests)]
    out = tmp_path / "sorted.bin"
    result = breached.build(lines, out, chunk_records=100, min_count=2)
    assert result.runs == 5 and result.records == 500 and result.skipped_below_min_count == 500
    view = breached.PrefixFile(out)
    assert view.contains_digest(digests[0]) and not view.contains_digest(digests[1])
    assert view.contains_digest(digests[998]) and not view.contains_digest(digests[999])


def test_empty_list_and_damaged_files(tmp_path):
    empty = tmp_path / "empty.bin"
    breached.build([b"\n", b""], empty)
    assert breached.PrefixFile(empty).count == 0
    assert not breached.PrefixFile(empty).contains_digest(b"\x00" * 20)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(breached.HEADER.pack(breached.MAGIC, 8, 0, 3) + b"\x00" * 16)
    with pytest.raises(breached.BreachedListError, match="truncated or damaged"):
        breached.PrefixFile(truncated)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(breached.BreachedListError, match="not a breached-password file"):
        breached.PrefixFile(foreign)


def test_a_replaced_file_is_picked_up_by_the_next_lookup(tmp_path):
    out = tmp_path / "live.bin"
    breached.build([f"{sha1_hex('first list entry')}:1".encode()], out)
    with override_settings(BREACHED_PASSWORDS_FILE=str(out)):
        assert is_breached("first list entry") and not is_breached("second list entry")
        breached.build([f"{sha1_hex('second list entry')}:1".encode()], out)
        assert is_breached("second list entry") and not is_breached("first list entry")


def test_the_shipped_list_is_exactly_what_its_script_generates(tmp_path):
    spec = importlib.util.spec_from_file_location("make_shipped", ROOT / "scripts" / "make_shipped_breached_list.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    regenerated = tmp_path / "shipped.bin"
    module.main(regenerated)
    shipped = Path(settings.BREACHED_PASSWORDS_FILE)
    assert shipped == passwords.SHIPPED_BREACHED_FILE
    assert regenerated.read_bytes() == shipped.read_bytes()
    # Out of the box: Django's common passwords, as written and capitalised, are breached.
    assert is_breached("iloveyou") and is_breached("Iloveyou") and is_breached("qwertyuiop")
    assert not is_breached(STRONG)


# --- The import command ---------------------------------------------------------------------------


def test_import_command_builds_the_configured_file_from_a_generated_list(tmp_path):
    source = write_list(tmp_path / "pwned.txt", [STRONG_BUT_BREACHED, "second breached one"], noise=20_000)
    out = tmp_path / "var" / "breached.bin"
    stdout = io.StringIO()
    with override_settings(BREACHED_PASSWORDS_FILE=str(out)):
        assert not is_breached(STRONG_BUT_BREACHED)  # missing file: logged, not breached (and check E001)
        call_command("import_breached_passwords", str(source), "--chunk-records", "4096", stdout=stdout)
        assert is_breached(STRONG_BUT_BREACHED) and is_breached("second breached one")
        assert not is_breached(STRONG)
    assert "20,002 breached passwords from 20,002 lines" in stdout.getvalue()
    assert out.stat().st_size == breached.HEADER.size + 20_002 * 8


def test_import_command_reads_gzip_and_applies_min_count(tmp_path):
    text = f"{sha1_hex('seen once only here')}:1\n{sha1_hex('seen many times here')}:1,234\n"
    source = tmp_path / "pwned.txt.gz"
    source.write_bytes(gzip.compress(text.encode()))
    out = tmp_path / "b.bin"
    call_command(
        "import_breached_passwords", str(source), "--output", str(out), "--min-count", "2", stdout=io.StringIO()
    )
    with override_settings(BREACHED_PASSWORDS_FILE=str(out)):
        assert is_breached("seen many times here") and not is_breached("seen once only here")


def test_import_command_refuses_bad_input_and_keeps_the_old_file(tmp_path, breached_file):
    before = breached_file.read_bytes()
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{sha1_hex('x')}:3\nnot-a-hash:4\n")
    with pytest.raises(CommandError, match="line 2: expected 40 hexadecimal characters"):
        call_command("import_breached_passwords", str(bad), "--output", str(breached_file))
    assert breached_file.read_bytes() == before
    assert not list(breached_file.parent.glob(".breached-build-*"))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_breached_passwords", str(tmp_path / "missing.txt"), "--output", str(breached_file))
    # Never over the list shipped in the repository by accident.
    with (
        override_settings(BREACHED_PASSWORDS_FILE=str(passwords.SHIPPED_BREACHED_FILE)),
        pytest.raises(CommandError, match="shipped in the repository"),
    ):
        call_command("import_breached_passwords", str(bad))


def test_system_check_reports_an_unusable_file(tmp_path):
    from accounts.checks import breached_passwords_file

    assert breached_passwords_file() == []
    with override_settings(BREACHED_PASSWORDS_FILE=str(tmp_path / "nope.bin")):
        [error] = breached_passwords_file()
        assert error.id == "accounts.E001"


# --- Refused at sign-up, change and reset -----------------------------------------------------


def _signup(client: Any, pw: str, email: str = "new.customer@example.com") -> Any:
    return client.post(
        "/accounts/signup/",
        {"full_name": "New Customer", "email": email, "new_password1": pw, "new_password2": pw},
    )


BREACH_MESSAGE = b"This password has appeared in a data breach elsewhere"


def test_signup_refuses_a_breached_password_with_the_reason(client, breached_file):
    refused = _signup(client, STRONG_BUT_BREACHED)
    assert refused.status_code == 200 and BREACH_MESSAGE in refused.content
    assert not User.objects.filter(email="new.customer@example.com").exists()
    assert not AuditEvent.objects.filter(type=EventType.SIGNUP).exists()
    assert _signup(client, STRONG).status_code == 302
    assert User.objects.filter(email="new.customer@example.com").exists()


def test_password_change_refuses_a_breached_password(client, user, login, password, breached_file):
    login(client, user)
    refused = client.post(
        "/accounts/password/change/",
        {"old_password": password, "new_password1": STRONG_BUT_BREACHED, "new_password2": STRONG_BUT_BREACHED},
    )
    assert refused.status_code == 200 and BREACH_MESSAGE in refused.content
    user.refresh_from_db()
    assert user.check_password(password)
    assert not AuditEvent.objects.filter(type=EventType.PASSWORD_CHANGED).exists()


def test_password_reset_refuses_a_breached_password(client, user, run_outbox, breached_file):
    from django.core import mail

    client.post("/accounts/password/reset/", {"email": user.email})
    run_outbox()
    link = re.search(r"https://portal\.bank\.test(/accounts/password/reset/\S+)", str(mail.outbox[-1].body))
    assert link
    form_page = client.get(link.group(1), follow=True)
    url = form_page.redirect_chain[-1][0]
    refused = client.post(url, {"new_password1": STRONG_BUT_BREACHED, "new_password2": STRONG_BUT_BREACHED})
    assert refused.status_code == 200 and BREACH_MESSAGE in refused.content
    assert not AuditEvent.objects.filter(type=EventType.PASSWORD_RESET_COMPLETED).exists()
    assert client.post(url, {"new_password1": STRONG, "new_password2": STRONG}).status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)


def test_the_service_refuses_too_whatever_the_entry_point(breached_file):
    from accounts.services import user_create

    with pytest.raises(ValidationError) as refused:
        user_create(email="cli@example.com", password=STRONG_BUT_BREACHED)
    assert refused.value.error_list[0].code == "password_breached"
    assert not User.objects.filter(email="cli@example.com").exists()


# --- The optional online check (k-anonymity range API) against a local fake ---------------------


class FakeRangeAPI:
    """api.pwnedpasswords.com/range/{prefix} as documented: SUFFIX:COUNT lines; padding adds :0 lines."""

    def __init__(self) -> None:
        self.hashes: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append({"path": self.path, "headers": dict(self.headers.items())})
                if api.status != 200:
                    self.send_response(api.status)
                    self.end_headers()
                    return
                prefix = self.path.rsplit("/", 1)[-1]
                lines = [f"{h[5:]}:{c}" for h, c in api.hashes.items() if h.startswith(prefix)]
                if self.headers.get("Add-Padding") == "true":
                    lines += [f"{random.Random(i).randbytes(18).hex().upper()[:35]}:0" for i in range(50)]
                body = "\r\n".join(lines).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/range/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def range_api() -> Iterator[FakeRangeAPI]:
    api = FakeRangeAPI()
    with override_settings(BREACHED_PASSWORDS_ONLINE=True, BREACHED_PASSWORDS_API_URL=api.url):
        yield api
    api.close()


def test_online_check_is_off_by_default_and_sends_nothing():
    api = FakeRangeAPI()
    try:
        api.hashes[sha1_hex(STRONG_BUT_BREACHED)] = 10
        with override_settings(BREACHED_PASSWORDS_API_URL=api.url):
            assert settings.BREACHED_PASSWORDS_ONLINE is False
            assert not is_breached(STRONG_BUT_BREACHED)
        assert api.requests == []
    finally:
        api.close()


def test_online_check_sends_only_five_hex_characters_with_padding(client, range_api):
    full = sha1_hex(STRONG_BUT_BREACHED)
    range_api.hashes[full] = 42
    refused = _signup(client, STRONG_BUT_BREACHED)
    assert refused.status_code == 200 and BREACH_MESSAGE in refused.content
    [sent] = [r for r in range_api.requests if full[:5] in r["path"]]
    assert sent["path"] == f"/range/{full[:5]}"
    assert sent["headers"].get("Add-Padding") == "true"
    everything_sent = sent["path"] + repr(sent["headers"])
    assert full[5:] not in everything_sent and full[5:].lower() not in everything_sent
    assert STRONG_BUT_BREACHED not in everything_sent


def test_padding_entries_and_unlisted_suffixes_are_not_breaches(range_api):
    full = sha1_hex(STRONG)
    range_api.hashes[full[:5] + "0" * 35] = 3  # same prefix, another suffix
    assert not is_breached(STRONG)
    range_api.hashes[full] = 0  # as padding lines look
    assert not is_breached(STRONG)
    range_api.hashes[full] = 1
    assert is_breached(STRONG)


def test_online_errors_fall_back_to_the_offline_list(range_api, breached_file, caplog):
    range_api.status = 503
    assert is_breached(STRONG_BUT_BREACHED)  # offline hit; the API is not even asked
    assert range_api.requests == []
    assert not is_breached(STRONG)  # asked, failed: the offline answer stands
    assert len(range_api.requests) == 1
    assert "range API unavailable" in caplog.text


def test_online_timeout_falls_back_to_offline_within_the_timeout(client):
    # A server that accepts connections and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/range/"
    try:
        with override_settings(
            BREACHED_PASSWORDS_ONLINE=True, BREACHED_PASSWORDS_API_URL=url, BREACHED_PASSWORDS_API_TIMEOUT=0.3
        ):
            assert passwords.in_online_list(STRONG) is None
            assert _signup(client, STRONG).status_code == 302  # the sign-up goes through
    finally:
        silent.close()


def test_online_unreachable_host_falls_back_to_offline():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    with override_settings(
        BREACHED_PASSWORDS_ONLINE=True, BREACHED_PASSWORDS_API_URL=f"http://127.0.0.1:{port}/range/"
    ):
        assert passwords.in_online_list(STRONG) is None
        assert not is_breached(STRONG)
        assert is_breached("iloveyou")  # the shipped offline list still answers


# --- Strength (zxcvbn) -------------------------------------------------------------------------


def test_a_guessable_password_is_refused_with_zxcvbns_advice(client):
    refused = _signup(client, "monkeymonkey12")
    assert refused.status_code == 200
    assert b"This password is too easy to guess (strength 1 of 4, at least 3 needed)." in refused.content
    assert b"Repeats like" in refused.content  # zxcvbn's warning, as the meter shows it
    assert not User.objects.exists()


def test_strength_counts_the_persons_email_and_name_as_guessable():
    person = User(email="margarethe.vanderbilt@example.com", full_name="Margarethe Vanderbilt")
    validator = StrengthValidator(min_score=3)
    validator.validate("margarethe2024!")  # strong enough for a stranger
    with pytest.raises(ValidationError) as refused:
        validator.validate("margarethe2024!", person)
    assert refused.value.code == "password_too_weak"
    assert passwords.strength_user_inputs(person.email, person.full_name) == [
        "margarethe.vanderbilt@example.com",
        "margarethe.vanderbilt",
        "margarethe",
        "vanderbilt",
        "example",
        "com",
        "margarethe vanderbilt",
    ]


def test_the_threshold_is_a_setting():
    validators = [
        {"NAME": "accounts.validators.StrengthValidator", "OPTIONS": {"min_score": 4}},
    ]
    with override_settings(AUTH_PASSWORD_VALIDATORS=validators):
        assert passwords.min_strength_score() == 4
        with pytest.raises(ValidationError):
            validate_password("summer2024summer")  # score 3
    validate_password("summer2024summer")


def test_zxcvbn_scores_dates_against_this_year_like_the_browser(time_machine):
    from zxcvbn import scoring

    time_machine.move_to("2031-06-01T12:00:00Z")
    recent = passwords.password_strength("kestrel2031").score
    assert scoring.REFERENCE_YEAR == 2031  # zxcvbn.js uses new Date().getFullYear()
    time_machine.move_to("2017-06-01T12:00:00Z")
    assert passwords.password_strength("kestrel2031").score >= recent


def test_every_new_password_field_carries_the_meter(client, user, login, run_outbox):
    from django.core import mail

    page = client.get("/accounts/signup/").content.decode()
    field = re.search(r"<input[^>]*name=\"new_password1\"[^>]*>", page)
    assert field
    tag = field.group(0)
    assert 'autocomplete="new-password"' in tag and "data-strength-meter" in tag
    assert 'data-strength-min-score="3"' in tag and 'data-strength-fields="id_email id_full_name"' in tag
    assert "onpaste" not in page and "readonly" not in tag  # paste and password managers welcome
    assert 'aria-live="polite"' in page and 'id="id_new_password1-strength-text"' in page
    assert "/static/vendor/zxcvbn/zxcvbn.js" in page and "/static/js/password-strength.js" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)

    login(client, user)
    change = client.get("/accounts/password/change/").content.decode()
    assert "data-strength-user-inputs=" in change and user.email in change
    assert 'autocomplete="current-password"' in change  # the old password is not metered

    other = type(client)(REMOTE_ADDR="203.0.113.77")
    other.post("/accounts/password/reset/", {"email": user.email})
    run_outbox()
    link = re.search(r"https://portal\.bank\.test(/accounts/password/reset/\S+)", str(mail.outbox[-1].body))
    assert link
    reset = other.get(link.group(1), follow=True).content.decode()
    assert "data-strength-meter" in reset and "password-strength.js" in reset


def test_a_reset_link_naming_nobody_still_answers_with_the_page(client):
    # Django's view builds the (metered) form even when the link's user does not exist.
    import uuid

    from django.utils.http import urlsafe_base64_encode

    nobody = urlsafe_base64_encode(str(uuid.uuid4()).encode())
    response = client.get(f"/accounts/password/reset/{nobody}/abc-def/", follow=True)
    assert response.status_code == 200 and b"can no longer be used" in response.content


def test_the_vendored_zxcvbn_is_the_npm_build_with_its_licence():
    vendor = ROOT / "static" / "vendor" / "zxcvbn"
    code = (vendor / "zxcvbn.js").read_text()
    assert code.startswith("(function(f){") and "sourceMappingURL" not in code
    assert "Dan Wheeler and Dropbox" in (vendor / "LICENSE.txt").read_text()


# --- After login: a breached current password must be changed ---------------------------------------


def _flag(client: Any, value: Any = None) -> None:
    session = client.session
    session[PASSWORD_CHANGE_REQUIRED_SESSION_KEY] = value if value is not None else timezone.now().timestamp()
    session.save()


@pytest.mark.parametrize("flag", ["timestamp", "true"])
def test_flagged_session_is_sent_to_change_the_password_until_it_does(
    client, user, login, password, flag, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    assert login(client, user).status_code == 302
    _flag(client, True if flag == "true" else None)
    time_machine.shift(5)

    for path in ("/", "/payments/", "/security/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/password/change/", path
    assert client.post("/payments/new/", {}).status_code == 302
    page = client.get("/accounts/password/change/")
    assert page.status_code == 200
    assert b"The password you signed in with" in page.content and b"data breaches" in page.content
    assert client.get("/static/js/password-toggle.js").status_code == 200

    new = "a fresh and unlisted passphrase"
    changed = client.post(
        "/accounts/password/change/", {"old_password": password, "new_password1": new, "new_password2": new}
    )
    assert changed.status_code == 302
    time_machine.shift(1)
    assert client.get("/").status_code == 200
    assert PASSWORD_CHANGE_REQUIRED_SESSION_KEY not in client.session
    assert b"The password you signed in with" not in client.get("/accounts/password/change/").content
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_CHANGED, user=user).count() == 1


def test_flagged_session_can_still_sign_out(client, user, login):
    login(client, user)
    _flag(client)
    out = client.post("/accounts/logout/")
    assert out.status_code == 302 and out["Location"].startswith("/accounts/login/")
    assert client.get("/").status_code == 302 and "/accounts/login/" in client.get("/")["Location"]


def test_a_password_changed_before_the_flag_does_not_clear_it(client, user, login):
    user.password_changed_at = timezone.now()
    user.save(update_fields=["password_changed_at"])
    login(client, user)
    _flag(client)
    assert client.get("/")["Location"] == "/accounts/password/change/"


def test_require_password_change_sets_the_flag_the_middleware_reads(client, user, login):
    login(client, user)
    session = client.session

    class _Request:
        pass

    request = _Request()
    request.session = session  # type: ignore[attr-defined]
    require_password_change(request)  # type: ignore[arg-type]
    session.save()
    assert passwords.password_change_required(request)  # type: ignore[arg-type]
    assert client.get("/")["Location"] == "/accounts/password/change/"
