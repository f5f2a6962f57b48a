"""The risk engine's stage of the login pipeline (accounts/pipeline.py runs it from settings.LOGIN_STAGES)."""

from __future__ import annotations

from typing import Any

from accounts.pipeline import Login, LoginAttempt, LoginRefused, Stage
from risk import services

_DECISION_ATTR = "_risk_decision"


def _decision(attempt: LoginAttempt) -> services.RiskDecision | None:
    """The decision taken at the password step: in memory in that request, else from the attempt."""
    cached = getattr(attempt.request, _DECISION_ATTR, None)
    if isinstance(cached, services.RiskDecision):
        return cached
    stored: dict[str, Any] | None = attempt.facts.get(RiskStage.key)
    return services.RiskDecision.from_dict(stored, user=attempt.user) if stored else None


class RiskStage(Stage):
    """Place, device and signals, evaluated once per attempt: refuse, or ask for a second step."""

    key = "risk"
    user_related = ("risk_profile",)

    @classmethod
    def user_join(cls, *, channel: Any, device_id: str | None) -> tuple[str, str, str, str] | None:
        """The app's device, loaded with the user row (services.evaluate_login reads it back)."""
        hashed = services.api_device_hash(device_id) if channel == "api" else ""
        return (services.LOGIN_DEVICE, "known_devices", "device_id_hash", hashed) if hashed else None

    def run(self, attempt: LoginAttempt) -> None:
        assert attempt.request is not None
        channel: services.Channel = "api" if attempt.channel == "api" else "web"
        decision = services.evaluate_login(
            request=attempt.request,
            user=attempt.user,
            channel=channel,
            device_id=attempt.device_id if attempt.channel == "api" else None,
            device_name_hint=attempt.device_label,
            ip=attempt.ip,
        )
        setattr(attempt.request, _DECISION_ATTR, decision)
        attempt.facts[self.key] = decision.as_dict()
        attempt.audit.update(decision.audit_details())
        if not attempt.device_label:
            attempt.device_label = decision.device_name
        if decision.denied:
            raise LoginRefused(decision.message, code="login_denied")
        if decision.requires_second_factor:
            attempt.reasons.extend(f"risk:{reason}" for reason in decision.reasons)
        attempt.trusted_device = decision.skips_second_factor

    def login_writes(self, attempt: LoginAttempt) -> list[tuple[str, list[Any]]]:
        """A returning device's and the profile's UPDATEs, written with the login's own rows."""
        decision = _decision(attempt)
        if decision is None or attempt.request is None:
            return []
        # The same decision object for after_login (the resumed path rebuilds it from the attempt).
        setattr(attempt.request, _DECISION_ATTR, decision)
        return services.login_updates(request=attempt.request, user=attempt.user, decision=decision)

    def after_login(self, attempt: LoginAttempt, login: Login) -> None:
        """Remember the device and the place, send the new-device alert, and "remember this device"."""
        decision = _decision(attempt)
        if decision is None or attempt.request is None:
            return
        device = services.login_succeeded(
            request=attempt.request, user=attempt.user, decision=decision, amr=attempt.amr
        )
        if attempt.remember_device and len(attempt.amr) > 1:
            services.device_trust(
                request=attempt.request,
                user=attempt.user,
                device=device,
                device_id=attempt.device_id if attempt.channel == "api" else None,
            )
