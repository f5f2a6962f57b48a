"""Every audit event type, in one place, named `<area>.<what>`."""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    SIGNUP = "account.signup", "Signed up"
    EMAIL_VERIFIED = "account.email_verified", "Email address verified"
    ACCOUNT_CREATED_BY_STAFF = "account.created_by_staff", "Account created by the bank"

    LOGIN_SUCCEEDED = "auth.login_succeeded", "Logged in"
    LOGIN_FAILED = "auth.login_failed", "Login failed"
    LOCKOUT = "auth.lockout", "Locked out after failed logins"
    RATE_LIMITED = "auth.rate_limited", "Too many requests"
    CAPTCHA_FAILED = "auth.captcha_failed", "Proof-of-work check failed"
    LOGOUT = "auth.logout", "Logged out"
    SESSION_ENDED = "auth.session_ended", "Session ended"
    PASSWORD_CHANGED = "auth.password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested", "Password reset requested"
    PASSWORD_RESET_COMPLETED = "auth.password_reset_completed", "Password reset completed"

    BANK_ACCOUNT_OPENED = "payment.account_opened", "Bank account opened"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"
    INFO = "info", "Information"
