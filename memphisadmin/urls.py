from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, re_path
from django.views.generic import RedirectView

from streams.audit import views as audit_views
from streams.views import jobs, plans, profiles, streams, transfer

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="profile_list"), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profiles/", profiles.profile_list, name="profile_list"),
    path("profiles/new/", profiles.profile_create, name="profile_create"),
    path("profiles/<int:pk>/", profiles.profile_detail, name="profile_detail"),
    path("profiles/<int:pk>/edit/", profiles.profile_edit, name="profile_edit"),
    path("profiles/<int:pk>/delete/", profiles.profile_delete, name="profile_delete"),
    path("profiles/<int:pk>/test/", profiles.profile_test, name="profile_test"),
    path("profiles/<int:pk>/streams/", streams.stream_list, name="stream_list"),
    path("profiles/<int:pk>/streams/refresh/", streams.stream_list_refresh,
         name="stream_list_refresh"),
    path("profiles/<int:pk>/streams/adopt/", streams.stream_adopt, name="stream_adopt"),
    path("profiles/<int:pk>/streams/plan/", plans.plan_create, name="plan_create"),
    path("profiles/<int:pk>/streams/new/", streams.stream_create, name="stream_create"),
    path("profiles/<int:pk>/definitions/export/", transfer.definitions_export,
         name="definitions_export"),
    path("profiles/<int:pk>/definitions/import/", transfer.definitions_import,
         name="definitions_import"),
    path("profiles/<int:pk>/definitions/copy/", transfer.definitions_copy,
         name="definitions_copy"),
    path("profiles/<int:pk>/stream/<str:name>/", streams.stream_detail, name="stream_detail"),
    path("profiles/<int:pk>/stream/<str:name>/refresh/", streams.stream_refresh,
         name="stream_refresh"),
    path("profiles/<int:pk>/stream/<str:name>/edit/", streams.stream_edit, name="stream_edit"),
    path("profiles/<int:pk>/stream/<str:name>/delete/", streams.stream_delete,
         name="stream_delete"),
    path("profiles/<int:pk>/stream/<str:name>/purge/", streams.stream_purge, name="stream_purge"),
    path("profiles/<int:pk>/stream/<str:name>/plan/", plans.stream_plan, name="stream_plan"),
    path("plans/<int:pk>/", plans.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/apply/", plans.plan_apply, name="plan_apply"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job_detail"),
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit/<int:seq>/", audit_views.audit_detail, name="audit_detail"),
    path("audit/<int:seq>/restore/", audit_views.audit_restore, name="audit_restore"),
    re_path(r"^audit/export\.(?P<fmt>csv|jsonl)$", audit_views.audit_export, name="audit_export"),
    path("profiles/<int:pk>/audit/", audit_views.profile_audit, name="profile_audit"),
    path("profiles/<int:pk>/stream/<str:name>/audit/", audit_views.stream_audit,
         name="stream_audit"),
    path("admin/", admin.site.urls),
]
