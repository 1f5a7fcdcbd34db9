"""Which buttons a page shows: `{% may "stream.delete" profile as can_delete %}` asks
streams.policy, as the view behind the button will."""

from __future__ import annotations

from django import template

from streams import policy
from streams.models import Profile

register = template.Library()


@register.simple_tag(takes_context=True)
def may(context: template.Context, action: str, profile: Profile) -> bool:
    return policy.may(context["request"].user, action, profile)
