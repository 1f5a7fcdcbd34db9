"""Accounts with a role in a team, as a team admin makes them on the team's page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from streams.models import Membership, Team


def member(team: Team, username: str, role: str) -> Any:
    user = get_user_model().objects.create_user(username, password="pass-word-1")
    Membership.objects.create(team=team, user=user, role=role)
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client
