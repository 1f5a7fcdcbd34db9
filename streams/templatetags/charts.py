"""Small line charts drawn on the server as SVG (no script, no build step): a stream's
messages and bytes, a consumer's lag, over the hours the samples cover (streams.checks)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

WIDTH, HEIGHT, PAD = 600, 110, 4


@register.simple_tag
def chart(points: list[tuple[datetime, int]], label: str, size: bool = False) -> SafeString:
    """A line through (time, value) points with its latest, lowest and highest values and its
    time span in words beside it; fewer than two points say so instead."""
    if len(points) < 2:
        return format_html('<p class="muted small chart-empty">{}: {}</p>', label,
                           "not sampled yet (the scheduler samples every few minutes)"
                           if not points else "one sample so far")
    shown = filesizeformat if size else (lambda value: f"{value:,}")
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    low, high = min(v for _, v in points), max(v for _, v in points)
    rise = max(high - low, 1)
    xy = [(PAD + (WIDTH - 2 * PAD) * (at - start).total_seconds() / span,
           HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / rise) for at, value in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    return format_html(
        '<figure class="chart"><figcaption><strong>{}</strong> {} now · low {} · high {}'
        '<span class="muted"> · {} to {} UTC</span></figcaption>'
        '<svg viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}">'
        '<title>{}</title><polyline points="{}" /></svg></figure>',
        label, shown(points[-1][1]), shown(low), shown(high),
        start.strftime("%Y-%m-%d %H:%M"), end.strftime("%H:%M"),
        WIDTH, HEIGHT, f"{label} over time", f"{label}: {len(points)} samples", line)


@register.simple_tag
def charts(series: dict[str, list[tuple[datetime, int]]], label: str) -> SafeString:
    """One chart a key (a consumer's lag each)."""
    return format_html_join("", "{}", ((chart(points, f"{label} {key}"),)
                                       for key, points in series.items()))
