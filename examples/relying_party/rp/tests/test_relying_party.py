"""The relying party against a fake provider: sign-in with PKCE, ID token checks, back-channel logout.

Run with `python examples/relying_party/manage.py test rp` (the portal's suite runs it too, see
tests/examples/test_relying_party.py).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import TestCase, override_settings

from rp import oidc
from rp.models import SeenLogoutToken, SignIn
from rp.tests.fake_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeProvider, logout_token, sign

ACR_MFA = "urn:bank-portal:acr:mfa"


@override_settings(
    OIDC_ISSUER=ISSUER,
    OIDC_CLIENT_ID=CLIENT_ID,
    OIDC_CLIENT_SECRET=CLIENT_SECRET,
    RP_BASE_URL="http://testserver",
    OIDC_POST_LOGOUT_REDIRECT_URI="http://testserver/",
    RP_NAME="Mortgage app",
)
class RelyingPartyTests(TestCase):
    def setUp(self) -> None:
        oidc.reset()
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.mock.start()
        self.addCleanup(self.mock.stop)
        self.addCleanup(self.mock.reset)
        self.addCleanup(oidc.reset)
        self.provider = FakeProvider(self.mock)

    # --- helpers -------------------------------------------------------------------------------

    def start_sign_in(self, **form: str) -> str:
        response = self.client.post("/login/", form)
        self.assertEqual(response.status_code, 302)
        location = response["Location"]
        self.assertTrue(location.startswith(f"{ISSUER}/o/authorize/"), location)
        return location

    def sign_in(self, *, level: str | None = None, **claims: Any) -> Any:
        authorize = self.start_sign_in(**({"level": level} if level else {}))
        answer = self.provider.authorize(authorize, **claims)
        return self.client.get("/oidc/callback/", answer)

    def send_logout(self, token: str) -> Any:
        return self.client.post("/oidc/backchannel-logout/", {"logout_token": token})

    def assert_signed_in(self) -> None:
        page = self.client.get("/")
        self.assertContains(page, "You are signed in to Mortgage app")

    def assert_signed_out(self) -> None:
        page = self.client.get("/")
        self.assertContains(page, "You are not signed in.")

    # --- sign-in -------------------------------------------------------------------------------

    def test_authorization_request_uses_pkce_s256_state_and_nonce(self) -> None:
        query = parse_qs(urlsplit(self.start_sign_in()).query)
        self.assertEqual(query["response_type"], ["code"])
        self.assertEqual(query["client_id"], [CLIENT_ID])
        self.assertEqual(query["redirect_uri"], ["http://testserver/oidc/callback/"])
        self.assertEqual(query["code_challenge_method"], ["S256"])
        self.assertEqual(len(query["code_challenge"][0]), 43)
        self.assertEqual(set(query["scope"][0].split()), {"openid", "email"})
        self.assertGreaterEqual(len(query["state"][0]), 20)
        self.assertGreaterEqual(len(query["nonce"][0]), 20)
        self.assertNotIn("acr_values", query)

    def test_sign_in_shows_the_claims_and_opens_a_new_session(self) -> None:
        answer = self.provider.authorize(self.start_sign_in())
        before = self.client.session.session_key
        response = self.client.get("/oidc/callback/", answer)
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        page = self.client.get("/")
        self.assertContains(page, "Welcome, customer@example.com")
        self.assertContains(page, "5b0b3f5e-0000-4000-8000-000000000001")
        self.assertContains(page, "pwd, otp")
        self.assertContains(page, ACR_MFA)
        self.assertContains(page, "portal-session-1")
        self.assertContains(page, "UTC")
        sign_in = SignIn.objects.get()
        self.assertEqual((sign_in.sid, sign_in.sub, sign_in.issuer), ("portal-session-1", sign_in.sub, ISSUER))
        self.assertNotEqual(sign_in.session_key, before)
        # The page is strict about scripts and styles too.
        self.assertIn("default-src 'none'", page["Content-Security-Policy"])
        self.assertIn(f"form-action 'self' {ISSUER}", page["Content-Security-Policy"])

    def test_mfa_button_asks_for_the_mfa_level(self) -> None:
        query = parse_qs(urlsplit(self.start_sign_in(level="mfa")).query)
        self.assertEqual(query["acr_values"], [ACR_MFA])

    def test_mfa_sign_in_refused_when_the_provider_answers_a_lower_level(self) -> None:
        response = self.sign_in(level="mfa", acr="urn:bank-portal:acr:password", amr=["pwd"])
        self.assertContains(response, "did not confirm a second factor", status_code=403)
        self.assertFalse(SignIn.objects.exists())
        self.assert_signed_out()

    def test_plain_sign_in_accepts_the_password_level(self) -> None:
        self.sign_in(acr="urn:bank-portal:acr:password", amr=["pwd"])
        page = self.client.get("/")
        self.assertContains(page, "urn:bank-portal:acr:password")
        self.assertNotContains(page, "with a second factor")

    def test_the_code_is_exchanged_once_and_a_replayed_callback_is_refused(self) -> None:
        answer = self.provider.authorize(self.start_sign_in())
        self.client.get("/oidc/callback/", answer)
        again = self.client.get("/oidc/callback/", answer)
        self.assertEqual(again.status_code, 400)
        self.assertEqual(SignIn.objects.count(), 1)

    def test_a_callback_with_a_foreign_state_is_refused(self) -> None:
        answer = self.provider.authorize(self.start_sign_in())
        response = self.client.get("/oidc/callback/", {"code": answer["code"], "state": "forged-state-value"})
        self.assertContains(response, "Start again", status_code=400)
        self.assertFalse(SignIn.objects.exists())

    def test_a_response_naming_another_issuer_is_refused(self) -> None:
        answer = self.provider.authorize(self.start_sign_in())
        response = self.client.get("/oidc/callback/", {**answer, "iss": "http://evil.test"})
        self.assertContains(response, "unexpected issuer", status_code=400)
        self.assertFalse(SignIn.objects.exists())

    def test_a_provider_that_sends_iss_must_send_it(self) -> None:
        self.mock.reset()
        oidc.reset()
        self.provider = FakeProvider(self.mock, sends_iss=True)
        answer = self.provider.authorize(self.start_sign_in())
        self.assertEqual(answer["iss"], ISSUER)
        without_iss = {k: v for k, v in answer.items() if k != "iss"}
        refused = self.client.get("/oidc/callback/", without_iss)
        self.assertContains(refused, "does not name its issuer", status_code=400)
        self.assertFalse(SignIn.objects.exists())
        # The same answer with its iss goes through (the code was not spent by the refusal).
        self.assertRedirects(self.client.get("/oidc/callback/", answer), "/", fetch_redirect_response=False)
        self.assert_signed_in()

    def test_declined_consent_is_explained(self) -> None:
        query = parse_qs(urlsplit(self.start_sign_in()).query)
        response = self.client.get("/oidc/callback/", {"error": "access_denied", "state": query["state"][0]})
        self.assertContains(response, "You did not allow Mortgage app to sign you in.", status_code=400)

    def _refused(self, **claims: Any) -> None:
        response = self.sign_in(**claims)
        self.assertContains(response, "could not be verified", status_code=400)
        self.assertFalse(SignIn.objects.exists())
        self.assert_signed_out()

    def test_id_token_with_wrong_nonce_is_refused(self) -> None:
        self._refused(nonce="some-other-nonce")

    def test_id_token_without_nonce_is_refused(self) -> None:
        self._refused(nonce=None)

    def test_id_token_for_another_audience_is_refused(self) -> None:
        self._refused(aud="reporting-tool")

    def test_id_token_from_another_issuer_is_refused(self) -> None:
        self._refused(iss="http://evil.test")

    def test_expired_id_token_is_refused(self) -> None:
        now = int(time.time())
        self._refused(iat=now - 600, exp=now - 120)

    def test_id_token_without_at_hash_is_refused(self) -> None:
        self._refused(at_hash=None)

    def test_id_token_whose_at_hash_does_not_match_the_access_token_is_refused(self) -> None:
        self.provider.corrupt_at_hash = True
        self._refused()

    def test_id_token_signed_by_an_unpublished_key_is_refused(self) -> None:
        self.provider.id_token_kid = "k2"  # noqa: S105 (a key id)
        self._refused()
        # Fetched once, and once more for the unknown kid (a rotation would be picked up), then refused.
        self.assertEqual(self.provider.jwks_fetches, 2)

    def test_unknown_kids_refetch_the_jwks_at_most_once_a_minute(self) -> None:
        self.sign_in()
        self.assertEqual(self.provider.jwks_fetches, 1)
        for n in range(5):
            self.assertEqual(self.send_logout(sign(logout_token(jti=f"j{n}"), kid=f"made-up-{n}")).status_code, 400)
        self.assertEqual(self.provider.jwks_fetches, 2)
        with time_machine.travel(time.time() + 61, tick=False):
            self.send_logout(sign(logout_token(jti="later"), kid="made-up-later"))
            self.assertEqual(self.provider.jwks_fetches, 3)

    def test_a_rotated_key_is_picked_up_from_the_jwks(self) -> None:
        self.sign_in()
        self.client.post("/logout/")
        self.provider.published = ["k1", "k2"]
        self.provider.id_token_kid = "k2"  # noqa: S105 (a key id)
        self.sign_in()
        self.assert_signed_in()
        self.assertEqual(self.provider.jwks_fetches, 2)

    # --- RP-initiated logout -------------------------------------------------------------------

    def test_sign_out_ends_the_local_session_and_goes_to_the_end_session_endpoint(self) -> None:
        self.sign_in()
        id_token = self.client.session["rp_id_token"]
        response = self.client.post("/logout/")
        self.assertEqual(response.status_code, 302)
        location = urlsplit(response["Location"])
        self.assertEqual(f"{location.scheme}://{location.netloc}{location.path}", f"{ISSUER}/o/logout/")
        query = parse_qs(location.query)
        self.assertEqual(query["id_token_hint"], [id_token])
        self.assertEqual(query["post_logout_redirect_uri"], ["http://testserver/"])
        self.assertEqual(query["client_id"], [CLIENT_ID])
        self.assertFalse(SignIn.objects.exists())
        back = self.client.get("/", {"state": query["state"][0]})
        self.assertContains(back, "You are signed out of Mortgage app and of the bank.")
        self.assertContains(back, "You are not signed in.")
        # A state that is not ours says nothing of the kind.
        self.assertNotContains(self.client.get("/", {"state": "forged"}), "You are signed out")

    def test_sign_out_needs_the_csrf_token(self) -> None:
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        self.assertEqual(strict.post("/logout/").status_code, 403)
        self.assertEqual(strict.post("/login/").status_code, 403)

    # --- back-channel logout -------------------------------------------------------------------

    def test_back_channel_logout_ends_the_matching_session_at_once(self) -> None:
        self.sign_in()
        self.assert_signed_in()
        session_key = SignIn.objects.get().session_key
        response = self.send_logout(sign(logout_token(), header={"typ": "logout+jwt"}))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Cache-Control"], "no-store")
        self.assertFalse(Session.objects.filter(session_key=session_key).exists())
        self.assertIsNotNone(SignIn.objects.get(session_key=session_key).ended_at)
        page = self.client.get("/")
        self.assertContains(page, "You are not signed in.")
        self.assertContains(page, "The bank ended your session here")
        # Once: Django drops the cookie of an empty session, so the next page is a plain signed-out one.
        self.assertNotContains(self.client.get("/"), "The bank ended your session here")

    def test_ended_sign_ins_are_purged_a_day_later(self) -> None:
        self.sign_in()
        self.send_logout(sign(logout_token()))
        with time_machine.travel(time.time() + 86_400 + 60, tick=False):
            self.send_logout(sign(logout_token(sid="someone-else", sub="someone-else")))
        self.assertFalse(SignIn.objects.exists())

    def test_a_browser_without_an_ended_session_sees_no_notice(self) -> None:
        self.client.cookies[settings.SESSION_COOKIE_NAME] = "made-up-session-key"
        page = self.client.get("/")
        self.assertContains(page, "You are not signed in.")
        self.assertNotContains(page, "The bank ended your session here")

    def test_back_channel_logout_by_sub_alone_ends_every_session_of_the_user(self) -> None:
        self.sign_in()
        laptop = self.client
        self.client = self.client_class()  # a second browser of the same user, another provider session
        self.sign_in(sid="portal-session-2")
        self.assertEqual(SignIn.objects.count(), 2)
        self.assertEqual(self.send_logout(sign(logout_token(sid=None))).status_code, 200)
        self.assertFalse(SignIn.objects.filter(ended_at__isnull=True).exists())
        self.assertFalse(Session.objects.filter(session_key__in=[laptop.session.session_key]).exists())
        self.assert_signed_out()
        self.client = laptop
        self.assert_signed_out()

    def test_back_channel_logout_leaves_other_sessions_alone(self) -> None:
        self.sign_in()
        self.assertEqual(self.send_logout(sign(logout_token(sid="another-portal-session"))).status_code, 200)
        self.assert_signed_in()

    def test_a_sign_in_after_the_logout_token_was_issued_is_not_ended_by_it(self) -> None:
        token = sign(logout_token(iat=int(time.time()) - 90, exp=int(time.time()) + 60))
        self.sign_in()
        self.assertEqual(self.send_logout(token).status_code, 200)
        self.assert_signed_in()

    def _logout_refused(self, token: str, reason: str) -> None:
        self.sign_in()
        response = self.send_logout(token)
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"], "invalid_request")
        self.assertIn(reason, response.json()["error_description"])
        self.assert_signed_in()

    def test_logout_token_is_refused_when_replayed(self) -> None:
        token = sign(logout_token(sid="another-portal-session"))
        self.assertEqual(self.send_logout(token).status_code, 200)
        self._logout_refused(token, "already used")
        self.assertEqual(SeenLogoutToken.objects.count(), 1)

    def test_logout_token_with_a_bad_signature_is_refused(self) -> None:
        token = sign(logout_token())
        head, _payload, signature = token.split(".")
        forged = sign(logout_token(sid="other"))
        self._logout_refused(f"{head}.{forged.split('.')[1]}.{signature}", "signature")

    def test_logout_token_signed_by_an_unknown_key_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(), kid="k3"), "signature")

    def test_logout_token_with_alg_none_is_refused(self) -> None:
        import base64
        import json

        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        self._logout_refused(f"{part({'alg': 'none', 'kid': 'k1'})}.{part(logout_token())}.", "signature")

    def test_logout_token_for_another_audience_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(aud="reporting-tool")), "aud")

    def test_logout_token_from_another_issuer_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(iss="http://evil.test")), "iss")

    def test_logout_token_without_iat_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(iat=None)), "iat")

    def test_logout_token_issued_in_the_future_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(iat=int(time.time()) + 600)), "iat")

    def test_expired_logout_token_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(iat=int(time.time()) - 900, exp=int(time.time()) - 300)), "exp")

    def test_logout_token_without_jti_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(jti=None)), "jti")

    def test_logout_token_without_the_logout_event_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(events={"urn:other": {}})), "events")

    def test_logout_token_whose_event_is_not_an_object_is_refused(self) -> None:
        self._logout_refused(
            sign(logout_token(events={"http://schemas.openid.net/event/backchannel-logout": "yes"})), "events"
        )

    def test_logout_token_with_a_nonce_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(nonce="n")), "nonce")

    def test_logout_token_without_sid_and_sub_is_refused(self) -> None:
        self._logout_refused(sign(logout_token(sid=None, sub=None)), "sid")

    def test_an_id_token_typed_token_or_access_token_is_not_a_logout_token(self) -> None:
        self._logout_refused(sign(logout_token(), header={"typ": "at+jwt"}), "not a logout token")

    def test_garbage_is_refused_without_an_error_page(self) -> None:
        self._logout_refused("not-a-jwt", "not a signed JWT")
        for junk in ("a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "...."):
            response = self.send_logout(junk)
            self.assertEqual(response.status_code, 400, junk)
        self.assertEqual(self.client.post("/oidc/backchannel-logout/", {}).status_code, 400)
        self.assertEqual(self.client.get("/oidc/backchannel-logout/").status_code, 405)

    def test_seen_jti_are_forgotten_once_the_token_could_no_longer_be_used(self) -> None:
        token = sign(logout_token(sid="another-portal-session"))
        self.assertEqual(self.send_logout(token).status_code, 200)
        with time_machine.travel(time.time() + 3600, tick=False):
            self.assertEqual(self.send_logout(sign(logout_token(sid="x"))).status_code, 200)
            self.assertEqual(SeenLogoutToken.objects.count(), 1)
            # ...and the old token itself is refused for its exp, not accepted again.
            self.assertEqual(self.send_logout(token).status_code, 400)

    def test_logout_endpoint_says_so_when_the_keys_cannot_be_fetched(self) -> None:
        import requests

        self.mock.remove(responses.GET, f"{ISSUER}/.well-known/jwks.json")
        self.mock.add(responses.GET, f"{ISSUER}/.well-known/jwks.json", body=requests.ConnectionError("down"))
        response = self.send_logout(sign(logout_token()))
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"], "temporarily_unavailable")
