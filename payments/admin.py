from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

from accounts.models import User
from core.admin import ReadOnlyAdminMixin
from payments import services
from payments.models import BankAccount, Beneficiary, LedgerEntry, Payment, Posting, StandingOrder

OPEN_PERMISSION = "payments.add_bankaccount"


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    pass


class OpenAccountForm(forms.Form):
    email = forms.EmailField(label="Customer email")
    currency = forms.CharField(max_length=3, initial="EUR", help_text="ISO 4217, e.g. EUR")
    name = forms.CharField(max_length=80, required=False, help_text="Defaults to '<currency> current account'")
    opening_balance = forms.CharField(
        max_length=24, initial="0.00", help_text="Posted from the bank's funding account through the ledger"
    )

    def clean_email(self) -> User:
        user = User.objects.filter(email=self.cleaned_data["email"].strip().lower(), is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active customer with this email address.")
        return user


@admin.register(BankAccount)
class BankAccountAdmin(ReadOnlyAdmin):
    list_display = ("iban", "name", "owner", "kind", "shard", "currency", "balance", "created_at")
    list_filter = ("kind", "currency")
    search_fields = ("iban", "owner__email", "name")
    list_select_related = ("owner",)
    actions = ["open_another_account"]
    change_list_template = "admin/payments/bankaccount/change_list.html"

    def get_urls(self) -> list[URLPattern]:  # type: ignore[override]
        custom = [
            path(
                "open/",
                self.admin_site.admin_view(self.open_account_view),
                name="payments_bankaccount_open",
            )
        ]
        return custom + super().get_urls()  # type: ignore[operator]

    @admin.action(description="Open another account for the owners of the selected accounts")
    def open_another_account(self, request: HttpRequest, queryset: QuerySet[BankAccount]) -> HttpResponse:
        owner = queryset.filter(owner__isnull=False).select_related("owner").first()
        url = reverse("admin:payments_bankaccount_open")
        if owner is None or owner.owner is None:
            self.message_user(request, "Select a customer account.", messages.WARNING)
            return HttpResponseRedirect(url)
        return HttpResponseRedirect(f"{url}?{urlencode({'email': owner.owner.email, 'currency': owner.currency})}")

    def open_account_view(self, request: HttpRequest) -> HttpResponse:
        """Staff open an account with an opening balance (audited as payment.account_opened, actor = staff)."""
        if not request.user.has_perm(OPEN_PERMISSION):
            raise PermissionDenied
        form = OpenAccountForm(request.POST or None, initial=request.GET.dict() or None)
        if request.method == "POST" and form.is_valid():
            try:
                account = services.account_open(
                    owner=form.cleaned_data["email"],
                    currency=form.cleaned_data["currency"],
                    name=form.cleaned_data["name"],
                    opening_balance=form.cleaned_data["opening_balance"].strip() or "0.00",
                    actor=request.user,  # type: ignore[arg-type]
                )
            except services.PaymentError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Opened {account.iban} for {account.owner} with {account.balance} {account.currency}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:payments_bankaccount_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Open a bank account",
            "form": form,
        }
        return render(request, "admin/payments/open_account.html", context)


class LedgerEntryInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LedgerEntry
    extra = 0
    can_delete = False
    readonly_fields = ("account", "amount", "balance_after", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "description")
    list_filter = ("kind",)
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "amount", "balance_after", "posting")
    list_filter = ("account__kind", "account__currency")
    search_fields = ("account__iban",)
    list_select_related = ("account", "posting")


FRAUD_GROUPS = ("security", "admin")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "owner",
        "amount",
        "currency",
        "payee_iban",
        "status",
        "channel",
        "sca_required",
        "sca_exemption",
        "fraud_reported_at",
    )
    list_filter = ("status", "channel", "currency", "sca_required", "sca_exemption")
    search_fields = ("id", "owner__email", "payee_iban")
    list_select_related = ("owner",)
    exclude = ("binding_digest",)
    actions = ["mark_as_fraud"]

    def has_fraud_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and (user.is_superuser or user.groups.filter(name__in=FRAUD_GROUPS).exists())  # type: ignore[union-attr]
        )

    @admin.action(description="Mark the selected payments as fraud (counts in the fraud rate)", permissions=["fraud"])
    def mark_as_fraud(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Staff report unauthorised payments (RTS Art. 19): audited with the staff member as actor,
        after a recent re-authentication; the TRA exemption stops by itself if the rate is too high."""
        from accounts.authn import is_recently_authenticated, reauth_url

        if not is_recently_authenticated(request):
            self.message_user(request, "Confirm it is you first, then mark the payments again.", messages.WARNING)
            return HttpResponseRedirect(reauth_url(next_url=reverse("admin:payments_payment_changelist")))
        done, refused = 0, []
        for payment in queryset.select_related("owner"):
            try:
                services.payment_report_fraud(
                    user=payment.owner,
                    payment_id=payment.id,
                    actor=request.user,  # type: ignore[arg-type]
                    reason="marked by staff",
                )
            except services.PaymentError as exc:
                refused.append(f"{payment.id}: {exc.message}")
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} payment(s) marked as fraud.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)
        return None


@admin.register(Beneficiary)
class BeneficiaryAdmin(ReadOnlyAdmin):
    list_display = ("name", "iban", "owner", "created_at", "trusted_at")
    search_fields = ("iban", "owner__email", "name")
    list_select_related = ("owner",)


@admin.register(StandingOrder)
class StandingOrderAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "owner", "amount", "currency", "payee_iban", "frequency", "status", "executions")
    list_filter = ("status", "frequency", "currency")
    search_fields = ("id", "owner__email", "payee_iban")
    list_select_related = ("owner",)
    exclude = ("authorised_digest",)
