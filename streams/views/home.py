"""The home page: is everything OK? (streams.overview), redrawn every few seconds."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from streams import overview, policy
from streams.views.http import HtmxHttpRequest, page_or_partial


def home(request: HtmxHttpRequest) -> HttpResponse:
    template = page_or_partial(request, "streams/home.html", "overview")
    return render(request, template, {"overview": overview.overview(request.user),
                                      "can_add": policy.adds_profiles(request.user)})
