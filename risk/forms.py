from __future__ import annotations

import re

from django import forms


class DeviceRenameForm(forms.Form):
    name = forms.CharField(label="Device name", max_length=120, strip=True)


class AllowedCountriesForm(forms.Form):
    countries = forms.CharField(
        label="Countries you sign in from",
        required=False,
        max_length=400,
        help_text="Two-letter country codes separated by commas, e.g. GB, DE. Leave empty to allow any country.",
    )

    def clean_countries(self) -> list[str]:
        import pycountry

        raw = self.cleaned_data.get("countries") or ""
        codes = [c.strip().upper() for c in re.split(r"[\s,;]+", raw) if c.strip()]
        unknown = [c for c in codes if len(c) != 2 or pycountry.countries.get(alpha_2=c) is None]
        if unknown:
            raise forms.ValidationError(f"Not a country code: {', '.join(unknown[:5])}.")
        if len(codes) > 60:
            raise forms.ValidationError("Please list at most 60 countries.")
        return sorted(set(codes))
