"""Which buttons a page shows: `{% may "stream.delete" profile as can_delete %}` asks
streams.policy, as the view behind the button will; `{% may_stop job as can_stop %}` whether
a job's Stop shows."""

from __future__ import annotations

from django import template

from streams import policy
from streams.models import Job, Profile

register = template.Library()


@register.simple_tag(takes_context=True)
def may(context: template.Context, action: str, profile: Profile) -> bool:
    return policy.may(context["request"].user, action, profile)


@register.simple_tag(takes_context=True)
def may_stop(context: template.Context, job: Job) -> bool:
    return job.stoppable and policy.stop_refusal(context["request"].user, job) is None
