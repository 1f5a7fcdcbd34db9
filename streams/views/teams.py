"""Teams: the list of one's teams, a team's page (its members and connections), and what its
admins do there: add a member, change a role, remove a member. Superusers found teams."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, policy, teams
from streams.forms.teams import MemberForm, RoleForm, TeamForm, WebhookForm
from streams.models import Membership, Role, Team
from streams.teams import TeamChangeRefused
from streams.views.http import missing, refuse


def team_list(request: HttpRequest) -> HttpResponse:
    form = TeamForm() if request.user.is_superuser else None
    return render(request, "streams/team_list.html", {
        "teams": policy.teams(request.user).prefetch_related("memberships", "profiles"),
        "form": form})


@require_POST
def team_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        refuse(request, "team.create", "only superusers found teams")
    form = TeamForm(request.POST)
    if form.is_valid():
        team = teams.found(form.cleaned_data["name"], audit.Context.from_request(request))
        return redirect("team_detail", pk=team.pk)
    return render(request, "streams/team_list.html", {
        "teams": policy.teams(request.user), "form": form}, status=400)


def _team(request: HttpRequest, pk: int) -> Team:
    """The team, or the 404 of a missing one for a user who is not in it."""
    team = policy.teams(request.user).filter(pk=pk).first()
    if team is None:
        missing(request, "team")
    return team


def _page(request: HttpRequest, team: Team, status: int = 200, **forms: object) -> HttpResponse:
    manages = policy.manages(request.user, team)
    return render(request, "streams/team_detail.html", {
        "team": team,
        "members": team.memberships.select_related("user").order_by("user__username"),
        "profiles": team.profiles.all(),
        "manages": manages,
        "roles": Role.choices,
        "add_form": forms.get("add_form") or (MemberForm(team=team) if manages else None),
        "webhook_form": forms.get("webhook_form") or (
            WebhookForm(team=team, initial={"url": team.webhook_url}) if manages else None),
        "deliveries": team.deliveries.all()[:10] if manages else [],
        "error": forms.get("error", ""),
    }, status=status)


def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, _team(request, pk))


def _managed(request: HttpRequest, pk: int) -> Team:
    team = _team(request, pk)
    if not policy.manages(request.user, team):
        refuse(request, "team.members", f"only admins of {team.name} manage its members")
    return team


@require_http_methods(["POST"])
def team_member_add(request: HttpRequest, pk: int) -> HttpResponse:
    team = _managed(request, pk)
    form = MemberForm(request.POST, team=team)
    if not form.is_valid():
        return _page(request, team, status=400, add_form=form)
    try:
        teams.add(team, form.cleaned_data["username"], form.cleaned_data["role"],
                  audit.Context.from_request(request))
    except TeamChangeRefused as refusal:
        return _page(request, team, status=409, add_form=form, error=str(refusal))
    return redirect("team_detail", pk=team.pk)


@require_POST
def team_member_role(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    team = _managed(request, pk)
    membership = get_object_or_404(Membership, team=team, pk=member)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _page(request, team, status=400, error="Choose a role from the list.")
    try:
        teams.change_role(membership, form.cleaned_data["role"],
                          seen=form.cleaned_data["seen"],
                          context=audit.Context.from_request(request))
    except TeamChangeRefused as refusal:
        return _page(request, team, status=409, error=str(refusal))
    return redirect("team_detail", pk=team.pk)


@require_POST
def team_member_remove(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    team = _managed(request, pk)
    membership = Membership.objects.filter(team=team, pk=member).first()
    if membership is None:  # removed meanwhile, perhaps by another admin: the page says so
        return _page(request, team, status=409,
                     error="That member was removed meanwhile: the list shows the team now.")
    try:
        teams.remove(membership, audit.Context.from_request(request))
    except TeamChangeRefused as refusal:
        return _page(request, team, status=409, error=str(refusal))
    return redirect("team_detail", pk=team.pk)


@require_POST
def team_webhook(request: HttpRequest, pk: int) -> HttpResponse:
    team = _managed(request, pk)
    form = WebhookForm(request.POST, team=team)
    if not form.is_valid():
        return _page(request, team, status=400, webhook_form=form)
    teams.set_webhook(team, form.cleaned_data["url"], form.cleaned_data["secret"],
                      audit.Context.from_request(request))
    return redirect("team_detail", pk=team.pk)
