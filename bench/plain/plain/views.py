from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plain.models import Account


class AccountSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Account
        fields = ["id", "name", "iban", "currency", "balance", "created_at"]


class AccountList(generics.ListAPIView):  # type: ignore[type-arg]
    serializer_class = AccountSerializer

    def get_queryset(self) -> Any:
        return Account.objects.filter(owner=self.request.user).order_by("id")


class Me(APIView):
    def get(self, request: Request) -> Response:
        return Response({"id": str(request.user.pk), "email": request.user.email})  # type: ignore[union-attr]


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
