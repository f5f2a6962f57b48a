from __future__ import annotations

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/captcha/", views.captcha_challenge_view, name="captcha"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("accounts/signup/", views.signup_view, name="signup"),
    path("accounts/signup/done/", views.signup_done_view, name="signup_done"),
    path("accounts/verify/<str:token>/", views.verify_email_view, name="verify_email"),
    path("accounts/password/reset/", views.password_reset_view, name="password_reset"),
    path("accounts/password/reset/done/", views.password_reset_done_view, name="password_reset_done"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        views.password_reset_complete_view,
        name="password_reset_complete",
    ),
    path("accounts/password/change/", views.password_change_view, name="password_change"),
    path("security/", views.security_view, name="security"),
    path("security/sessions/<uuid:session_id>/end/", views.session_end_view, name="session_end"),
    path("security/sessions/end-others/", views.sessions_end_others_view, name="sessions_end_others"),
]
