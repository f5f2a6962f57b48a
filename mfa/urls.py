from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mfa import views

app_name = "mfa"

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/login/mfa/", views.login_step_view, name="login_step"),
    path("accounts/login/mfa/send/", views.login_send_code_view, name="login_send_code"),
    path("accounts/login/mfa/passkey/options/", views.login_passkey_options_view, name="login_passkey_options"),
    path("accounts/login/mfa/passkey/verify/", views.login_passkey_verify_view, name="login_passkey_verify"),
    path("accounts/login/mfa/cancel/", views.login_cancel_view, name="login_cancel"),
    path("accounts/reauth/", views.reauth_view, name="reauth"),
    path("accounts/reauth/send/", views.reauth_send_code_view, name="reauth_send_code"),
    path("accounts/reauth/passkey/options/", views.reauth_passkey_options_view, name="reauth_passkey_options"),
    path("accounts/reauth/passkey/verify/", views.reauth_passkey_verify_view, name="reauth_passkey_verify"),
    path("security/mfa/welcome/", views.enrol_prompt_view, name="enrol_prompt"),
    path("security/mfa/required/", views.enrol_required_view, name="enrol_required"),
    path("security/mfa/totp/add/", views.totp_add_view, name="totp_add"),
    path("security/mfa/sms/add/", views.sms_add_view, name="sms_add"),
    path("security/mfa/email/add/", views.email_add_view, name="email_add"),
    path("security/mfa/passkeys/add/", views.passkey_add_view, name="passkey_add"),
    path("security/mfa/passkeys/options/", views.passkey_register_options_view, name="passkey_register_options"),
    path("security/mfa/passkeys/verify/", views.passkey_register_verify_view, name="passkey_register_verify"),
    path("security/mfa/recovery-codes/", views.recovery_codes_view, name="recovery_codes"),
    path("security/mfa/<str:method>/<int:device_id>/remove/", views.factor_remove_view, name="factor_remove"),
    path("security/mfa/<str:method>/<int:device_id>/rename/", views.factor_rename_view, name="factor_rename"),
    path("security/mfa/preferred/", views.preferred_view, name="preferred"),
]
