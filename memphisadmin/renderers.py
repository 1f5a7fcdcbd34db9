"""How forms render their widgets."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.forms.renderers import DjangoTemplates, Jinja2
from django.template.exceptions import TemplateDoesNotExist


class FormRenderer(Jinja2):
    """Django's own widget templates through Jinja2, in half the Django engine's time (the
    audit log's filters, bench/bench_audit.py); the widgets that exist only as Django
    templates (the admin's: a user's password hash, related-object links) through that."""

    @cached_property
    def django_engine(self) -> DjangoTemplates:
        return DjangoTemplates()

    def get_template(self, template_name: str) -> Any:
        try:
            return super().get_template(template_name)
        except TemplateDoesNotExist:
            return self.django_engine.get_template(template_name)
