"""Controls you can see: every link, button and badge on the pages people work in has text at
WCAG AA contrast (4.5:1) against what is behind it, as Chromium computes both."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from streams import audit
from streams.models import AuditEvent, Job, JobKind, JobStatus, Profile, Stream
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import create_raw, publish

pytestmark = pytest.mark.django_db(transaction=True)

# For each shown link, button and badge: its text colour over its background, the background
# being its own and its ancestors' composed from the first opaque one up.
CONTRASTS = """() => {
  const rgba = (text) => {
    const [r, g, b, a = 1] = text.match(/[\\d.]+/g).map(Number);
    return [r, g, b, a];
  };
  const over = ([r, g, b, a], [R, G, B]) =>
    [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a), 1];
  const luminance = (colour) => {
    const [r, g, b] = colour.slice(0, 3).map((c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const behind = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] === 1) break;
    }
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const shown = (element) => element.getClientRects().length > 0
    && getComputedStyle(element).visibility !== "hidden" && !element.closest(".visually-hidden")
    && element.innerText.trim() !== "";
  return [...document.querySelectorAll("a, button, .button, .badge")]
    .filter((element) => shown(element) && !element.disabled)
    .map((element) => {
      const background = behind(element);
      const text = over(rgba(getComputedStyle(element).color), background);
      const [light, dark] = [luminance(text), luminance(background)].sort((x, y) => y - x);
      return {
        what: `${element.tagName.toLowerCase()}.${[...element.classList].join(".")} `
          + `"${element.innerText.trim().slice(0, 30)}"`,
        ratio: Math.round(((light + 0.05) / (dark + 0.05)) * 100) / 100,
      };
    });
}"""


def contrasts(page: Page) -> dict[str, float]:
    """What each shown control is (tag, classes, text) and its contrast ratio."""
    return {control["what"]: control["ratio"] for control in page.evaluate(CONTRASTS)}


def test_links_buttons_and_badges_have_aa_contrast(page: Page, nats_server: NatsServer) -> None:
    url = nats_server.url
    create_raw(url, {"name": "contrast_orders", "subjects": ["contrast_orders.*"]})
    publish(url, [("contrast_orders.new", b'{"order": 1}'), ("contrast_orders.old", b"x")])
    profile = Profile.objects.create(name="contrast", servers=url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")  # a real listing: a succeeded job, the stream unmanaged
    expect(page.locator("#list-job section.job")).to_have_attribute("data-status", "succeeded")
    # Every state a badge can show, on rows the listing does not touch.
    for sync in ("in_sync", "drifted", "missing"):
        Stream.objects.create(profile=profile, name=f"contrast_{sync}", sync=sync,
                              status="gone" if sync == "missing" else "ok",
                              read_at=timezone.now())
    # Of no profile: a connection's jobs run one at a time, and these never end.
    for status in (JobStatus.FAILED, JobStatus.RUNNING, JobStatus.QUEUED):
        Job.objects.create(kind=JobKind.STREAM_INFO, profile_name="elsewhere",
                           target="contrast_orders", status=status)
    for outcome in ("succeeded", "failed", "denied"):
        AuditEvent.objects.record("stream.changed", audit.Context(), target_type="stream",
                                  target_name="contrast_orders", profile=profile, outcome=outcome)

    problems, seen = [], set()
    for address, ready in [
        (f"/profiles/{profile.pk}/streams/", "#stream-table tr.stream-row"),
        (f"/profiles/{profile.pk}/", "#audit-table tbody tr"),
        (f"/profiles/{profile.pk}/stream/contrast_orders/", "#audit-table tbody tr"),
        (f"/profiles/{profile.pk}/stream/contrast_orders/messages/", "#messages tr.message-row"),
        ("/audit/", "#audit-table tbody tr"),
        ("/jobs/", "#job-table tbody tr"),
    ]:
        page.goto(address)
        expect(page.locator(ready).first).to_be_visible()
        controls = contrasts(page)
        seen |= {what.split(" ", 1)[0] for what in controls}
        problems += [f"{address}: {what}: {ratio}:1" for what, ratio in controls.items()
                     if ratio < 4.5]
    assert not problems, "below 4.5:1\n" + "\n".join(problems)
    # The kinds of control the pages have, so none escaped the look.
    assert {"a.", "a.muted", "a.button", "button.", "button.primary", "button.link",
            "button.link.danger", "span.badge.succeeded", "span.badge.failed",
            "span.badge.running", "span.badge.queued", "span.badge.sync-drifted"} <= seen, seen
