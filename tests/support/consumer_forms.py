"""The consumer forms as a browser posts them: the CLI's answers for a pull consumer, and an
edit's Apply after its review."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from streams.models import Job, Profile
from tests.support.stream_forms import form_values, run_post

# `nats consumer add` with every prompt answered by its default (a pull consumer).
SEED_CONSUMER = {
    "durable_name": "", "deliver_subject": "", "deliver_group": "", "start_policy": "all",
    "ack_policy": "explicit", "replay_policy": "instant", "filter_subjects": "",
    "max_deliver": "-1", "max_ack_pending": "0", "idle_heartbeat": "0s", "flow_control": "no",
    "headers_only": "no", "backoff": "", "num_replicas": "0", "priority_policy": "none",
}


def create_consumer(client: Client, profile: Profile, stream: str, name: str,
                    **answers: str) -> Job:
    return run_post(client, reverse("consumer_create", args=[profile.pk, stream]),
                    {**SEED_CONSUMER, "durable_name": name, **answers})


def reviewed_consumer_edit(client: Client, profile: Profile, stream: str, name: str,
                           **changes: str) -> dict[str, str]:
    """What Apply posts: the edit form's values with `changes`, and the digest of the review."""
    edit = reverse("consumer_edit", args=[profile.pk, stream, name])
    answers = {**form_values(client.get(edit).content.decode(), "consumer-form"), **changes}
    review = client.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="confirm" value="' in review, review[:3000]
    return {**answers, "confirm": review.split('name="confirm" value="')[1].split('"')[0]}
