"""A user's own account: changing their password (Django's view, with its audit entry).
Superusers make accounts in the admin site; team admins add them to teams (views.teams)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import reverse_lazy

from streams import audit
from streams.models import AuditEvent


class PasswordChange(auth_views.PasswordChangeView):
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_changed")

    def form_valid(self, form: object) -> HttpResponse:
        response = super().form_valid(form)
        AuditEvent.objects.record(
            "user.password_changed", audit.Context.from_request(self.request),
            target_type="user", target_name=self.request.user.get_username(),
            outcome="succeeded", message="changed their own password")
        return response


class PasswordChanged(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_changed.html"
