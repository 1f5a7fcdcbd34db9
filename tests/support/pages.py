"""Reading the pages the views answer with."""

from __future__ import annotations


def field_errors(html: str, field: str) -> str:
    """The text of the field group around the input `field`: its label, input and errors."""
    before, after = html.split(f'id="id_{field}"', 1)
    return before.rsplit("<div", 1)[1] + after.split("</div>", 1)[0]
