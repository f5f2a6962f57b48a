from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation

from accounts.backends import normalize_email
from accounts.models import User
from accounts.passwords import min_strength_score


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "username webauthn", "autofocus": True})
    )
    password = forms.CharField(
        max_length=settings.PASSWORD_MAX_LENGTH * 4,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    altcha = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4096)

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class _NewPasswordMixin(forms.Form):
    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        max_length=settings.PASSWORD_MAX_LENGTH * 4,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {settings.PASSWORD_MIN_LENGTH} characters. A passphrase of a few words works well.",
    )
    new_password2 = forms.CharField(
        label="Repeat the new password",
        strip=False,
        max_length=settings.PASSWORD_MAX_LENGTH * 4,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The strength meter (static/js/password-strength.js, templates/_form_field.html): the same
        # threshold and the same guessable words as accounts.validators.StrengthValidator.
        field = self.fields["new_password1"]
        field.strength_meter = True  # type: ignore[attr-defined]
        attrs = field.widget.attrs
        attrs["data-strength-meter"] = ""
        attrs["data-strength-max-length"] = str(settings.PASSWORD_MAX_LENGTH)
        score = min_strength_score()
        if score is not None:
            attrs["data-strength-min-score"] = str(score)
        self.strength_inputs(attrs)

    def strength_inputs(self, attrs: dict[str, Any]) -> None:
        """Tells the meter the user's email and name, in that order (a JSON list of values)."""
        user: User | None = self.password_user()
        if user is None:  # Django's reset view builds the form even for a link that names nobody
            return
        attrs["data-strength-user-inputs"] = json.dumps([user.email or "", user.full_name or ""])

    def password_user(self) -> User:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        p1, p2 = cleaned.get("new_password1"), cleaned.get("new_password2")
        if p1 and p2 and p1 != p2:
            self.add_error("new_password2", "The two passwords do not match.")
        elif p1:
            try:
                password_validation.validate_password(p1, self.password_user())
            except forms.ValidationError as exc:
                self.add_error("new_password1", exc)
        return cleaned


class SignupForm(_NewPasswordMixin):
    full_name = forms.CharField(
        label="Full name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    field_order = ["full_name", "email", "new_password1", "new_password2"]

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def strength_inputs(self, attrs: dict[str, Any]) -> None:
        """On sign-up the email and name are typed on the same page: the meter reads those fields."""
        auto_id = self.auto_id if isinstance(self.auto_id, str) else "id_%s"
        attrs["data-strength-fields"] = " ".join(auto_id % name for name in ("email", "full_name"))

    def password_user(self) -> User:
        cleaned = getattr(self, "cleaned_data", {})
        return User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))


class PasswordChangeForm(_NewPasswordMixin):
    old_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=settings.PASSWORD_MAX_LENGTH * 4,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    field_order = ["old_password", "new_password1", "new_password2"]

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def password_user(self) -> User:
        return self.user


class SetPasswordForm(_NewPasswordMixin):
    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def password_user(self) -> User:
        return self.user


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
