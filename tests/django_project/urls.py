from __future__ import annotations

from django.urls import path

from tests.django_project.views import order

urlpatterns = [path("order", order)]
