from __future__ import annotations

import re

from django import forms

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_code(self) -> str:
        value = " ".join(self.cleaned_data["code"].split())
        if not value:
            raise forms.ValidationError("Please enter the code.")
        return value


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label="Recovery code", max_length=32, widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True})
    )


class NameField(forms.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=64, required=False, label="Name (so you can tell your factors apart)", **kwargs)  # type: ignore[arg-type]


class TOTPConfirmForm(CodeForm):
    name = NameField(help_text="For example: Phone, Work laptop")


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label="Mobile number",
        max_length=20,
        help_text="In international format, starting with + and the country code, e.g. +447700900123",
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    def clean_phone(self) -> str:
        value = re.sub(r"[\s()-]", "", self.cleaned_data["phone"])
        if not E164.match(value):
            raise forms.ValidationError("Enter the number with + and the country code, e.g. +447700900123.")
        return value


class CodeConfirmForm(CodeForm):
    name = NameField()


class RenameForm(forms.Form):
    name = forms.CharField(label="New name", max_length=64)


class PreferredForm(forms.Form):
    method = forms.CharField(max_length=16)


class PasswordReauthForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
