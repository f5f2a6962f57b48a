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
    PASSWORD_BREACHED = "auth.password_breached", "Signed in with a password found in a breach"
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested", "Password reset requested"
    PASSWORD_RESET_COMPLETED = "auth.password_reset_completed", "Password reset completed"

    MFA_ENROLLED = "mfa.enrolled", "Second factor added"
    MFA_REMOVED = "mfa.removed", "Second factor removed"
    MFA_VERIFIED = "mfa.verified", "Second factor verified"
    MFA_FAILED = "mfa.failed", "Second factor failed"
    MFA_LOCKED = "mfa.locked", "Second factor locked after wrong codes"
    MFA_PREFERRED_CHANGED = "mfa.preferred_changed", "Preferred second factor changed"
    MFA_RENAMED = "mfa.renamed", "Second factor renamed"
    MFA_CODE_SENT = "mfa.code_sent", "One-time code sent"
    MFA_RECOVERY_CODES_GENERATED = "mfa.recovery_codes_generated", "Recovery codes generated"
    MFA_RESET_BY_STAFF = "mfa.reset_by_staff", "Second factors reset by the bank"
    REAUTHENTICATED = "auth.reauthenticated", "Identity confirmed again"

    # Mobile API tokens (issue 5): a login is a token family (sid = UserSession id).
    TOKEN_ISSUED = "token.issued", "App login tokens issued"
    TOKEN_REFRESHED = "token.refreshed", "App login tokens refreshed"
    TOKEN_REUSE_DETECTED = "token.reuse_detected", "Used refresh token presented again (login revoked)"
    TOKEN_REVOKED = "token.revoked", "App login tokens revoked"

    # Identity provider (issue 14): details carry "client_id" so reports can filter by client.
    OAUTH_CLIENT_CREATED = "oauth.client_created", "OAuth client registered"
    OAUTH_CLIENT_CHANGED = "oauth.client_changed", "OAuth client changed"
    OAUTH_CLIENT_DELETED = "oauth.client_deleted", "OAuth client deleted"
    OAUTH_CLIENT_SECRET_ROTATED = "oauth.client_secret_rotated", "OAuth client secret replaced"
    OAUTH_AUTHORIZED = "oauth.authorized", "App sign-in authorised (code issued)"
    OAUTH_AUTHORIZATION_REFUSED = "oauth.authorization_refused", "App sign-in refused"
    OAUTH_CONSENT_GIVEN = "oauth.consent_given", "Access granted to an app"
    OAUTH_CONSENT_DENIED = "oauth.consent_denied", "Access refused to an app"
    OAUTH_TOKEN_ISSUED = "oauth.token_issued", "App tokens issued"
    OAUTH_TOKEN_REFRESHED = "oauth.token_refreshed", "App tokens refreshed"
    OAUTH_REFRESH_REUSE_DETECTED = (
        "oauth.refresh_reuse_detected",
        "Used app refresh token presented again (grant revoked)",
    )
    OAUTH_CODE_REUSE_DETECTED = (
        "oauth.code_reuse_detected",
        "Used authorization code presented again (its tokens revoked)",
    )
    OAUTH_CLIENT_ASSERTION_REPLAYED = (
        "oauth.client_assertion_replayed",
        "App client assertion (private_key_jwt) presented again: refused",
    )
    DPOP_PROOF_REPLAYED = "token.dpop_proof_replayed", "DPoP proof presented again: refused"
    OAUTH_TOKEN_REVOKED = "oauth.token_revoked", "App token revoked"
    OAUTH_GRANT_REVOKED = "oauth.grant_revoked", "App access revoked"
    OIDC_LOGOUT = "oidc.logout", "Signed out from an app (RP-initiated logout)"
    OIDC_BACKCHANNEL_LOGOUT_QUEUED = "oidc.backchannel_logout_queued", "Sign-out sent to an app"

    BANK_ACCOUNT_OPENED = "payment.account_opened", "Bank account opened"

    # Staff actions (issue 7): actor is the member of staff, reason is their written reason.
    ADMIN_ACCOUNT_UNLOCKED = "admin.account_unlocked", "Account unlocked by staff"
    ADMIN_SESSIONS_ENDED = "admin.sessions_ended", "All sessions ended by staff"
    ADMIN_MFA_RESET = "admin.mfa_reset", "Second factors reset by staff"
    ADMIN_ACCOUNT_DISABLED = "admin.account_disabled", "Account disabled by staff"
    ADMIN_ACCOUNT_ENABLED = "admin.account_enabled", "Account enabled by staff"
    ADMIN_PASSWORD_RESET_FORCED = "admin.password_reset_forced", "Password reset forced by staff"
    # No longer written (staff re-authenticate on the standard page since issue 13); labels older rows.
    ADMIN_REAUTH_FAILED = "admin.reauth_failed", "Staff re-authentication failed"
    ADMIN_USER_CHANGED = "admin.user_changed", "Account details or roles changed by staff"
    AUDIT_EXPORTED = "audit.exported", "Audit events exported"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "Audit log verification failed"
    FIELD_KEY_ROTATED = "admin.field_key_rotated", "Secrets at rest re-encrypted under a new key"

    RISK_NEW_DEVICE = "risk.new_device", "Sign-in from a new device"
    RISK_NEW_COUNTRY = "risk.new_country", "Sign-in from a new country"
    RISK_IMPOSSIBLE_TRAVEL = "risk.impossible_travel", "Sign-in from an impossibly distant place"
    RISK_IP_FAILING_MANY_ACCOUNTS = "risk.ip_failing_many_accounts", "Sign-in from a network attacking many accounts"
    RISK_GEO_BLOCKED = "risk.geo_blocked", "Sign-in from a country not allowed"
    RISK_LOGIN_DENIED = "risk.login_denied", "Sign-in refused as too risky"
    RISK_LOGIN_CODE_SENT = "risk.login_code_sent", "Sign-in code emailed for a risky sign-in"
    RISK_LOGIN_CODE_FAILED = "risk.login_code_failed", "Wrong sign-in code"
    RISK_ALERT_SENT = "risk.alert_sent", "New sign-in alert sent"
    RISK_NOT_ME = "risk.not_me", "Sign-in reported as not you"
    RISK_DEVICE_RENAMED = "risk.device_renamed", "Device renamed"
    RISK_DEVICE_FORGOTTEN = "risk.device_forgotten", "Device forgotten"
    RISK_DEVICE_TRUSTED = "risk.device_trusted", "Device remembered"
    RISK_DEVICE_TRUST_ENDED = "risk.device_trust_ended", "Remembered devices forgotten"
    RISK_ALLOWED_COUNTRIES_CHANGED = "risk.allowed_countries_changed", "Allowed countries changed"
    PRIVACY_DATA_EXPORTED = "privacy.data_exported", "Personal data downloaded"
    PAYMENT_CREATED = "payment.created", "Payment created"
    PAYMENT_STEP_UP_ISSUED = "payment.step_up_issued", "Payment step-up required"
    PAYMENT_STEP_UP_PASSED = "payment.step_up_passed", "Payment step-up passed"
    PAYMENT_STEP_UP_FAILED = "payment.step_up_failed", "Payment step-up failed"
    PAYMENT_COMPLETED = "payment.completed", "Payment completed"
    PAYMENT_REFUSED = "payment.refused", "Payment refused"
    PAYMENT_EXPIRED = "payment.expired", "Payment step-up expired"
    BENEFICIARY_ADDED = "beneficiary.added", "Beneficiary added"
    # Strong customer authentication and the RTS exemptions (issue 16).
    PAYMENT_SCA_DECIDED = "payment.sca_decided", "SCA required or exemption applied (RTS article)"
    PAYMENT_FRAUD_REPORTED = "payment.fraud_reported", "Payment reported as fraud"
    PAYMENT_TRA_SUSPENDED = "payment.tra_suspended", "Risk-analysis exemption stopped by the fraud rate"
    BENEFICIARY_TRUST_REQUESTED = "beneficiary.trust_requested", "Trusting a beneficiary: confirmation asked"
    BENEFICIARY_TRUSTED = "beneficiary.trusted", "Beneficiary marked as trusted"
    BENEFICIARY_TRUST_FAILED = "beneficiary.trust_failed", "Trusting a beneficiary: confirmation failed"
    BENEFICIARY_UNTRUSTED = "beneficiary.untrusted", "Beneficiary no longer trusted"
    BENEFICIARY_CHANGED = "beneficiary.changed", "Beneficiary changed"
    STANDING_ORDER_CREATED = "standing_order.created", "Standing order created"
    STANDING_ORDER_CHANGED = "standing_order.changed", "Standing order changed"
    STANDING_ORDER_AUTHORISED = "standing_order.authorised", "Standing order confirmed with SCA"
    STANDING_ORDER_SCA_FAILED = "standing_order.sca_failed", "Standing order confirmation failed"
    STANDING_ORDER_CANCELLED = "standing_order.cancelled", "Standing order cancelled"
    STANDING_ORDER_EXECUTED = "standing_order.executed", "Standing order executed"
    STANDING_ORDER_FAILED = "standing_order.failed", "Standing order execution failed"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"
    INFO = "info", "Information"
