"""The stream forms as a browser posts them: the seed's answers, the values an edit page would
submit, and posts that wait for the job they start."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.test import Client
from django.urls import reverse

from streams.models import Job, Profile
from tests.support.jobs import job_from, wait_for_job

SEED_FORM = {
    "name": "argo_event_source", "subjects": "foo", "storage": "file", "num_replicas": "1",
    "retention": "limits", "discard": "old", "max_msgs": "-1", "max_msgs_per_subject": "-1",
    "max_bytes": "-1", "max_age": "-1", "max_msg_size": "-1", "duplicate_window": "2m0s",
    "allow_rollup_hdrs": "no", "allow_delete": "yes", "allow_purge": "yes",
}


def run_post(client: Client, url: str, data: dict[str, Any], timeout: float = 30) -> Job:
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return wait_for_job(job_from(response).pk, timeout=timeout)


def create_stream(client: Client, profile: Profile, **answers: str) -> Job:
    return run_post(client, reverse("stream_create", args=[profile.pk]),
                    {**SEED_FORM, **answers})


def refresh_stream(client: Client, profile: Profile, name: str) -> Job:
    return run_post(client, reverse("stream_refresh", args=[profile.pk, name]), {})


def refresh_list(client: Client, profile: Profile, timeout: float = 60) -> Job:
    return run_post(client, reverse("stream_list_refresh", args=[profile.pk]), {}, timeout)


def reviewed_edit(client: Client, profile: Profile, name: str, **changes: str) -> dict[str, str]:
    """What Apply posts: the edit form's values as the browser submits them, with `changes`,
    and the digest of the review they got."""
    edit = reverse("stream_edit", args=[profile.pk, name])
    answers = {**form_values(client.get(edit).content.decode()), **changes}
    review = client.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    return {**answers, "confirm": review.split('name="confirm" value="')[1].split('"')[0]}


class _FormReader(HTMLParser):
    """The values a browser would submit from the page's stream form (enabled fields only)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select = self._textarea = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if "disabled" in attr or attr.get("name") in {None, "", "csrfmiddlewaretoken"}:
            if tag == "option" and self._select and "selected" in attr:
                self.values[self._select] = attr.get("value", "")
            return
        name = attr["name"]
        if tag == "input" and attr.get("type") == "checkbox":
            if "checked" in attr:
                self.values[name] = "on"
        elif tag == "input":
            self.values[name] = attr.get("value", "")
        elif tag == "select":
            self._select = name
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = ""
        elif tag == "textarea":
            self._textarea = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data.lstrip("\n") if not self.values[
                self._textarea] else data


def form_values(html: str, form_class: str = "stream-form") -> dict[str, str]:
    """What the browser submits from the page's stream form (or consumer form)."""
    form = html.split(f'class="card form {form_class}"')[1].split("</form>")[0]
    reader = _FormReader()
    reader.feed("<form " + form)
    return reader.values


def shown_seen(html: str) -> str:
    """What a confirm page (delete, purge) carries of the object it shows."""
    return html.split('name="seen" value="')[1].split('"')[0]
