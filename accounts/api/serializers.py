"""Request validation and response shapes of the authentication API (also the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

API_MFA_METHODS = ("totp", "sms", "email", "recovery", "webauthn")
CODE_CHANNELS = ("sms", "email")
CHALLENGE_METHODS = ("sms", "email", "webauthn")
DEVICE_ID_RE = r"^[A-Za-z0-9._:-]{1,128}$"


class LoginSerializer(serializers.Serializer[Any]):
    email = serializers.CharField(max_length=254, trim_whitespace=True)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    device_id = serializers.RegexField(
        DEVICE_ID_RE, required=False, allow_blank=True, help_text="Stable id of the app install"
    )
    device_name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    captcha = serializers.CharField(
        max_length=8192,
        required=False,
        allow_blank=True,
        help_text='Solved proof-of-work challenge (base64 ALTCHA payload) after a "captcha_required" answer.',
    )


# LoginSerializer's fields, bound once: login_data checks a body against them without building
# (and deep-copying the fields of) a serializer per request.
_LOGIN_FIELDS: dict[str, serializers.CharField] = dict(LoginSerializer().fields)  # type: ignore[arg-type]


def login_data(data: Any) -> dict[str, str] | None:
    """LoginSerializer's validated_data for a body of plain strings that it accepts, checked with
    the serializer's own fields (trimming, blank, max length, NUL and surrogate characters, the
    device id's pattern); None for anything else, which the caller hands to the serializer for
    its usual answer (400 with per-field errors)."""
    if not isinstance(data, dict):
        return None
    out: dict[str, str] = {}
    for name, field in _LOGIN_FIELDS.items():
        if name not in data:
            if field.required:
                return None
            continue
        value = data[name]
        if not isinstance(value, str):
            return None
        if field.trim_whitespace:
            value = value.strip()
        if value == "":
            if not field.allow_blank:
                return None
            out[name] = ""
            continue
        try:
            for validator in field.validators:  # as Field.run_validators calls them
                if getattr(validator, "requires_context", False):
                    validator(value, field)  # type: ignore[call-arg]
                else:
                    validator(value)  # type: ignore[call-arg]
        except (serializers.ValidationError, DjangoValidationError):
            return None
        out[name] = value
    return out


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField(help_text="JWT (RS256, or HS512 when the server is configured so), 15 minutes")
    refresh = serializers.CharField(help_text="Opaque, single use, rotates on every refresh")
    token_type = serializers.ChoiceField(
        choices=["Bearer", "DPoP"], help_text="DPoP: bound to the key of the request's DPoP proof (RFC 9449)"
    )
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires")


class MfaRequiredSerializer(serializers.Serializer[Any]):
    mfa_required = serializers.BooleanField()
    mfa_token = serializers.CharField(help_text="Single use, 5 minutes, bound to this user and device_id")
    methods = serializers.ListField(child=serializers.ChoiceField(choices=API_MFA_METHODS))
    expires_in = serializers.IntegerField()


class MfaChallengeSerializer(serializers.Serializer[Any]):
    mfa_token = serializers.CharField(max_length=200)
    method = serializers.ChoiceField(
        choices=CHALLENGE_METHODS, help_text='"sms"/"email": a code is sent; "webauthn": passkey options come back'
    )
    device_id = serializers.RegexField(DEVICE_ID_RE, required=False, allow_blank=True)


class MfaChallengeResponseSerializer(serializers.Serializer[Any]):
    sent_to = serializers.CharField(help_text="Masked destination")
    method = serializers.CharField()
    expires_at = serializers.DateTimeField()


class WebAuthnOptionsSerializer(serializers.Serializer[Any]):
    method = serializers.ChoiceField(choices=["webauthn"])
    options = serializers.DictField(help_text="PublicKeyCredentialRequestOptions (JSON); sign with the passkey")


class MfaVerifySerializer(serializers.Serializer[Any]):
    mfa_token = serializers.CharField(max_length=200)
    code = serializers.CharField(max_length=64, required=False, help_text="TOTP, SMS, email or recovery code")
    credential = serializers.JSONField(
        required=False, help_text='With method "webauthn": the assertion (PublicKeyCredential as JSON)'
    )
    method = serializers.ChoiceField(choices=API_MFA_METHODS, required=False)
    device_id = serializers.RegexField(DEVICE_ID_RE, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        credential = attrs.get("credential")
        if attrs.get("method") == "webauthn" or (credential is not None and "method" not in attrs):
            if not isinstance(credential, (dict, str)) or not credential or len(str(credential)) > 16384:
                raise serializers.ValidationError({"credential": ["A passkey assertion is required."]})
            attrs["method"] = "webauthn"
        elif not attrs.get("code"):
            raise serializers.ValidationError({"code": ["This field is required."]})
        return attrs


class RefreshSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(max_length=200)


class MeSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The user's public id (the `sub` claim)")
    email = serializers.EmailField()
    mfa_methods = serializers.ListField(child=serializers.CharField())
    preferred_mfa_method = serializers.CharField(allow_null=True)


class SessionSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["web", "mobile"])
    device_name = serializers.CharField()
    ip = serializers.IPAddressField(allow_null=True)
    country = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    current = serializers.BooleanField()


# --- Errors (documentation of the shapes core.api produces) -----------------------------------


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable code")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field (absent when the body itself could not be parsed)",
    )


class RetryErrorSerializer(ErrorSerializer):
    retry_after = serializers.IntegerField(required=False, help_text="Seconds; also in the Retry-After header")


class CaptchaRequiredSerializer(RetryErrorSerializer):
    captcha = serializers.DictField(
        required=False,
        help_text=(
            "With code captcha_required: an ALTCHA proof-of-work challenge (algorithm, challenge, maxnumber, salt, "
            "signature). Solve it and send the base64 JSON solution as `captcha` with the next login."
        ),
    )


class InvalidCodeSerializer(ErrorSerializer):
    attempts_left = serializers.IntegerField(required=False)
