from __future__ import annotations

from typing import Any, cast

from django import forms

from accounts.models import User
from payments import selectors, services
from payments.models import StandingOrder


class PaymentForm(forms.Form):
    from_account = forms.ChoiceField(label="From account")
    beneficiary = forms.ChoiceField(label="Saved beneficiary", required=False)
    payee_name = forms.CharField(
        label="Payee name", max_length=70, required=False, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    to_iban = forms.CharField(
        label="Payee IBAN",
        max_length=50,
        required=False,
        help_text="Leave empty when you choose a saved beneficiary.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "text"}),
    )
    amount = forms.CharField(
        label="Amount",
        max_length=24,
        help_text="For example 125.50 (a dot for the decimals, at most two).",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    reference = forms.CharField(label="Reference (optional)", max_length=140, required=False)
    submission = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        cast(forms.ChoiceField, self.fields["from_account"]).choices = [
            (str(a.id), f"{a.name} · {a.iban_formatted} · {a.balance} {a.currency}")
            for a in selectors.accounts_for_user(user=user)
        ]
        cast(forms.ChoiceField, self.fields["beneficiary"]).choices = [("", "— enter an IBAN below —")] + [
            (str(b.id), f"{b.name} · {b.iban_formatted}") for b in selectors.beneficiaries_for_user(user=user)
        ]

    def clean_amount(self) -> str:
        try:
            return str(services.parse_amount(self.cleaned_data["amount"]))
        except services.PaymentError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_to_iban(self) -> str:
        raw = self.cleaned_data.get("to_iban", "")
        if not raw.strip():
            return ""
        try:
            return services.iban_normalize(raw)
        except services.PaymentError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("beneficiary") and not cleaned.get("to_iban") and "to_iban" not in self.errors:
            self.add_error("to_iban", "Choose a saved beneficiary or enter an IBAN.")
        if cleaned.get("beneficiary") and cleaned.get("to_iban"):
            self.add_error("to_iban", "Choose a saved beneficiary or enter an IBAN, not both.")
        return cleaned


class BeneficiaryForm(forms.Form):
    name = forms.CharField(label="Name", max_length=70, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    iban = forms.CharField(
        label="IBAN",
        max_length=50,
        help_text="We check the country format and the check digits.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_iban(self) -> str:
        try:
            return services.iban_normalize(self.cleaned_data["iban"])
        except services.PaymentError as exc:
            raise forms.ValidationError(exc.message) from exc


class ConfirmCodeForm(forms.Form):
    method = forms.ChoiceField(label="Code from")
    code = forms.CharField(
        label="Code",
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*", "autofocus": True}
        ),
    )

    LABELS = {"totp": "Authenticator app", "sms": "Text message", "email": "Email"}

    def __init__(self, *args: Any, methods: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["method"])
        field.choices = [(m, self.LABELS[m]) for m in methods if m in self.LABELS]


class FraudReportForm(forms.Form):
    reason = forms.CharField(
        label="What happened? (optional)",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_reason(self) -> str:
        text = " ".join(str(self.cleaned_data.get("reason") or "").split())
        if any(not ch.isprintable() for ch in text):
            raise forms.ValidationError("Use printable characters only.")
        return text


class StandingOrderForm(PaymentForm):
    """A payment form plus how often; no one-time token (nothing is paid before the SCA)."""

    frequency = forms.ChoiceField(label="How often", choices=StandingOrder.Frequency.choices)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        del self.fields["submission"]
