"""The support role sees customers' devices, sessions and risk data only with personal data masked."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import User, UserSession
from risk.models import KnownDevice, LoginAlert, RiskProfile
from tests.accounts.factories import UserFactory


def test_support_admin_pages_mask_email_ip_and_place(make_role_user, role_client):
    customer: User = UserFactory(email="jane.customer@example.com")  # type: ignore[assignment]
    now = timezone.now()
    UserSession.objects.create(user=customer, kind="web", ip="198.51.100.23", last_seen_at=now)
    device = KnownDevice.objects.create(
        user=customer,
        device_id_hash="h" * 64,
        name="Firefox on Windows",
        kind="web",
        last_ip="198.51.100.23",
        last_country="DE",
        last_place="Berlin, DE",
    )
    RiskProfile.objects.create(user=customer, last_login_ip="198.51.100.23", last_login_country="DE")
    LoginAlert.objects.create(
        user=customer, device=device, device_name="Firefox on Windows", place="Berlin, DE", ip="198.51.100.23"
    )
    support = role_client(make_role_user("support"))
    security = role_client(make_role_user("security"))
    pages = [
        "/admin/accounts/usersession/",
        "/admin/risk/knowndevice/",
        f"/admin/risk/knowndevice/{device.pk}/change/",
        "/admin/risk/loginalert/",
    ]
    for page in pages:
        masked = support.get(page)
        assert masked.status_code == 200, page
        body = masked.content.decode()
        assert "jane.customer@example.com" not in body, page
        assert "198.51.100.23" not in body, page
        assert "Berlin" not in body, page
        full = security.get(page)
        assert full.status_code == 200, page
    assert "198.51.100.23" in security.get("/admin/accounts/usersession/").content.decode()
