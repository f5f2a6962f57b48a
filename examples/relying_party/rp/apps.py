from __future__ import annotations

from django.apps import AppConfig


class RelyingPartyConfig(AppConfig):
    name = "rp"
    verbose_name = "Demo relying party"
