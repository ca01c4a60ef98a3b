"""A view that saves nothing of its own but enqueues in its transaction, and may fail after."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from tests.django_project.tasks import add


def order(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        result = add.enqueue(2, 3)
        if request.GET.get("fail"):
            raise RuntimeError("the order failed after its job was enqueued")
    return JsonResponse({"id": result.id})
