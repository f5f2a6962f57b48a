"""The second-factor stages of the login pipeline (accounts/pipeline.py runs them from settings.LOGIN_STAGES)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import F
from django.urls import reverse

from accounts.pipeline import Login, LoginAttempt, LoginRefused, Pause, Stage
from mfa import selectors, services
from mfa.middleware import ENROL_REQUIRED_SESSION_KEY

# What the JSON API can answer with (a passkey through /auth/mfa/challenge's options).
API_METHODS = ("totp", "sms", "email", "recovery", "webauthn")
# The purpose of a code to the verified address of a user with no factor (a risky login).
VERIFY_PURPOSE = "login_verify"
LOGIN_PURPOSE = "login"


def code_purpose(attempt: LoginAttempt, method: str) -> str:
    """Which challenge a code of this attempt answers: a factor's, or the verified address's."""
    if method == "email" and attempt.waiting.get("verified_address"):
        return VERIFY_PURPOSE
    return LOGIN_PURPOSE


def prime(attempt: LoginAttempt) -> LoginAttempt:
    """A paused attempt loaded again: its factor summary is the one computed at the password step."""
    _summary(attempt)
    return attempt


def _summary(attempt: LoginAttempt) -> selectors.FactorSummary:
    """The factors, asked once per attempt (carried in its facts across the pause)."""
    stored = attempt.facts.get(SecondFactorStage.key)
    if isinstance(stored, dict) and not hasattr(attempt.user, "_mfa_factor_summary"):
        return selectors.summary_seed(user=attempt.user, data=stored)
    setattr(attempt.user, selectors.MEMO_ATTR, True)
    summary = selectors.factor_summary(user=attempt.user)
    attempt.facts[SecondFactorStage.key] = {
        "methods": summary.methods,
        "policy": summary.policy,
        "strong": summary.strong,
    }
    return summary


class SecondFactorStage(Stage):
    """A second factor when the user has one (unless a remembered device with nothing unusual) or
    risk asks for it; a code to the verified address when risk asks and no factor is enrolled."""

    key = "mfa"
    user_related = ("mfa_state",)

    def run(self, attempt: LoginAttempt) -> Pause | None:
        summary = _summary(attempt)
        risky = any(reason.startswith("risk:") for reason in attempt.reasons)
        own: list[str] = []
        if summary.methods and not (attempt.trusted_device and not risky):
            own.append("has_factor")
        if summary.policy:
            own.append("policy")
        attempt.reasons[:0] = own
        if "has_factor" not in own and not risky:
            return None
        methods = [m for m in summary.methods if attempt.channel != "api" or m in API_METHODS]
        if methods:
            return Pause(stage=self.key, methods=methods, web_url=reverse("mfa:login_step"))
        if risky and selectors.verified_address_code_allowed(user=attempt.user, purpose=VERIFY_PURPOSE):
            if attempt.channel != "api":
                # The web sends the code at once, as the page asks only for it.
                self._send_verified_address_code(attempt)
            return Pause(
                stage=self.key, methods=["email"], web_url=reverse("mfa:login_step"), data={"verified_address": True}
            )
        raise LoginRefused(
            "This sign-in needs extra verification, and your email address is not verified yet.",
            code="login_verification_required",
        )

    @staticmethod
    def _send_verified_address_code(attempt: LoginAttempt) -> None:
        try:
            services.code_send(
                user=attempt.user,
                method="email",
                purpose=VERIFY_PURPOSE,
                binding=attempt.binding,
                summary="confirm a sign-in from " + (attempt.device_label or "a new device"),
            )
        except services.ResendTooSoon:
            pass  # a code of a moment ago is on its way; the page offers a new one after the cooldown
        except services.MFAError as exc:
            raise LoginRefused(exc.message, code=exc.code, status=exc.status, retry_at=exc.retry_at) from exc

    def after_login(self, attempt: LoginAttempt, login: Login) -> None:
        method = attempt.audit.get("mfa_method")
        if attempt.channel == "api" or not method or attempt.request is None:
            return
        # django-otp's record of the verifying device, so `user.is_verified()` holds too.
        import django_otp

        device: Any = services.verified_device(user=attempt.user)
        if device is None:
            model = selectors.FACTOR_MODELS.get(str(method))
            if model is None:
                return
            device = (
                model.objects.filter(user=attempt.user, confirmed=True)
                .order_by(F("last_used_at").desc(nulls_last=True))
                .first()
            )
        if device is not None:
            django_otp.login(attempt.request, device)


class EnrolRequiredStage(Stage):
    """Staff and the security group without a strong factor: enrolment before anything else, on
    every path (password, second factor, emailed code, recovery code). Customers without a factor
    are invited to add one after a password-only login."""

    key = "mfa_enrol"

    def run(self, attempt: LoginAttempt) -> None:
        summary = _summary(attempt)
        if summary.policy and not summary.strong:
            if attempt.channel == "api":
                raise LoginRefused(
                    "Your account needs a second factor. Set one up on the web first.", code="mfa_enrolment_required"
                )
            attempt.gates.append("enrol_required")

    def after_login(self, attempt: LoginAttempt, login: Login) -> str | None:
        if attempt.channel == "api" or attempt.request is None:
            return None
        if "enrol_required" in attempt.gates:
            attempt.request.session[ENROL_REQUIRED_SESSION_KEY] = True
            return reverse("mfa:enrol_required")
        if settings.MFA_PROMPT_CUSTOMERS and attempt.amr == ["pwd"] and not _summary(attempt).methods:
            state = selectors.state_for(user=attempt.user)
            if state is None or state.enrol_prompt_dismissed_at is None:
                return reverse("mfa:enrol_prompt") + "?" + urlencode({"next": attempt.next_url or "/"})
        return None
